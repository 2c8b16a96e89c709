"""Text tools: counting, extraction and user-supplied regular expressions.

Every pattern runs on RE2, whose matching time is linear in the input, so no pattern (from
this module or from a user) can make a node hang on backtracking.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import phonenumbers
import re2

from milliwatt.tools.registry import Effect, Tool, ToolError, tool

MAX_TEXT_CHARS = 1_000_000
MAX_PATTERN_CHARS = 1_000
MAX_MATCHES = 1_000
REGEX_MEMORY = 8 << 20  # bytes RE2 may use to compile one pattern

Kind = Literal["emails", "urls", "phone_numbers", "numbers"]
VOWELS = frozenset("aeiouAEIOU")


def _options(ignore_case: bool = False) -> re2.Options:
    options = re2.Options()
    options.max_mem = REGEX_MEMORY
    options.log_errors = False  # a bad user pattern is reported to the user, not to stderr
    options.case_sensitive = not ignore_case
    return options


@cache
def _compiled(pattern: str, ignore_case: bool = False) -> Any:
    return re2.compile(pattern, _options(ignore_case))


# the extraction patterns are written for RE2 (no lookarounds, no backreferences)
_WORD = r"\w+(?:['’-]\w+)*"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_URL = r"(?i)\b(?:https?://|www\.)[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]]"
_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+"
_SENTENCE_END = r"[.!?]+(?:\s|$)"


def _check_text(text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise ToolError(f"the text is too long ({len(text):,} chars; limit {MAX_TEXT_CHARS:,})")


@tool(
    effects={Effect.PURE},
    name="text.count",
    examples=["how many r's are in strawberry", "how many times does 'the' appear in this text"],
)
def count(text: str, substring: str, case_sensitive: bool = False) -> dict[str, Any]:
    """Count how many times a letter or substring occurs in a text (non-overlapping, and
    overlapping when they differ). Case-insensitive unless case_sensitive is true."""
    _check_text(text)
    if not substring:
        raise ToolError("the substring to count must not be empty")
    haystack, needle = (text, substring) if case_sensitive else (text.lower(), substring.lower())
    found = haystack.count(needle)
    overlapping, start = 0, haystack.find(needle)
    while start != -1:
        overlapping += 1
        start = haystack.find(needle, start + 1)
    result: dict[str, Any] = {"substring": substring, "count": found}
    if overlapping != found:
        result["overlapping_count"] = overlapping
    return result


@tool(
    effects={Effect.PURE},
    name="text.stats",
    examples=["how many words are in this paragraph", "count the characters in 'hello world'"],
)
def stats(text: str) -> dict[str, int]:
    """Count the characters (with and without spaces), letters, digits, vowels, words,
    sentences and lines of a text."""
    _check_text(text)
    return {
        "characters": len(text),
        "characters_without_spaces": sum(not c.isspace() for c in text),
        "letters": sum(c.isalpha() for c in text),
        "digits": sum(c.isdigit() for c in text),
        "vowels": sum(c in VOWELS for c in text),
        "words": len(_compiled(_WORD).findall(text)),
        "sentences": _sentences(text),
        "lines": len(text.splitlines()) if text else 0,
    }


def _sentences(text: str) -> int:
    if not text.strip():
        return 0
    ends = len(_compiled(_SENTENCE_END).findall(text))
    trailing = not _compiled(r"[.!?]\s*$").search(text)
    return ends + trailing


@tool(
    effects={Effect.PURE},
    name="text.extract",
    examples=["extract the email addresses from this text", "list the URLs in this message"],
)
def extract(text: str, kind: Kind, region: str = "US") -> dict[str, Any]:
    """Find all e-mail addresses, URLs, phone numbers or numbers in a text, in order, without
    duplicates. Phone numbers without a country code are read as numbers of `region`
    (a two-letter country code) and returned in E.164 form (+16502530000)."""
    _check_text(text)
    if kind == "phone_numbers":
        found = _phone_numbers(text, region)
    else:
        pattern = {"emails": _EMAIL, "urls": _URL, "numbers": _NUMBER}[kind]
        found = [m if isinstance(m, str) else m[0] for m in _compiled(pattern).findall(text)]
        if kind == "numbers":
            found = [n.replace(",", "") for n in found]
    unique = list(dict.fromkeys(found))[:MAX_MATCHES]
    return {"kind": kind, "count": len(unique), "items": unique}


def _phone_numbers(text: str, region: str) -> list[str]:
    if len(region) != 2 or not region.isalpha():
        raise ToolError(f"region must be a two-letter country code, got {region!r}")
    matcher = phonenumbers.PhoneNumberMatcher(text, region.upper(), max_tries=MAX_MATCHES)
    return [
        phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164) for m in matcher
    ]


@tool(
    effects={Effect.PURE},
    name="text.regex",
    examples=["find all matches of [A-Z]{3}\\d+ in this text", "does this text match ^\\d{5}$"],
)
def regex(pattern: str, text: str, ignore_case: bool = False) -> dict[str, Any]:
    """Find all matches of a regular expression in a text (RE2 syntax: linear time, no
    backreferences or lookaround). Returns the matches (first 1000) and their positions."""
    _check_text(text)
    if not pattern or len(pattern) > MAX_PATTERN_CHARS:
        raise ToolError(f"the pattern must be 1 to {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re2.compile(pattern, _options(ignore_case))
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ToolError(f"invalid regular expression: {reason}") from None
    matches: list[dict[str, Any]] = []
    for match in compiled.finditer(text):
        if len(matches) >= MAX_MATCHES:
            break
        matches.append({"match": match.group(0), "start": match.start(), "end": match.end()})
    return {"pattern": pattern, "count": len(matches), "matches": matches}


TOOLS: list[Tool] = [count, stats, extract, regex]
