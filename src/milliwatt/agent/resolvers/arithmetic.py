"""Arithmetic phrased in words or symbols, turned into one expression for math.calculate.

The reading is all or nothing: after the known phrasings are rewritten into operators and
function calls, nothing but numbers, operators and whitelisted functions may remain. Any
left-over word ("apples", "meaning") means the request is not pure arithmetic.
"""

from __future__ import annotations

import ast
import re
from functools import partial
from typing import Any

from milliwatt.agent.resolvers.common import NUMBER, Match, Request
from milliwatt.tools.exact_functions import CONSTANTS, FUNCTIONS
from milliwatt.tools.registry import ToolContext

N = rf"(?:{NUMBER})"
# an operand: a number, a parenthesised group or a function call (one level deep)
A = rf"(?:{N}|\([^()]*\)|[a-z_]+\([^()]*\))"
LIST = rf"{N}(?:(?:\s*,\s*|\s+|\s*,?\s*(?:and|&)\s+){N})+"

_PREFIX = re.compile(
    r"^(?:(?:what do you get (?:if|when) you|what(?:'s| is| are| does| do| would be| will be)?"
    r"|whats|how much (?:is|are|does|do|would|will)|calculate|compute|evaluate|work out|solve"
    r"|find|figure out|determine|give me|get|and|then|now|also|the answer to|the answer of"
    r"|the value of|the result of|the outcome of|the following|the|if you|i need|i want|simplify"
    r"|quick math|math)(?:\s*:\s*|\s+))+"
)
_SUFFIX = re.compile(
    r"\s*(?:=\s*\??|equal|equals|make|makes|come to|comes to|give|gives|is|be|is how much"
    r"|as a decimal"
    r"|as a decimal number|in decimal form)$"
)
# "... rounded to 2 decimal places" after any expression
_ROUNDED = re.compile(
    r",?\s*(?:and )?(?:rounded|round(?:ed)? it|round the answer|round the result|) ?to "
    r"(?:(\d{1,2}) (?:decimal places?|decimals|dp|places?)|(?:the )?nearest (?:whole number"
    r"|integer))$"
)
_CURRENCY = re.compile(r"[$€£¥]\s*(?=[\d.])|(?<=\d)\s*(?:dollars?|bucks|euros?|usd|eur)\b")

# whole-request templates: (pattern, expression template, unit of the answer)
_TEMPLATES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(rf"^(?:increase|raise) ({A}) by ({N})\s*%$"), r"\1 * (1 + \2/100)", ""),
    (
        re.compile(rf"^(?:decrease|reduce|lower|discount) ({A}) by ({N})\s*%$"),
        r"\1 * (1 - \2/100)",
        "",
    ),
    (re.compile(rf"^({A}) (?:plus|\+|increased by) ({N})\s*%$"), r"\1 * (1 + \2/100)", ""),
    (re.compile(rf"^({A}) (?:minus|-|less|decreased by) ({N})\s*%$"), r"\1 * (1 - \2/100)", ""),
    (re.compile(rf"^({N})\s*% off(?: of)? ({A})$"), r"\2 * (1 - \1/100)", ""),
    (re.compile(rf"^({A}) more than ({A})$"), r"\2 + \1", ""),
    (re.compile(rf"^({A}) (?:less|fewer) than ({A})$"), r"\2 - \1", ""),
    (re.compile(rf"^({A}) is what (?:percent|percentage|%) of ({A})$"), r"\1 / \2 * 100", "%"),
    (re.compile(rf"^what (?:percent|percentage|%) of ({A}) is ({A})$"), r"\2 / \1 * 100", "%"),
    (
        re.compile(rf"^what (?:percent|percentage|%) is ({A}) (?:of|out of) ({A})$"),
        r"\1 / \2 * 100",
        "%",
    ),
    (
        re.compile(rf"^(?:express )?({N}) (?:out of|/) ({N}) as a percent(?:age)?$"),
        r"\1 / \2 * 100",
        "%",
    ),
    (
        re.compile(
            rf"^(?:the )?percent(?:age)? (?:increase|decrease|change|difference) "
            rf"from ({A}) to ({A})$"
        ),
        r"(\2 - \1) / \1 * 100",
        "%",
    ),
    (re.compile(rf"^add ({A}) (?:to|and) ({A})$"), r"\1 + \2", ""),
    (re.compile(rf"^(?:subtract|take|take away) ({A}) (?:away )?from ({A})$"), r"\2 - \1", ""),
    (re.compile(rf"^multiply ({A}) (?:by|and|with|times) ({A})$"), r"\1 * \2", ""),
    (re.compile(rf"^divide ({A}) by ({A})$"), r"\1 / \2", ""),
    (
        re.compile(
            rf"^round ({A}) to ({N}) (?:decimal places?|decimals|dp|places?|"
            r"digits after the decimal point)$"
        ),
        r"round(\1, \2)",
        "",
    ),
    (
        re.compile(rf"^round ({A}) to the nearest (?:whole number|integer|unit|one)$"),
        r"round(\1)",
        "",
    ),
]
_ROUND_NEAREST = re.compile(
    rf"^round ({A}) to the nearest (ten|hundred|thousand|tenth|hundredth|thousandth|10|100|1000)$"
)
_NEAREST_PLACES = {
    "ten": -1,
    "hundred": -2,
    "thousand": -3,
    "tenth": 1,
    "hundredth": 2,
    "thousandth": 3,
    "10": -1,
    "100": -2,
    "1000": -3,
}

