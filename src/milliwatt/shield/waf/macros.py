"""Macro expansion: `%{tx.score}`, `%{MATCHED_VAR}`, `%{request_headers.host}`.

Strings are split once at load into literal text and variable references; expansion at run
time only looks values up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_MACRO = re.compile(r"%\{([A-Za-z_][A-Za-z0-9_]*)(?:[.:]([^}]*))?\}")

Lookup = Callable[[str, str | None], str]


@dataclass(frozen=True, slots=True)
class Macro:
    """Text with `%{...}` references; `parts` alternates literal strings and (name, key) pairs."""

    text: str
    parts: tuple[str | tuple[str, str | None], ...]
    is_constant: bool = False  # no references: expansion is the text itself

    def expand(self, lookup: Lookup) -> str:
        if self.is_constant:
            return self.text
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(lookup(part[0], part[1]))
        return "".join(out)


def compile_macro(text: str) -> Macro:
    parts: list[str | tuple[str, str | None]] = []
    pos = 0
    for m in _MACRO.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        key = m.group(2)
        parts.append((m.group(1).upper(), key.lower() if key is not None else None))
        pos = m.end()
    if pos < len(text) or not parts:
        parts.append(text[pos:])
    return Macro(text, tuple(parts), all(isinstance(p, str) for p in parts))
