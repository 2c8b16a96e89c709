"""What every resolver shares: the normalised request and the shape of a match."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from text_to_num import alpha2digit

from milliwatt.tools.registry import ToolContext

MAX_REQUEST_CHARS = 2_000

# a number as people write it: 1,234.5 or .5 or 1e6 (thousands separators in groups of 3)
# possessive and anchored at a number's start: a run of 2,000 digits is read in linear time
NUMBER = (
    r"(?<![\d.,])[-+]?(?>\d{1,3}(?:,\d{3})++(?!\d)|\d++)(?>\.\d++)?(?>e[-+]?\d++)?"
    r"|(?<![\d.])[-+]?\.\d++"
)

_SYMBOLS = str.maketrans(
    {"×": "*", "÷": "/", "−": "-", "–": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "⁄": "/"}
)
_LEADING = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|quick question|quick|question|yo)\b[,:!]?\s*"
    r"|(?:please|kindly)\s+"
    r"|(?:can|could|would|will) you(?: please)?(?: help me)?\s+"
    r"|(?:i(?: want| need| would like|'d like| wanna) (?:you )?to(?: know)?|help me|let's"
    r"|lets)\s+"
    r"|(?:(?:do you know|tell me|show me|i wonder|i'm wondering|i am wondering)\b,?\s*)"
    r"|(?:quickly|exactly|just)\s+)+",
    re.IGNORECASE,
)
_TRAILING = re.compile(
    r"(?:[\s,]+(?:please|pls|thanks|thank you|for me|quickly|exactly|precisely)\b)+[\s.!?]*$"
    r"|(?<=\d)[?.]+$|(?<![\d\s])[\s?!.]+$|\s+[?!.]*$",  # keep "5!": a factorial
    re.IGNORECASE,
)
# alpha2digit leaves these shapes behind: "a 100", "a 3rd of", "3 4ths of", "1.5 1000000"
_ARTICLE_NUMBER = re.compile(r"\b(?:a|one) (100|1000|1000000|1000000000)\b")
_FRACTION_WORD = re.compile(r"\b(?:a|an|1|one) (3rd|4th|5th|6th|7th|8th|9th|10th)s? of\b")
_FRACTION_WORDS = re.compile(r"\b(\d+) (\d+)(?:rd|th)s of\b")
_SCALED = re.compile(r"\b(\d+(?:\.\d+)?) (1000|1000000|1000000000|1000000000000)\b")
_SMALL_NUMBER_WORD = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten)\b", re.IGNORECASE
)
_NEGATIVE = re.compile(r"\bnegative (\d)")


@dataclass(frozen=True)
class Request:
    """The user's text, cleaned once for all resolvers."""

    raw: str
    plain: str  # politeness stripped and symbols unified, words untouched (for text tools)
    text: str  # the same with number words as digits; case kept
    lower: str  # the same, lowercased
    # lowercased with every number word as digits, even a lone "one" (kept as a word above,
    # since "one of those" is not a number); for arithmetic, where any word left over fails
    every: str

    @classmethod
    def of(cls, raw: str) -> Request:
        text = unicodedata.normalize("NFKC", raw).translate(_SYMBOLS)
        text = " ".join(text.split())
        for _ in range(3):  # polite shells nest: "hey, could you please tell me ..."
            stripped = _TRAILING.sub("", _LEADING.sub("", text)).strip()
            if stripped == text:
                break
            text = stripped
        digits = _digits(text)
        every = _digits(text, threshold=0).lower() if _SMALL_NUMBER_WORD.search(text) else None
        return cls(raw, text, digits, digits.lower(), every or digits.lower())


def _digits(text: str, threshold: int = 3) -> str:
    try:
        converted = alpha2digit(text, "en", threshold=threshold)
    except Exception:  # the converter is a native extension; never let it break routing
        return text
    converted = _ARTICLE_NUMBER.sub(r"\1", converted)
    converted = _FRACTION_WORD.sub(lambda m: f"1/{m.group(1)[:-2]} of", converted)
    converted = _FRACTION_WORDS.sub(r"\1/\2 of", converted)
    converted = _SCALED.sub(r"\1*\2", converted)
    return _NEGATIVE.sub(r"-\1", converted)


def number(text: str) -> float:
    return float(text.replace(",", ""))


def plain_number(value: float) -> str:
    """A float as people write it: no trailing .0, no exponent for ordinary sizes."""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return f"{value:.10g}"


@dataclass(frozen=True)
class Match:
    """A confident reading of a request: the tool, its arguments and how to say the result."""

    tool: str
    arguments: dict[str, Any]
    sentence: Callable[[Any], str]
    # when the tool refuses (division by zero, a number too large), its reason is the answer;
    # otherwise a refusal means the reading was wrong and the model should answer instead
    errors_are_answers: bool = False
    refusal: str = "That cannot be computed: {}."  # how a refusal is put to the user
    extra: dict[str, Any] = field(default_factory=dict)
    # a resolver that had to consult the tool's data to be sure gives the result it found,
    # and the router does not call the tool again
    value: Any = None
    computed: bool = False


def compile_all(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


class Resolver(Protocol):
    """Recognises one family of requests; returns None unless it is sure."""

    tools: frozenset[str]  # the tools its matches may name

    def match(self, request: Request, context: ToolContext) -> Match | None: ...
