"""Secrets and personal data masked before text leaves milliwatt.

Two scanners share the patterns:

- `redact_text` / `redact_record`, for log lines and audit records: broad. What a rule
  matched is evidence an operator needs; the e-mail address, card number or password in
  the same prompt is not. Query-string values are masked whole: `?api_key=...` is how many
  clients send their keys.
- `redact_output` / `redact_arguments`, for what the agent says and the arguments of the
  tools it calls: precise, so that answers keep their e-mail addresses and ordinary
  numbers. It masks API keys and tokens of the well-known formats, private keys, JWTs,
  card numbers that pass the Luhn check, "password: ..." values, and every secret value
  this process resolved through `shield.secrets` (whatever its format).

`StreamRedactor` does the same to text that arrives in pieces (a streamed answer).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "[redacted]"

# well-known key and token formats: precise enough for answers and tool arguments
_KEYS = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"  # Stripe
    r"|\bsk-(?:ant-|proj-)?[0-9A-Za-z_-]{20,}"  # OpenAI, Anthropic
    r"|\bgh[pousr]_[0-9A-Za-z]{30,}|\bgithub_pat_[0-9A-Za-z_]{40,}"  # GitHub
    r"|\bglpat-[0-9A-Za-z_-]{20,}"  # GitLab
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|\bxox[abposr]-[0-9A-Za-z-]{10,}"  # Slack
    r"|\bhf_[0-9A-Za-z]{30,}"  # Hugging Face
    r"|\bnpm_[0-9A-Za-z]{36}"  # npm
    r"|\beyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}",  # JWT
    re.DOTALL,
)
_BEARER = re.compile(r"(?i)\bbearer\s+[0-9A-Za-z._~+/=-]{8,}")
_NAMED_SECRET = re.compile(
    r"(?i)\b(password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|"
    r"authorization|cookie|aws_secret_access_key|client_secret)\b(\s*(?::|\bis\b)\s*)"
    r"(?!(?i:bearer)\s)[\"']?[^\s&,;\"']+"
)
_SECRET_LEAD = re.compile(
    r"(?i)\b(bearer|password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|"
    r"authorization|cookie|aws_secret_access_key|client_secret)\b[\s:=\"']*(is\s*)?$"
)  # the name of a secret at the end of what would go out: its value is still coming
_DIGIT_TAIL = re.compile(r"\d[\d -]*$")
_CARD = re.compile(r"(?<!\d)(?<!\d\.)\d(?:[ -]?\d){12,18}(?!\d|\.\d)")  # not in decimals

_LOG_PATTERNS = [
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), MASK),  # e-mail addresses
    (re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)"), MASK),  # any card-like number
    (_KEYS, MASK),
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


def _any_of(patterns: list[tuple[re.Pattern[str], str]]) -> re.Pattern[str]:
    """One pattern that matches where any of these would: most strings of a record hold
    nothing to mask, and one search tells so where each pattern would scan them in turn."""
    parts = []
    for pattern, _ in patterns:
        body, flags = pattern.pattern, ""
        if body.startswith("(?i)"):
            body, flags = body[4:], "i"
        flags += "i" if pattern.flags & re.IGNORECASE and "i" not in flags else ""
        flags += "s" if pattern.flags & re.DOTALL else ""
        parts.append(f"(?{flags}:{body})" if flags else f"(?:{body})")
    return re.compile("|".join(parts))


_LOG_ANY = _any_of(_LOG_PATTERNS)

_known_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_MIN_KNOWN = 6  # shorter values would mask ordinary words


def remember_secret(value: str) -> None:
    """Mask this exact value from now on, wherever it appears (see `shield.secrets`)."""
    global _known
    if len(value) >= _MIN_KNOWN:
        with _known_lock:
            _known = _known | {value}


def _mask_known(text: str, known: frozenset[str] | None = None) -> str:
    for value in sorted(_known if known is None else known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return MASK if luhn_valid(digits) else match.group()


def redact_output(text: str) -> str:
    """An answer or a tool argument with its keys, tokens, cards and known secrets masked."""
    text = _mask_known(text)
    text = _KEYS.sub(MASK, text)
    text = _BEARER.sub(f"Bearer {MASK}", text)
    text = _NAMED_SECRET.sub(rf"\1\2{MASK}", text)
    return _CARD.sub(_mask_card, text)


def redact_arguments(value: Any) -> Any:
    """A copy of a tool call's arguments with `redact_output` applied to every string."""
    if isinstance(value, str):
        return redact_output(value)
    if isinstance(value, Mapping):
        return {k: redact_arguments(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_arguments(v) for v in value]
    return value


def redact_text(value: str) -> str:
    known = _known
    if len(value) <= _REMEMBERED_CHARS:
        return _redact_short_text(value, known)
    return _redact_text(value, known)


# An audit record's strings are mostly its rules' messages and tags, the same in every record
# that names the rule; scanning one takes about 10 us (the patterns' union runs in `re`).
_REMEMBERED_CHARS = 256


@functools.lru_cache(maxsize=8192)
def _redact_short_text(value: str, known: frozenset[str]) -> str:
    """`_redact_text`, remembered; `known` in the key: a new secret is masked at once."""
    return _redact_text(value, known)


def _redact_text(value: str, known: frozenset[str]) -> str:
    value = _mask_known(value, known)
    if _LOG_ANY.search(value) is None:
        return value
    for pattern, replacement in _LOG_PATTERNS:
        value = pattern.sub(replacement, value)
    return value


def redact_uri(uri: str) -> str:
    """The path as sent; each query-string value masked."""
    path, sep, query = uri.partition("?")
    return path + sep + _QUERY_VALUE.sub("=" + MASK, query) if sep else redact_text(uri)


# Values milliwatt makes itself: a request id is hex, and one with a run of 13-19 digits
# would read as a card number; masked, it no longer names its request.
_OWN_KEYS = frozenset({"request_id"})


def redact_record(value: Any, key: str = "") -> Any:
    """A copy of a JSON-ready record with every string redacted (`uri` keys as URIs)."""
    if isinstance(value, str):
        if key in _OWN_KEYS:
            return value
        return redact_uri(value) if key == "uri" else redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact_record(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_record(v, key) for v in value]
    return value


class StreamRedactor:
    """`redact_output` over text that arrives in pieces: what `feed` returns is final.

    Text is let out only at a space, so a token is never cut in two. What could still grow
    into a secret waits: a run of digits (a card number's groups), the start of a secret
    value this process knows, an unfinished private-key block, and a secret's name whose
    value has not come yet ("password: "). Ordinary words stream as they come.
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> str:
        raw = self._pending + piece
        limit = _unsafe_tail(raw)
        cut = max(raw.rfind(" ", 0, limit + 1), raw.rfind("\n", 0, limit + 1))
        cut = _before_any_secret(raw, cut)
        lead = _SECRET_LEAD.search(raw, 0, max(cut, 0))
        if lead is not None:
            cut = lead.start()
        if cut <= 0:
            self._pending = raw
            return ""
        self._pending = raw[cut:]
        return redact_output(raw[:cut])

    def flush(self) -> str:
        out, self._pending = redact_output(self._pending), ""
        return out


def _unsafe_tail(text: str) -> int:
    """Where the part of `text` that may still become a secret begins."""
    limit = len(text)
    digits = _DIGIT_TAIL.search(text)
    if digits is not None:
        limit = digits.start()
    begin = text.find("-----BEGIN ")
    if begin != -1 and "-----END " not in text[begin:]:
        limit = min(limit, begin)
    for value in _known:
        for size in range(min(len(value), len(text)), 0, -1):
            if text.endswith(value[:size]):
                limit = min(limit, len(text) - size)
                break
    return limit


def _before_any_secret(text: str, cut: int) -> int:
    """`cut`, moved back to the start of any secret that spans it."""
    moved = True
    while moved and cut > 0:
        moved = False
        spans = [m.span() for p in (_KEYS, _BEARER, _NAMED_SECRET, _CARD) for m in p.finditer(text)]
        spans += [(i, i + len(v)) for v in _known for i in _occurrences(text, v)]
        for start, end in spans:
            if start < cut < end:
                cut, moved = start, True
    return cut


def _occurrences(text: str, value: str) -> list[int]:
    found, at = [], text.find(value)
    while at != -1:
        found.append(at)
        at = text.find(value, at + 1)
    return found
