"""Unit conversions: "convert 26.2 miles to km", "how many ounces in a pound".

Both units must be known to pint and of compatible kinds, or the request goes to the model.
Calendar units (months, years) are refused: "weeks in a year" has no single exact answer.
"""

from __future__ import annotations

import re
from typing import Any

from milliwatt.agent.resolvers.common import NUMBER, Match, Request, number, plain_number
from milliwatt.tools.registry import ToolContext
from milliwatt.tools.units import UnitError, convert_quantity

N = rf"(?P<num>{NUMBER}|an?|one)"
# unit phrases: words, symbols, /, ^ and exponents; pint decides what they mean
U = r"[a-zµ°º][a-z0-9µ°º/^.*² ³-]{0,38}?"
_LEAD = r"(?:what(?:'s| is| are)|convert|change|turn|express|how much is|how much are)"

_PATTERNS = [
    re.compile(
        rf"^(?:{_LEAD} )?{N} ?(?P<src>{U}) (?:to|into|in|as|in terms of|=) "
        rf"(?:how many )?(?P<dst>{U})\??$",
        re.I,
    ),
    re.compile(rf"^how many (?P<dst>{U}) (?:are |is )?(?:there )?in (?:{N} )?(?P<src>{U})$", re.I),
    re.compile(
        rf"^how many (?P<dst>{U}) (?:is|are|make|makes|equals?|make up|in) "
        rf"{N} ?(?P<src>{U})$",
        re.I,
    ),
    re.compile(rf"^{N} ?(?P<src>{U}) (?:is|are|equals|makes) how many (?P<dst>{U})$", re.I),
    re.compile(rf"^(?:convert|change) (?:from )?(?P<src>{U}) to (?P<dst>{U}):? {N}$", re.I),
]
_ARTICLES = re.compile(r"^(?:the|a|an)\s+|\s+(?:units?|please)$", re.I)
# units whose size depends on the calendar or the country: "a ton" is 907, 1000 or 1016 kg
_AMBIGUOUS = frozenset(
    {
        "year",
        "month",
        "decade",
        "century",
        "millennium",
        "common_year",
        "leap_year",
        "julian_year",
        "ton",
        "short_ton",
        "long_ton",
        "hundredweight",
    }
)
# words that pint reads as units but people mean otherwise: "3 pm" is a time, not picometres
_BARE = frozenset(
    {
        "a",
        "an",
        "one",
        "is",
        "it",
        "in",
        "to",
        "of",
        "at",
        "as",
        "on",
        "or",
        "be",
        "am",
        "pm",
        "me",
        "us",
        "my",
        "do",
        "no",
        "hi",
        "ok",
    }
)


class UnitsResolver:
    tools = frozenset({"units.convert"})

    def match(self, request: Request, context: ToolContext) -> Match | None:
        text = request.text
        for pattern in _PATTERNS:
            m = pattern.fullmatch(text)
            if m is None:
                continue
            found = _reading(m)
            if found is not None:
                return found
        return None


def _reading(m: re.Match[str]) -> Match | None:
    raw = m.group("num")
    value = 1.0 if raw is None or raw.lower() in ("a", "an", "one") else number(raw)
    src, dst = _clean(m.group("src")), _clean(m.group("dst"))
    if not src or not dst or src.lower() in _BARE or dst.lower() in _BARE:
        return None
    try:
        _, src_unit, dst_unit = convert_quantity(value, src, dst)
    except UnitError:
        return None
    names = {str(u) for u in (src_unit, dst_unit)}
    if any(part in _AMBIGUOUS for name in names for part in re.split(r"[ */]+", name)):
        return None
    return Match(
        "units.convert",
        {"value": value, "from_unit": src, "to_unit": dst},
        _say,
    )


def _clean(unit: str) -> str:
    return _ARTICLES.sub("", unit.strip().rstrip("?")).strip()


def _say(value: dict[str, Any]) -> str:
    amount, result = value["value"], value["result"]
    source = _spoken(value["from_name"], value["from_unit"], amount)
    target = _spoken(value["to_name"], value["to_unit"], result)
    return f"{plain_number(amount)} {source} = {plain_number(result)} {target}"


_IRREGULAR = {"foot": "feet", "inch": "inches", "century": "centuries"}


def _spoken(name: str, symbol: str, amount: float) -> str:
    """'mile' -> 'miles', 'meter / second' -> 'meters per second'; symbols where names are
    awkward (temperatures, powers, long compound names)."""
    parts = name.split(" / ")
    if "degree" in name or "**" in name or len(parts) > 2 or "_per_" in name or "100km" in name:
        return symbol
    head = parts[0].replace("_", " ")
    if amount != 1:
        head = _IRREGULAR.get(head) or (head if head.endswith(("s", "z")) else head + "s")
    return head if len(parts) == 1 else f"{head} per {parts[1].replace('_', ' ')}"
