"""Stored and fetched text, printed literally: never Rich markup, never terminal control.

A stored message such as `"[/bogus]"` is markup to Rich (a crash), `[link=...]` a hidden link,
and ESC or OSC 8 bytes reach the operator's terminal (recolour, retitle, hyperlinks). Every
CLI command prints such text through `literal` (Rich) or `escape_controls` (plain print).
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 but tab and newline, DEL, C1, and the bidirectional overrides that reorder a line
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(value: str) -> str:
    """`value` with each control character written as its escape (ESC -> `\\u001b`)."""
    return _CONTROL.sub(_escape, value)


def literal(value: str, style: str = "") -> Text:
    """Rich text that prints `value` as it is: no markup read, controls escaped."""
    return Text(escape_controls(value), style=style)


def _escape(match: re.Match[str]) -> str:
    # JSON's own escape: valid inside the JSON that --json commands print, plain to read
    return f"\\u{ord(match.group()):04x}"