_LISTS = {
    "gcd": r"gcd|gcf|hcf|greatest common (?:divisor|factor)|highest common factor",
    "lcm": r"lcm|least common multiple|lowest common multiple|smallest common multiple",
    "mean": r"average|mean|arithmetic mean",
    "median": r"median",
    "pstdev": r"population standard deviation",
    "stdev": r"(?:sample )?standard deviation|std dev|stdev",
    "variance": r"(?:sample )?variance",
    "sum": r"sum|total",
    "product": r"product",
    "max": r"maximum|max|largest|biggest|greatest",
    "min": r"minimum|min|smallest|lowest",
}
_OF_NUMBERS = r"(?:the )?(?:(?:following|these) )?(?:numbers|values)?:?\s*"
# a verb before the list: "average these numbers: 10, 15, 20", "add up 3, 4 and 5"
_LIST_VERBS = {
    "mean": r"average|find the average of|take the average of",
    "sum": r"add up|sum up|sum|total",
    "product": r"multiply together",
}
_VERB_CALLS = [
    (
        re.compile(rf"^(?:{verbs}) (?:(?:these|the following) )?(?:numbers|values)?:?\s*({LIST})$"),
        name,
    )
    for name, verbs in _LIST_VERBS.items()
]
_LIST_CALLS = [
    (re.compile(rf"\b(?:the )?(?:{words}) of {_OF_NUMBERS}({LIST})"), name)
    for name, words in _LISTS.items()
]
_LIST_SEPARATOR = re.compile(r"\s*,?\s*(?:and|&)\s+|\s*,\s*|\s+")

