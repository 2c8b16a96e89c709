"""Text questions: letters in a word, counts in a quoted text, extraction, regular expressions.

The text to work on must be unmistakable: a single word, or quoted, or after a colon.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from milliwatt.agent.resolvers.common import Match, Request
from milliwatt.tools.registry import ToolContext

_Q = r"[\"'`]"
_WORD = r"[\"'`]?(?P<word>[^\W\d_][\w'-]{0,60}?)[\"'`]?"
_IN = r"in (?:the (?:word|name|string) )?"
_LETTER = [
    re.compile(
        rf"^how many (?:times (?:does|do|is) )?(?:the )?(?:letter |character )?"
        rf"{_Q}?(?P<ch>[^\W\d_]){_Q}?(?:'s|s)? (?:are |is |appear |appears |occur |"
        rf"does |do )?(?:there )?{_IN}{_WORD}(?: appear| occur)?$",
        re.I,
    ),
    re.compile(
        rf"^how many times (?:does|do|is) (?:the )?(?:letter |character )?{_Q}?"
        rf"(?P<ch>[^\W\d_]){_Q}? (?:appear|occur|show up|used) {_IN}{_WORD}$",
        re.I,
    ),
    re.compile(
        rf"^in {_IN[3:]}{_WORD},? how many {_Q}?(?P<ch>[^\W\d_]){_Q}?(?:'s|s)? "
        rf"(?:are there|are|is there|does it have)$",
        re.I,
    ),
    re.compile(
        rf"^count (?:the |all the )?(?:number of )?(?:letter )?{_Q}?(?P<ch>[^\W\d_])"
        rf"{_Q}?(?:'s|s)? {_IN}{_WORD}$",
        re.I,
    ),
]
_SUBSTRING = re.compile(
    r"^(?:how many times (?:does|do|is) |count (?:the )?(?:occurrences|instances) of )"
    r"(?:the (?:word|phrase|string|substring|letter) )?"
    r"(?P<q1>[\"'`])(?P<sub>.{1,100}?)(?P=q1) (?:appears? |occurs? |used )?in:?\s*"
    r"(?P<q2>[\"'`])(?P<text>.+)(?P=q2)$",
    re.I | re.S,
)
_WHAT = r"(?P<what>letters|characters|chars|words|vowels|digits|sentences|lines)"
_TARGET = r"(?: the (?:word|sentence|text|string|phrase|following(?: text| sentence)?))?"
# the text after a colon, or quoted
_BODY = r"(?:(?::\s*|\s+)(?P<q>[\"'`])(?P<quoted>.+)(?P=q)|:\s*(?P<rest>.+))"
_STATS = [
    re.compile(rf"^how many {_WHAT} (?:are |is )?(?:there )?in{_TARGET}{_BODY}$", re.I | re.S),
    re.compile(rf"^count (?:the )?(?:number of )?{_WHAT} in{_TARGET}{_BODY}$", re.I | re.S),
    re.compile(
        rf"^(?:what is )?the (?:number of )?{_WHAT}(?: count)? (?:in|of){_TARGET}{_BODY}$",
        re.I | re.S,
    ),
    re.compile(
        rf"^how many (?P<what>letters|characters|vowels) (?:does|is there in) "
        rf"(?:the (?:word|name|string) )?{_WORD} (?:have|contain|has)$",
        re.I,
    ),
    # a single bare word: "how many letters are in encyclopedia"
    re.compile(
        rf"^how many (?P<what>letters|characters|vowels) (?:are |is )?(?:there )?"
        rf"{_IN}{_WORD}$",
        re.I,
    ),
]
_LENGTH = re.compile(
    r"^(?:what(?:'s| is) the length of|how long is)(?: the (?:string|word|text|phrase))?"
    r"(?:\s+(?P<q>[\"'`])(?P<quoted>.+)(?P=q)|:\s*(?P<rest>.+?))(?: in characters)?$",
    re.I | re.S,
)
_KIND = {
    "email": "emails",
    "e-mail": "emails",
    "url": "urls",
    "link": "urls",
    "web": "urls",
    "phone": "phone_numbers",
    "telephone": "phone_numbers",
    "number": "numbers",
}
_EXTRACT = re.compile(
    r"^(?:extract|find|list|get|pull out|show|give)(?: me)? (?:all )?(?:of )?(?:the )?"
    r"(?P<kind>e-?mail|url|link|web|phone|telephone|number)s?(?: addresses| numbers)? "
    r"(?:from|in)(?: the following| this)?(?: text| message| string| email| note)?"
    r"\s*:\s*(?P<text>.+)$",
    re.I | re.S,
)
_REGEX = re.compile(
    r"^(?:find|list|show|get)(?: me)? (?:all )?(?:the )?match(?:es)? (?:of|for) "
    r"(?:the )?(?:regex |regular expression |pattern )?(?:/(?P<slash>.+?)/|`(?P<tick>.+?)`) "
    r"in\s*:?\s*(?P<text>.+)$",
    re.I | re.S,
)


class TextResolver:
    tools = frozenset({"text.count", "text.stats", "text.extract", "text.regex"})

    def match(self, request: Request, context: ToolContext) -> Match | None:
        text = request.plain
        for pattern in _LETTER:
            if m := pattern.fullmatch(text):
                ch, word = m.group("ch"), m.group("word")
                return Match(
                    "text.count",
                    {"text": word, "substring": ch},
                    partial(_say_count, word=word),
                )
        if m := _SUBSTRING.fullmatch(text):
            return Match(
                "text.count",
                {"text": m.group("text"), "substring": m.group("sub")},
                partial(_say_count, word=None),
            )
        for pattern in _STATS:
            if m := pattern.fullmatch(text):
                groups = m.groupdict()
                body = groups.get("word") or groups.get("quoted") or groups.get("rest")
                what = _STAT_FIELD[m.group("what").lower()]
                return Match("text.stats", {"text": body}, partial(_say_stat, field=what))
        if m := _LENGTH.fullmatch(text):
            body = m.group("quoted") or m.group("rest")
            return Match("text.stats", {"text": body}, partial(_say_stat, field="characters"))
        if m := _EXTRACT.fullmatch(text):
            kind = _KIND[m.group("kind").lower()]
            return Match("text.extract", {"text": m.group("text"), "kind": kind}, _say_found)
        if m := _REGEX.fullmatch(text):
            pattern_text = m.group("slash") or m.group("tick")
            return Match(
                "text.regex",
                {"pattern": pattern_text, "text": m.group("text")},
                _say_matches,
                errors_are_answers=True,
                refusal="That pattern cannot be used: {}.",
            )
        return None


_STAT_FIELD = {
    "letters": "letters",
    "characters": "characters",
    "chars": "characters",
    "words": "words",
    "vowels": "vowels",
    "digits": "digits",
    "sentences": "sentences",
    "lines": "lines",
}


def _say_stat(value: dict[str, Any], field: str) -> str:
    return f"{value[field]} {field.replace('_', ' ')}."


def _say_count(value: dict[str, Any], word: str | None) -> str:
    where = f" in {word!r}" if word else ""
    n = value["count"]
    return f"{n} — {value['substring']!r} occurs {n} time{'s' if n != 1 else ''}{where}."


def _say_found(value: dict[str, Any]) -> str:
    kind = value["kind"].replace("_", " ")
    if not value["items"]:
        return f"No {kind} found."
    return f"Found {value['count']} {kind}: {', '.join(value['items'])}"


def _say_matches(value: dict[str, Any]) -> str:
    if not value["count"]:
        return "No matches."
    shown = ", ".join(repr(m["match"]) for m in value["matches"][:20])
    return f"{value['count']} match{'es' if value['count'] != 1 else ''}: {shown}"
