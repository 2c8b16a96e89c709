"""Named days people ask about ("Christmas", "Halloween 2027", "next Easter") as dates.

Most are fixed days of the year; a few follow a rule (Easter, and US days like Thanksgiving,
the fourth Thursday of November). Without a year the next occurrence, today included, is
meant: "how many days until Christmas" on December 26 counts to next year's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

from dateutil.easter import easter
from dateutil.relativedelta import MO, SU, TH, relativedelta, weekday

Rule = Callable[[int], date]


def _fixed(month: int, day: int) -> Rule:
    return lambda year: date(year, month, day)


def _nth(month: int, day: weekday, n: int) -> Rule:
    """The n-th given weekday of a month (n = -1: the last)."""
    last = n < 0  # from the month's last day backwards
    return lambda year: date(year, month, 1) + relativedelta(day=31 if last else 1, weekday=day(n))


_DAYS: dict[str, Rule] = {
    "new year's day": _fixed(1, 1),
    "new year": _fixed(1, 1),
    "valentine's day": _fixed(2, 14),
    "st patrick's day": _fixed(3, 17),
    "saint patrick's day": _fixed(3, 17),
    "april fools' day": _fixed(4, 1),
    "april fool's day": _fixed(4, 1),
    "earth day": _fixed(4, 22),
    "independence day": _fixed(7, 4),
    "fourth of july": _fixed(7, 4),
    "halloween": _fixed(10, 31),
    "veterans day": _fixed(11, 11),
    "christmas eve": _fixed(12, 24),
    "christmas day": _fixed(12, 25),
    "christmas": _fixed(12, 25),
    "xmas": _fixed(12, 25),
    "boxing day": _fixed(12, 26),
    "new year's eve": _fixed(12, 31),
    "easter sunday": easter,
    "easter": easter,
    "good friday": lambda year: easter(year) - timedelta(days=2),
    "easter monday": lambda year: easter(year) + timedelta(days=1),
    "mother's day": _nth(5, SU, 2),  # the US and many others
    "father's day": _nth(6, SU, 3),
    "memorial day": _nth(5, MO, -1),
    "labor day": _nth(9, MO, 1),
    "thanksgiving": _nth(11, TH, 4),  # the US one
    "thanksgiving day": _nth(11, TH, 4),
}
_NAMES = "|".join(
    re.escape(n).replace("'", "'?").replace(r"\ ", r"\s+")
    for n in sorted(_DAYS, key=len, reverse=True)
)
_PHRASE = re.compile(
    rf"^(?:the\s+)?(?:(?P<which>next|last|this|this\s+year's|next\s+year's|last\s+year's)\s+)?"
    rf"(?P<name>{_NAMES})"
    rf"(?:\s+(?:day\s+)?(?:of\s+|in\s+)?(?P<year>\d{{4}})|\s+(?P<when>this|next|last)\s+year)?$",
    re.IGNORECASE,
)


def holiday(phrase: str, today: date | None = None) -> date | None:
    """The date a holiday phrase names, or None when the phrase is not one."""
    text = " ".join(phrase.strip().rstrip("?.!").replace("’", "'").split())
    m = _PHRASE.fullmatch(text)
    if m is None:
        return None
    key = m.group("name").lower()
    key = re.sub(r"\s+", " ", key)
    rule = _DAYS.get(key) or _DAYS[_with_apostrophe(key)]
    today = today or date.today()
    which = " ".join((m.group("which") or m.group("when") or "").lower().split())
    if m.group("year"):
        year = int(m.group("year"))
        return rule(year) if 1 <= year <= 9999 else None
    if which in ("this", "this year's") and m.group("when") != "next":
        return rule(today.year)
    if which in ("next year's",) or m.group("when") == "next":
        return rule(today.year + 1)
    if which in ("last year's",) or m.group("when") == "last":
        return rule(today.year - 1)
    if which == "last":  # the most recent one before today
        found = rule(today.year)
        return found if found < today else rule(today.year - 1)
    found = rule(today.year)  # the next one, today included
    return found if found >= today else rule(today.year + 1)


def _with_apostrophe(key: str) -> str:
    for name in _DAYS:
        if name.replace("'", "") == key.replace("'", ""):
            return name
    raise KeyError(key)