# phrasings rewritten in place, in this order, until only an expression is left
_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\ba dozen\b"), "12"),
    (re.compile(r"\ba (?=\d)"), ""),
    (re.compile(r"\b(\d+) (?:halves|half)\b"), r"(\1/2)"),
    (re.compile(r"\b(\d+) (?:thirds?|3rds?)\b"), r"(\1/3)"),
    (re.compile(r"\b(\d+) (?:quarters?|4ths?|fourths?)\b"), r"(\1/4)"),
    (re.compile(rf"({N}) dozen\b"), r"\1*12"),
    (re.compile(r"(?<=[\d)])\s*x\s*(?=[\d(])"), " * "),
    (re.compile(rf"({N})\s*% of\b"), r"(\1/100) *"),
    (
        re.compile(rf"({N})\s*% (?:tip|tax|discount|commission|markup|service charge) (?:on|of)\b"),
        r"(\1/100) *",
    ),
    (re.compile(rf"\b({N})/({N}) of\b"), r"(\1/\2) *"),
    (re.compile(r"\b(?:one )?half of\b"), "(1/2) *"),
    (re.compile(r"\b(?:a )?quarter of\b"), "(1/4) *"),
    (re.compile(r"\b(?:double|twice)\b(?: of)?"), "2 *"),
    (re.compile(r"\btriple\b(?: of)?"), "3 *"),
    (re.compile(rf"({A}) doubled\b"), r"2 * \1"),
    (re.compile(rf"({A}) halved\b"), r"\1 / 2"),
    (re.compile(rf"\b(?:the )?square root of ({A})"), r"sqrt(\1)"),
    (re.compile(rf"\b(?:the )?cube root of ({A})"), r"cbrt(\1)"),
    (re.compile(rf"\b(?:the )?({N})(?:st|nd|rd|th) root of ({A})"), r"root(\2, \1)"),
    (re.compile(rf"(?:√|\bsqrt\s+(?:of\s+)?)({A})"), r"sqrt(\1)"),
    (re.compile(rf"({A}) squared\b"), r"(\1)**2"),
    (re.compile(rf"({A}) cubed\b"), r"(\1)**3"),
    (re.compile(rf"({A}) (?:raised )?to the power(?: of)? ({A})"), r"(\1)**(\2)"),
    (re.compile(rf"\b(?:the )?square of ({A})"), r"(\1)**2"),
    (re.compile(rf"\b(?:the )?cube of ({A})"), r"(\1)**3"),
    (re.compile(rf"({A}) (?:raised )?to the ({N})(?:st|nd|rd|th)(?: power)?"), r"(\1)**(\2)"),
    (re.compile(rf"({A}) raised to ({A})"), r"(\1)**(\2)"),
    (re.compile(rf"\b(?:the )?factorial of ({A})"), r"factorial(\1)"),
    (re.compile(rf"({A}) factorial\b"), r"factorial(\1)"),
    (re.compile(r"(?<!\d)(\d++)!(?!=)"), r"factorial(\1)"),
    (
        re.compile(rf"\b(?:the )?remainder (?:of|when|after) ({A}) (?:is )?divided by ({A})"),
        r"(\1 % \2)",
    ),
    (re.compile(rf"\b(?:the )?difference (?:between|of) ({A}) and ({A})"), r"(\1 - \2)"),
    (re.compile(rf"\b(?:the )?quotient of ({A}) (?:and|by) ({A})"), r"(\1 / \2)"),
    (re.compile(rf"({A}) subtracted from ({A})"), r"(\2 - \1)"),
    (re.compile(rf"({A}) added to ({A})"), r"(\2 + \1)"),
    (re.compile(r"\s+(?:plus|and then add|added to)\s+"), " + "),
    (re.compile(r"\s+(?:minus|less|take away)\s+"), " - "),
    (re.compile(r"^minus\s+"), "-"),
    (re.compile(r"\s+(?:times|multiplied by|multiplied with)\s+"), " * "),
    (re.compile(r"\s+(?:divided by|over|divided into equal parts of)\s+"), " / "),
    (re.compile(r"\s+(?:mod|modulo|modulus)\s+"), " % "),
    (re.compile(r"\^"), "**"),
]
_PERCENT_WORD = re.compile(r"(?<=\d)\s*(?:percent|per cent|pct)\b")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d,])")
_EXPONENT = re.compile(r"(?<![\d.])\d++(?:\.\d++)?e[-+]?\d++")  # 1e6 is a number, not a name
_IDENTIFIER = re.compile(r"[a-z_][a-z_0-9]*")
_ALLOWED = re.compile(r"[\d\s.+\-*/%(),]*")
_IMPLICIT_PRODUCT = re.compile(r"[\d)]\s*\(")
_OPERATION = re.compile(r"[\w)]\s*(?:\*\*|[-+*/%])\s*[-+(\w.]|[a-z_]+\(")


