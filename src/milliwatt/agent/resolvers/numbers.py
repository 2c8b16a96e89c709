"""Questions about one whole number: is it prime, what is it in another base."""

from __future__ import annotations

import re
from typing import Any

from milliwatt.agent.resolvers.common import Match, Request
from milliwatt.tools.registry import ToolContext

_BASES = {
    "binary": 2,
    "bin": 2,
    "octal": 8,
    "oct": 8,
    "decimal": 10,
    "denary": 10,
    "hex": 16,
    "hexadecimal": 16,
}
_BASE = r"(binary|bin|octal|oct|decimal|denary|hex|hexadecimal|base[ -]?(\d{1,2}))"
# hex digits beside letters ("1a", "ff"), but not a number in scientific notation ("1e6")
_HEX_ONLY = re.compile(r"(?!\d+e\d+$)(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{2,16}|f{2,8}")
_PREFIXED = {"0x": 16, "0b": 2, "0o": 8}

_PRIME = [
    re.compile(r"^(?:is|was) (\d{1,1300}) (?:a )?prime(?: number)?(?: or (?:not|composite))?$"),
    re.compile(
        r"^(?:check |tell me |determine )?(?:if|whether) (\d{1,1300}) is (?:a )?prime"
        r"(?: number)?(?: or (?:not|composite))?$"
    ),
    re.compile(
        r"^is (\d{1,1300}) (?:a )?(?:prime or composite|composite or prime)"
        r"(?: number)?$"
    ),
]
_TO_BASE = [
    # "255 in binary", "convert 255 to hex", "what is 255 in base 7"
    re.compile(
        rf"^(?:what(?:'s| is) |convert |write |express |how (?:do|would|can) (?:you|i) "
        rf"(?:write|express|represent) )?(?:the (?:decimal )?number )?"
        rf"(-?\d{{1,400}}|0x[0-9a-f]{{1,400}}|0b[01]{{1,1300}}|0o[0-7]{{1,500}})"
        rf"(?: \(?(?:in )?decimal\)?)? (?:in|to|into|as) {_BASE}(?: notation| form)?$"
    ),
    # "convert ff from hex to decimal", "what is 1010 binary in decimal"
    re.compile(
        rf"^(?:what(?:'s| is) |convert |write |express )?(?:the )?(?:{_BASE} "
        rf"(?:number )?)?([0-9a-z]{{1,400}})(?: \(?(?:from |in )?{_BASE}\)?)?"
        rf" (?:in|to|into|as) {_BASE}$"
    ),
]


class NumbersResolver:
    tools = frozenset({"math.is_prime", "math.convert_base"})

    def match(self, request: Request, context: ToolContext) -> Match | None:
        text = request.lower.removeprefix("the number ")
        for pattern in _PRIME:
            if m := pattern.fullmatch(text):
                return Match("math.is_prime", {"number": int(m.group(1))}, _say_prime)
        if m := _TO_BASE[0].fullmatch(text):
            digits = m.group(1)
            source = _PREFIXED.get(digits[:2], 10)
            return _convert(digits, source, _base(m.group(2), m.group(3)))
        if m := _TO_BASE[1].fullmatch(text):
            groups = m.groups()
            before, after, wanted = groups[0:2], groups[3:5], groups[5:7]
            digits = groups[2]
            if before[0] and after[0]:
                return None  # the source base named twice
            named = before if before[0] else after
            if not named[0]:
                # digits alone name no base, except hex digits beside letters ("1a", "ff")
                if not _HEX_ONLY.fullmatch(digits):
                    return None
                return _convert(digits, 16, _base(*wanted))
            return _convert(digits, _base(*named), _base(*wanted))
        return None


def _base(name: str, number: str | None) -> int:
    return int(number) if number else _BASES[name]


def _convert(digits: str, source: int, target: int) -> Match | None:
    if not (2 <= source <= 36 and 2 <= target <= 36) or source == target:
        return None
    arguments = {"number": digits, "from_base": source, "to_base": target}
    return Match("math.convert_base", arguments, _say_base)


def _say_prime(value: dict[str, Any]) -> str:
    n = value["number"]
    if value["prime"]:
        return f"Yes, {n} is a prime number."
    factor = value.get("smallest_factor")
    reason = f" (it is divisible by {factor})" if factor else ""
    return f"No, {n} is not a prime number{reason}."


def _say_base(value: dict[str, Any]) -> str:
    return (
        f"{value['number']} in base {value['from_base']} is {value['result']} "
        f"in base {value['to_base']}."
    )
