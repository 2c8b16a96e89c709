"""Dates and times: weekdays, leap years, date arithmetic, intervals and time zones.

Date phrases are read by the dates tools' parser (dateparser behind a "looks like a date"
check); a phrase it cannot read sends the request to the model.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from milliwatt.agent.resolvers.common import Match, Request, plain_number
from milliwatt.tools.dates import DateError, parse_moment
from milliwatt.tools.holidays import holiday
from milliwatt.tools.registry import ToolContext
from milliwatt.tools.timezones import find_zone_name

D = r"(?P<date>[\w ,./:'-]{3,60}?)"
_WEEKDAY = [
    re.compile(
        rf"^(?:on )?what (?:day(?: of the week)?|weekday) (?:will it be on|was it on|is it on|"
        rf"will it be|was it|is it|is|was|will be|falls on|does|did|will) {D}"
        rf"(?: fall on| fall| be| land on| land)?$"
    ),
    re.compile(rf"^(?:which|what) (?:day of the week|weekday) (?:is|was|will be|falls on) {D}$"),
    re.compile(rf"^(?:what (?:is|was|will be) )?(?:the )?day of the week (?:of|for|on) {D}$"),
]
_LEAP = [
    re.compile(r"^(?:is|was|will) (?:the year )?(?P<year>\d{1,4}) (?:be )?a leap year$"),
    re.compile(r"^(?:is|was) (?:the year )?(?P<year>\d{1,4}) leap$"),
    re.compile(
        r"^(?:check )?(?:if|whether) (?:the year )?(?P<year>\d{1,4}) (?:is|was) "
        r"a leap year$"
    ),
]
_UNITS = r"(?P<unit>days?|weeks?|months?|years?|hours?|minutes?)"
_AMOUNT = r"(?P<n>\d{1,6})"
_ADD = [
    re.compile(
        rf"^(?:what(?:'s| is| was| will be)? )?(?:the )?(?:date |day )?"
        rf"(?:(?:is|was|will be|will it be|it will be) )?{_AMOUNT} {_UNITS} "
        rf"(?P<dir>after|before|from|since|prior to|following) {D}$"
    ),
    re.compile(rf"^(?P<dir>add) {_AMOUNT} {_UNITS} to {D}$"),
    re.compile(rf"^(?P<dir>subtract|take away) {_AMOUNT} {_UNITS} from {D}$"),
    re.compile(rf"^(?:what(?:'s| is) )?{D} (?P<dir>plus|minus|\+|-) {_AMOUNT} {_UNITS}$"),
]
_SPAN_UNITS = r"(?P<unit>days|weeks|months|years)"
_BETWEEN = [
    re.compile(
        rf"^how many {_SPAN_UNITS} (?:are there |are |is it |have passed |passed )?"
        r"(?:between|from) (?P<a>[\w ,./-]{3,60}?) (?:and|to|until|till|through) "
        r"(?P<b>[\w ,./-]{3,60}?)$"
    ),
    re.compile(
        rf"^(?:the )?(?:number of )?{_SPAN_UNITS} between (?P<a>[\w ,./-]{{3,60}}?) "
        r"and (?P<b>[\w ,./-]{3,60}?)$"
    ),
    re.compile(
        rf"^how many {_SPAN_UNITS} (?:are there |are |is it )?(?:until|till|to) "
        r"(?P<b>[\w ,./-]{3,60}?) (?:from|since|starting) (?P<a>[\w ,./-]{3,60}?)$"
    ),
    re.compile(
        rf"^how many {_SPAN_UNITS} (?:are )?(?:there )?(?:left )?(?:until|till|before|to) "
        r"(?P<b>[\w ,./'-]{3,60}?)$"
    ),
    re.compile(
        r"^how long is it (?:from|between) (?P<a>[\w ,./-]{3,60}?) (?:to|and|until) "
        r"(?P<b>[\w ,./-]{3,60}?)(?: in (?P<unit>days|weeks))?$"
    ),
]
_T = r"(?P<time>\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?|noon|midnight)"
_Z = r"[a-z][a-z /_.-]{1,30}?"
_ZONES = [
    re.compile(
        rf"^(?:what(?:'s| is) |what time is |convert )?{_T} (?:in )?(?P<src>{_Z}) (?:time )?"
        rf"(?:in|to|into) (?P<dst>{_Z})(?: time)?$"
    ),
    re.compile(rf"^if it(?:'s| is) {_T} in (?P<src>{_Z}),? what time is it in (?P<dst>{_Z})$"),
    re.compile(rf"^when it(?:'s| is) {_T} in (?P<src>{_Z}),? what time is it in (?P<dst>{_Z})$"),
    re.compile(
        rf"^what time is it in (?P<dst>{_Z}),? (?:if|when) it(?:'s| is) {_T} in "
        rf"(?P<src>{_Z})$"
    ),
]
_MONTH_DAYS = re.compile(
    r"^how many days (?:are there |are |does |is )?(?:in )?(?P<month>january|february|march|april|"
    r"may|june|july|august|september|october|november|december)(?: of)? (?P<year>\d{4})"
    r"(?: have)?$"
)
# "when is Halloween": only a named day is answered ("when is the meeting" is not a date)
_WHEN = re.compile(
    rf"^(?:when|what date|what day) (?:is|was|will be|does|did) {D}(?: fall| fall on| be| on)?$"
)
_TODAY = re.compile(
    r"^(?:what(?:'s| is) )?(?:the |today's )?(?:date|day)(?: today| is it today| is it)?$"
    r"|^what(?:'s| is) (?:the date|today's date|the day|today)(?: today)?$"
    r"|^what (?:date|day) is it(?: today)?$"
)
_NOW = re.compile(
    rf"^(?:what(?:'s| is) )?(?:the )?(?:current |local )?time (?:is it )?"
    rf"(?:right now |now )?in (?P<zone>{_Z})(?: right now| now)?$"
)
_NOW_ASK = re.compile(rf"^what time is it (?:right now |now )?in (?P<zone>{_Z})(?: right now)?$")


class DatesResolver:
    tools = frozenset(
        {
            "dates.add",
            "dates.difference",
            "dates.weekday",
            "dates.is_leap_year",
            "dates.convert_timezone",
            "dates.now",
        }
    )

    def match(self, request: Request, context: ToolContext) -> Match | None:
        text = request.lower
        for pattern in _LEAP:
            if m := pattern.fullmatch(text):
                return Match("dates.is_leap_year", {"year": int(m.group("year"))}, _say_leap)
        for pattern in _WEEKDAY:
            if (m := pattern.fullmatch(text)) and _is_date(m.group("date")):
                return Match("dates.weekday", {"date": m.group("date")}, lambda v: f"{v['text']}.")
        for pattern in _ADD:
            if (m := pattern.fullmatch(text)) and _is_date(m.group("date")):
                return _add(m)
        for pattern in _BETWEEN:
            m = pattern.fullmatch(text)
            start = (m.groupdict().get("a") or "today") if m else ""
            if m and _is_date(start) and _is_date(m.group("b")):
                unit = m.group("unit") or "days"
                return Match(
                    "dates.difference",
                    {"start": start, "end": m.group("b")},
                    partial(_say_span, unit=unit),
                )
        if (m := _WHEN.fullmatch(text)) and holiday(m.group("date")) is not None:
            named = m.group("date")
            return Match("dates.weekday", {"date": named}, partial(_say_named, named=named))
        if _TODAY.fullmatch(text):
            return Match("dates.weekday", {"date": "today"}, lambda v: f"Today is {v['text']}.")
        if m := _MONTH_DAYS.fullmatch(text):
            return _month_length(m.group("month"), int(m.group("year")))
        return _zones(text)


def _month_length(month: str, year: int) -> Match | None:
    number = _MONTHS.index(month) + 1
    if not 1 <= year <= 9998:
        return None
    following = f"{year + (number == 12)}-{number % 12 + 1:02d}-01"
    arguments = {"start": f"{year}-{number:02d}-01", "end": following}
    name = f"{month.capitalize()} {year}"
    return Match("dates.difference", arguments, lambda v: f"{name} has {v['days']} days.")


_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def _is_date(text: str) -> bool:
    try:
        parse_moment(text)
    except DateError:
        return False
    return True


def _add(m: re.Match[str]) -> Match:
    n = int(m.group("n"))
    if m.group("dir") in ("before", "prior to", "subtract", "take away", "minus", "-"):
        n = -n
    unit = m.group("unit").rstrip("s") + "s"
    return Match(
        "dates.add",
        {"date": m.group("date"), unit: n},
        lambda v: f"{v['result']['text']} ({v['result']['date']}).",
    )


def _zones(text: str) -> Match | None:
    for pattern in _ZONES:
        if m := pattern.fullmatch(text):
            src, dst = find_zone_name(m.group("src")), find_zone_name(m.group("dst"))
            if src and dst and _is_date(_time(m.group("time"))):
                return Match(
                    "dates.convert_timezone",
                    {"time": _time(m.group("time")), "from_zone": src, "to_zone": dst},
                    _say_zone,
                )
    for pattern in (_NOW, _NOW_ASK):
        if (m := pattern.fullmatch(text)) and (zone := find_zone_name(m.group("zone"))):
            return Match(
                "dates.now",
                {"zone_name": zone},
                lambda v: (
                    f"It is {v['time']} on {v['text'].split(' at ')[0]} "
                    f"in {v['zone']} ({v['utc_offset']})."
                ),
            )
    return None


def _time(text: str) -> str:
    text = text.replace(".", "").strip()
    if text.isdigit():  # "at 3" is not a time we can be sure of
        return "not a time"
    return text


def _say_leap(value: dict[str, Any]) -> str:
    verdict = "is a leap year" if value["leap"] else "is not a leap year"
    return f"{'Yes' if value['leap'] else 'No'}, {value['year']} {verdict} ({value['days']} days)."


def _say_named(value: dict[str, Any], named: str) -> str:
    return f"{named[0].upper()}{named[1:]} is on {value['text']}."


def _say_span(value: dict[str, Any], unit: str) -> str:
    days = value["days"]
    amount = {
        "days": plain_number(days),
        "weeks": f"{plain_number(value['weeks'])} weeks ({days // 7} weeks and "
        f"{days % 7} day{'s' if days % 7 != 1 else ''})",
        "months": f"{value['whole_months']} whole months",
        "years": f"{value['whole_years']} whole years",
    }[unit]
    if unit == "days":
        amount += " days"
    return f"There are {amount} from {value['start']['text']} to {value['end']['text']}."


def _say_zone(value: dict[str, Any]) -> str:
    source, target = value["from"], value["to"]
    return (
        f"{source['time']} in {source['zone']} is {target['time']} in {target['zone']} "
        f"({target['text']})."
    )
