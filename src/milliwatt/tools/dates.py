"""Date and time tools: arithmetic, intervals, weekdays, leap years and time zones."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from dateutil.relativedelta import relativedelta

from milliwatt.tools.holidays import holiday
from milliwatt.tools.registry import Effect, Tool, ToolError, tool
from milliwatt.tools.timezones import UnknownZoneError, zone

MAX_PHRASE_CHARS = 120
MAX_YEARS = 10_000  # offsets beyond this leave the calendar datetime can represent

# dateparser reads almost anything as a date ("42" becomes 2042); a phrase must look like one
_DATE_HINT = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b"
    r"|\b(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(day)?\b"
    r"|\b(today|tomorrow|yesterday|now|noon|midnight)\b"
    r"|\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{1,2}(:\d{2})?\s*[ap]\.?m\b"
    r"|\b\d{1,2}:\d{2}\b",
    re.IGNORECASE,
)
# words a date phrase may contain; any other word means it is not (only) a date
_DATE_VOCABULARY = """
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday
saturday sunday mon tue tues wed thu thur thurs fri sat sun today tomorrow yesterday now noon
midnight next last this coming previous ago in at on of the a an st nd rd th am pm a m p day
days week weeks month months year years hour hours minute minutes from after before morning
evening afternoon night t z utc gmt
"""
_DATE_WORDS = frozenset(_DATE_VOCABULARY.split())
_HAS_TIME = re.compile(r"\d:\d{2}|\b\d{1,2}\s*[ap]\.?m\b|\bnoon\b|\bmidnight\b|\bnow\b", re.I)


_SLASHED = re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.]\d{2,4}\b")
_ORDINAL = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)\b", re.IGNORECASE)
_DAY_FORMATS = (
    "%B %d %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%m/%d/%Y",
    "%Y/%m/%d",
    "%A %B %d %Y",
    "%a %b %d %Y",
    "%B %d %Y %H:%M",
    "%d %B %Y %H:%M",
)
_TIME_FORMATS = ("%H:%M", "%I:%M %p", "%I %p", "%I:%M%p", "%I%p")


class DateError(ValueError):
    """A date phrase was not understood or the arithmetic leaves the calendar."""


@cache
def _parser() -> Any:
    # imported lazily: dateparser takes about 0.4 s to load its language data
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=["en"],
        settings={
            "DATE_ORDER": "MDY",
            "PREFER_DAY_OF_MONTH": "first",
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )


def parse_moment(text: str) -> tuple[datetime, bool]:
    """Read a date or date-time phrase; returns it and whether a time of day was given."""
    phrase = " ".join(text.strip().split())
    if not phrase or len(phrase) > MAX_PHRASE_CHARS:
        raise DateError(f"a date must be 1 to {MAX_PHRASE_CHARS} characters")
    try:
        return datetime.fromisoformat(phrase), "T" in phrase or ":" in phrase
    except ValueError:
        pass
    if (named := holiday(phrase)) is not None:  # "Christmas", "Halloween 2027"
        return datetime.combine(named, datetime.min.time()), False
    if (slashed := _SLASHED.search(phrase)) and _ambiguous(*slashed.groups()):
        raise DateError(
            f"{slashed.group(0)} could be read day-first or month-first; write it as "
            "2026-03-04 or March 4, 2026"
        )
    fast = _common_format(phrase)
    if fast is not None:
        return fast
    words = set(re.findall(r"[a-z]+", phrase.lower()))
    if not _DATE_HINT.search(phrase) or words - _DATE_WORDS:
        raise DateError(f"{phrase!r} does not look like a date (e.g. 2026-03-01, March 1 2026)")
    result = _parser().get_date_data(phrase)
    if result.date_obj is None:
        raise DateError(f"could not read {phrase!r} as a date")
    moment = result.date_obj
    has_time = bool(_HAS_TIME.search(phrase) or words & {"hour", "hours", "minute", "minutes"})
    if not has_time:  # "tomorrow" is a day; dateparser adds the current time of day
        return moment.replace(hour=0, minute=0, second=0, microsecond=0), False
    return moment.replace(microsecond=0), has_time


def _ambiguous(first: str, second: str) -> bool:
    return first != second and int(first) <= 12 and int(second) <= 12


def _common_format(phrase: str) -> tuple[datetime, bool] | None:
    """The usual absolute shapes ("March 1, 2026", "1 March 2026", "3/4/2026", "9:30 am"),
    read with strptime in microseconds; anything else is left to dateparser."""
    text = _ORDINAL.sub(r"\1", phrase.replace(",", " ")).lower()
    text = " ".join(w for w in text.split() if w not in ("the", "of", "on"))
    for pattern in _DAY_FORMATS:
        try:
            return datetime.strptime(text, pattern), False
        except ValueError:
            continue
    for pattern in _TIME_FORMATS:
        try:
            clock = datetime.strptime(text.replace(".", ""), pattern).time()
        except ValueError:
            continue
        return datetime.combine(date.today(), clock), True
    return None


def parse_day(text: str) -> date:
    return parse_moment(text)[0].date()


def describe(moment: datetime | date, with_time: bool = False) -> dict[str, str]:
    day = moment if not isinstance(moment, datetime) else moment.date()
    text = f"{day:%A}, {day:%B} {day.day}, {day.year}"
    out = {"date": day.isoformat(), "weekday": f"{day:%A}", "text": text}
    if with_time and isinstance(moment, datetime):
        out["time"] = f"{moment:%H:%M}"
        out["text"] = f"{text} at {moment:%H:%M}"
    return out


def _wrap(exc: Exception) -> ToolError:
    return ToolError(str(exc))


@tool(
    effects={Effect.PURE},
    name="dates.add",
    examples=["90 days after March 1, 2026", "what date is 6 weeks from 2026-01-15"],
)
def add(
    date: str,
    years: int = 0,
    months: int = 0,
    weeks: int = 0,
    days: int = 0,
    hours: int = 0,
    minutes: int = 0,
) -> dict[str, Any]:
    """Add (or, with negative amounts, subtract) years, months, weeks, days, hours and minutes
    to a date, e.g. 90 days after 2026-03-01. The date may be ISO or a phrase like "March 1,
    2026" or "tomorrow". Month arithmetic keeps the day, clamped to the month's end."""
    if any(
        abs(v) > MAX_YEARS * 366 * 24 * 60 for v in (years, months, weeks, days, hours, minutes)
    ):
        raise ToolError("an amount is too large")
    try:
        start, has_time = parse_moment(date)
        step = relativedelta(years=years, months=months, weeks=weeks, days=days)
        result = start + step + timedelta(hours=hours, minutes=minutes)
    except DateError as exc:
        raise _wrap(exc) from None
    except (OverflowError, ValueError):
        raise ToolError("the result falls outside the years 1 to 9999") from None
    with_time = has_time or bool(hours or minutes)
    return {"start": describe(start, with_time), "result": describe(result, with_time)}