# every word any phrasing above can consume; a request with another word is not arithmetic,
# and is turned away before the rewrites run (most requests for the model end here)
_VOCABULARY = frozenset(
    word
    for source in (
        _PREFIX.pattern,
        _SUFFIX.pattern,
        _ROUNDED.pattern,
        _CURRENCY.pattern,
        _ROUND_NEAREST.pattern,
        *(p.pattern for p, _, _ in _TEMPLATES),
        *(p.pattern for p, _ in _LIST_CALLS),
        *(p.pattern for p, _ in _VERB_CALLS),
        *(p.pattern for p, _ in _REWRITES),
        *FUNCTIONS,
        *CONSTANTS,
        *_NEAREST_PLACES,
    )
    for word in re.findall(r"[a-z]+", source)
)


class ArithmeticResolver:
    tools = frozenset({"math.calculate"})

    def match(self, request: Request, context: ToolContext) -> Match | None:
        expression, unit = to_expression(request.every)
        if expression is None:
            return None
        return Match(
            "math.calculate",
            {"expression": expression},
            lambda value: _say(expression, value, unit),
            errors_are_answers=True,
        )


def to_expression(text: str) -> tuple[str | None, str]:
    """The expression a request asks for and the answer's unit ("%" or ""), or (None, "")."""
    if not _VOCABULARY.issuperset(re.findall(r"[a-z]+", text)):
        return None, ""
    whole = _PERCENT_WORD.sub("%", _CURRENCY.sub("", text)).strip()
    s = _PREFIX.sub("", whole).strip()
    s = _SUFFIX.sub("", s).strip()
    s = _PREFIX.sub("", s).strip()
    places: str | None = None
    if (rounded := _ROUNDED.search(s)) and not s.startswith("round "):
        places, s = rounded.group(1) or "0", s[: rounded.start()].strip()
    if not s or not any(c.isdigit() for c in s):
        return None, ""
    expression, unit = _expression(whole, s)
    if expression is not None and places is not None:
        expression = _checked(f"round({expression}, {places})")
    return expression, unit


def _expression(whole: str, s: str) -> tuple[str | None, str]:
    for pattern, template, unit in _TEMPLATES:
        for candidate in (whole, s):  # some templates begin with "what"
            if pattern.fullmatch(candidate):
                return _checked(pattern.sub(template, candidate)), unit
    if nearest := _ROUND_NEAREST.fullmatch(s):
        places = _NEAREST_PLACES[nearest.group(2)]
        return _checked(f"round({nearest.group(1)}, {places})"), ""
    for pattern, name in _VERB_CALLS:
        if verb := pattern.fullmatch(s):
            return _checked(_call(name, verb)), ""
    for pattern, name in _LIST_CALLS:
        s = pattern.sub(partial(_call, name), s)
    for pattern, replacement in _REWRITES:
        s = pattern.sub(replacement, s)
    return _checked(s), ""


def _call(name: str, m: re.Match[str]) -> str:
    return f"{name}({_list_args(m.group(1))})"


def _list_args(text: str) -> str:
    return ", ".join(
        _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), item)
        for item in _LIST_SEPARATOR.split(text.strip())
        if item
    )


def _checked(expression: str) -> str | None:
    expression = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), expression)
    expression = " ".join(expression.split())
    names = set(_IDENTIFIER.findall(_EXPONENT.sub("", expression)))
    if names - FUNCTIONS.keys() - CONSTANTS.keys():
        return None  # a word is left over: not pure arithmetic
    if not _ALLOWED.fullmatch(_IDENTIFIER.sub("", expression)):
        return None
    if not _OPERATION.search(expression):
        return None  # a lone number is not a question for the calculator
    if _IMPLICIT_PRODUCT.search(expression):
        return None  # "6/2(1+2)": people disagree on what it means
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # not an expression after all ("3.5.2 + 1")
    if isinstance(tree.body, ast.Tuple):
        return None  # "3,5 + 1": a decimal comma, or a list; either way not one number
    return expression


def _say(expression: str, value: dict[str, Any], unit: str) -> str:
    shown = f"{value['fraction']} ≈ {value['result']}" if "fraction" in value else value["result"]
    rounded = "" if value["exact"] else " (rounded)"
    return f"{_pretty(expression)} = {shown}{unit}{rounded}"


def _pretty(expression: str) -> str:
    return expression.replace("**", "^")
