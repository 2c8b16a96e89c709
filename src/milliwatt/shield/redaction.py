"""Secrets and personal data masked before a record reaches a log.

What a rule matched is evidence an operator needs; the e-mail address, card number or
password in the same prompt is not. Query-string values are masked whole: `?api_key=...`
is how many clients send their keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[redacted]"

_PATTERNS = [
    # e-mail addresses
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), MASK),
    # card-like numbers: 13-19 digits, spaces or dashes between groups
    (re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)"), MASK),
    # bearer tokens, and the value after a secret's name: "password: hunter2", "api_key=..."
    (re.compile(r"(?i)\bbearer\s+\S+"), MASK),
    # milliwatt API keys: the id may be shown, the secret never
    (re.compile(r"\b(mw_[a-z0-9]{10}_)[\w-]+"), rf"\1{MASK}"),
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|"
            r"authorization|cookie)\b(\s*(?:[:=]|\bis\b)\s*|\s+)[^\s&,;\"']+"
        ),
        rf"\1\2{MASK}",
    ),
]
_QUERY_VALUE = re.compile(r"=[^&#]*")


def redact_text(value: str) -> str:
    for pattern, replacement in _PATTERNS:
        value = pattern.sub(replacement, value)
    return value


def redact_uri(uri: str) -> str:
    """The path as sent; each query-string value masked."""
    path, sep, query = uri.partition("?")
    return path + sep + _QUERY_VALUE.sub("=" + MASK, query) if sep else redact_text(uri)


def redact_record(value: Any, key: str = "") -> Any:
    """A copy of a JSON-ready record with every string redacted (`uri` keys as URIs)."""
    if isinstance(value, str):
        return redact_uri(value) if key == "uri" else redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact_record(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_record(v, key) for v in value]
    return value