@tool(
    effects={Effect.PURE},
    name="dates.difference",
    examples=[
        "how many days between March 1 and June 1, 2026",
        "weeks from 2026-01-01 to 2026-12-25",
    ],
)
def difference(start: str, end: str) -> dict[str, Any]:
    """Count the time between two dates: whole days (end minus start, negative if end is
    earlier), weeks, and the span in years, months and days."""
    try:
        a, b = parse_day(start), parse_day(end)
    except DateError as exc:
        raise _wrap(exc) from None
    span = relativedelta(b, a) if b >= a else relativedelta(a, b)
    days = (b - a).days
    return {
        "start": describe(a),
        "end": describe(b),
        "days": days,
        "weeks": round(days / 7, 4),
        "span": {"years": span.years, "months": span.months, "days": span.days},
        "whole_months": span.years * 12 + span.months,
        "whole_years": span.years,
    }


@tool(
    effects={Effect.PURE},
    name="dates.weekday",
    examples=["what day of the week was July 4, 1776", "which weekday is 2026-12-25"],
)
def weekday(date: str) -> dict[str, Any]:
    """Name the day of the week of a date (ISO or a phrase like "July 4, 1776")."""
    try:
        return describe(parse_day(date))
    except DateError as exc:
        raise _wrap(exc) from None


@tool(
    effects={Effect.PURE},
    name="dates.is_leap_year",
    examples=["is 2024 a leap year", "was 1900 a leap year"],
)
def is_leap_year(year: int) -> dict[str, Any]:
    """Tell whether a year of the Gregorian calendar is a leap year, and how many days it has."""
    if not 1 <= year <= 9999:
        raise ToolError(f"the year must be between 1 and 9999, got {year}")
    leap = calendar.isleap(year)
    return {"year": year, "leap": leap, "days": 366 if leap else 365}


@tool(
    effects={Effect.PURE},
    name="dates.convert_timezone",
    examples=["3pm in New York in Tokyo time", "convert 09:00 CET to PST"],
)
def convert_timezone(time: str, from_zone: str, to_zone: str) -> dict[str, Any]:
    """Convert a time (optionally with a date, else today) from one time zone to another.
    Zones may be IANA names (Europe/Paris), abbreviations (EST, CET, UTC) or city names."""
    try:
        source, target = zone(from_zone), zone(to_zone)
        moment, _ = parse_moment(time)
    except (DateError, UnknownZoneError) as exc:
        raise _wrap(exc) from None
    local = moment.replace(tzinfo=source)
    converted = local.astimezone(target)
    return {
        "from": {**describe(local, True), "zone": str(source), "utc_offset": _offset(local)},
        "to": {**describe(converted, True), "zone": str(target), "utc_offset": _offset(converted)},
    }


@tool(
    effects={Effect.PURE},  # reads the clock, nothing else
    name="dates.now",
    examples=["what time is it in Tokyo", "current time in London"],
)
def now(zone_name: str = "UTC") -> dict[str, Any]:
    """The current date and time in a time zone (IANA name, abbreviation or city)."""
    try:
        tz = zone(zone_name)
    except UnknownZoneError as exc:
        raise _wrap(exc) from None
    moment = datetime.now(tz).replace(microsecond=0)
    return {**describe(moment, True), "zone": str(tz), "utc_offset": _offset(moment)}


def _offset(moment: datetime) -> str:
    text = moment.strftime("%z")
    return f"UTC{text[:3]}:{text[3:]}" if text else "UTC"


TOOLS: list[Tool] = [add, difference, weekday, is_leap_year, convert_timezone, now]
