"""dates.*: arithmetic, intervals, weekdays, leap years and time zones."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from milliwatt.tools.dates import (
    add,
    convert_timezone,
    difference,
    is_leap_year,
    now,
    parse_moment,
    weekday,
)
from milliwatt.tools.registry import ToolResult
from milliwatt.tools.timezones import find_zone_name


def ok(outcome: ToolResult) -> Any:
    assert outcome.ok, outcome.error
    return outcome.value


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"date": "March 1, 2026", "days": 90}, "2026-05-30"),
        ({"date": "2026-03-01", "days": -1}, "2026-02-28"),
        ({"date": "2024-03-01", "days": -1}, "2024-02-29"),
        ({"date": "2026-01-31", "months": 1}, "2026-02-28"),
        ({"date": "2024-02-29", "years": 1}, "2025-02-28"),
        ({"date": "1 March 2026", "weeks": 6}, "2026-04-12"),
        ({"date": "Dec 31, 1999", "days": 1}, "2000-01-01"),
        ({"date": "2026-12-31T23:30", "minutes": 45}, "2027-01-01"),
    ],
)
def test_add(arguments: dict[str, object], expected: str) -> None:
    assert ok(add.call(arguments))["result"]["date"] == expected


def test_add_keeps_the_time_when_one_was_given() -> None:
    value = ok(add.call({"date": "2026-12-31T23:30", "minutes": 45}))
    assert value["result"]["time"] == "00:15"
    assert "time" not in ok(add.call({"date": "2026-03-01", "days": 1}))["result"]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"date": "9999-12-31", "days": 1}, "outside the years"),
        ({"date": "0001-01-01", "days": -1}, "outside the years"),
        ({"date": "2026-01-01", "days": 10**12}, "too large"),
        ({"date": "42", "days": 1}, "does not look like a date"),
        ({"date": "hello world", "days": 1}, "does not look like a date"),
        ({"date": "x" * 500, "days": 1}, "1 to 120 characters"),
        ({"date": "", "days": 1}, "1 to 120 characters"),
        ({"date": "February 30, 2026", "days": 1}, "could not read"),
        ({"date": "Flarch 4, 2026", "days": 1}, "does not look like a date"),
    ],
)
def test_add_refusals(arguments: dict[str, object], reason: str) -> None:
    assert reason in (add.call(arguments).error or "")


def test_difference() -> None:
    value = ok(difference.call({"start": "March 1, 2026", "end": "June 1, 2026"}))
    assert value["days"] == 92
    assert value["whole_months"] == 3
    assert value["span"] == {"years": 0, "months": 3, "days": 0}
    back = ok(difference.call({"start": "2026-06-01", "end": "2026-03-01"}))
    assert back["days"] == -92
    leap = ok(difference.call({"start": "2024-01-01", "end": "2025-01-01"}))
    assert (leap["days"], leap["whole_years"]) == (366, 1)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        ("July 4, 1776", "Thursday"),
        ("2000-01-01", "Saturday"),
        ("1 January 1900", "Monday"),
        ("December 25, 2026", "Friday"),
        ("2024-02-29", "Thursday"),
    ],
)
def test_weekday(day: str, name: str) -> None:
    assert ok(weekday.call({"date": day}))["weekday"] == name


@pytest.mark.parametrize(
    ("year", "leap"), [(2024, True), (2000, True), (1900, False), (2100, False), (2026, False)]
)
def test_leap_years(year: int, leap: bool) -> None:
    value = ok(is_leap_year.call({"year": year}))
    assert value["leap"] is leap
    assert value["days"] == (366 if leap else 365)


def test_leap_year_range() -> None:
    assert "between 1 and 9999" in (is_leap_year.call({"year": 0}).error or "")


def test_time_zones_follow_summer_time() -> None:
    summer = ok(
        convert_timezone.call(
            {"time": "2026-07-01 15:00", "from_zone": "New York", "to_zone": "Tokyo"}
        )
    )
    assert (summer["to"]["date"], summer["to"]["time"]) == ("2026-07-02", "04:00")
    assert summer["from"]["utc_offset"] == "UTC-04:00"
    winter = ok(
        convert_timezone.call({"time": "2026-01-15 15:00", "from_zone": "EST", "to_zone": "CET"})
    )
    assert winter["to"]["time"] == "21:00"
    india = ok(
        convert_timezone.call(
            {"time": "2026-01-15 12:00", "from_zone": "UTC", "to_zone": "Asia/Kolkata"}
        )
    )
    assert india["to"]["time"] == "17:30"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Tokyo", "Asia/Tokyo"),
        ("new york", "America/New_York"),
        ("San Francisco", "America/Los_Angeles"),
        ("PST", "America/Los_Angeles"),
        ("utc", "UTC"),
        ("Europe/Paris", "Europe/Paris"),
        ("London time", "Europe/London"),
    ],
)
def test_zone_names(name: str, key: str) -> None:
    assert find_zone_name(name) == key


@pytest.mark.parametrize("name", ["../../etc/passwd", "Atlantis", "", "x" * 100, "Europe/"])
def test_unknown_zones(name: str) -> None:
    assert find_zone_name(name) is None
    assert "unknown time zone" in (now.call({"zone_name": name}).error or "")


def test_now_reads_the_clock_in_the_zone() -> None:
    value = ok(now.call({"zone_name": "Tokyo"}))
    clock = datetime.now(ZoneInfo("Asia/Tokyo"))
    assert value["zone"] == "Asia/Tokyo"
    assert value["date"] in {clock.date().isoformat(), (clock.date()).isoformat()}
    assert value["utc_offset"] == "UTC+09:00"


def test_parse_moment_reports_whether_a_time_was_given() -> None:
    assert parse_moment("March 1, 2026")[1] is False
    assert parse_moment("9:30 am on June 5, 2026") == (datetime(2026, 6, 5, 9, 30), True)


@pytest.mark.parametrize("day", ["03/04/2026", "4.3.2026", "1/2/26"])
def test_slashed_dates_that_read_both_ways_are_refused(day: str) -> None:
    assert "day-first or month-first" in (weekday.call({"date": day}).error or "")


def test_slashed_dates_that_read_one_way_are_accepted() -> None:
    assert ok(weekday.call({"date": "3/13/2026"}))["date"] == "2026-03-13"
    assert ok(weekday.call({"date": "04/04/2026"}))["date"] == "2026-04-04"
