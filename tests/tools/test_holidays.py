"""Named days as dates: fixed ones, rule-based ones, and which year is meant."""

from __future__ import annotations

from datetime import date

import pytest

from milliwatt.tools.dates import difference, weekday
from milliwatt.tools.holidays import holiday

TODAY = date(2026, 12, 6)


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("Christmas", date(2026, 12, 25)),
        ("christmas day", date(2026, 12, 25)),
        ("New Year", date(2027, 1, 1)),  # the next one
        ("new years day 2027", date(2027, 1, 1)),
        ("New Year's Eve", date(2026, 12, 31)),
        ("Halloween", date(2027, 10, 31)),  # this year's is past
        ("halloween this year", date(2026, 10, 31)),
        ("last Christmas", date(2025, 12, 25)),
        ("christmas next year", date(2027, 12, 25)),
        ("Christmas of 1999", date(1999, 12, 25)),
        ("Easter 2027", date(2027, 3, 28)),
        ("good friday 2027", date(2027, 3, 26)),
        ("Thanksgiving 2026", date(2026, 11, 26)),  # fourth Thursday of November
        ("Memorial Day 2026", date(2026, 5, 25)),  # last Monday of May
        ("the fourth of July", date(2027, 7, 4)),
    ],
)
def test_named_days(phrase: str, expected: date) -> None:
    assert holiday(phrase, TODAY) == expected


def test_the_day_itself_counts_as_the_next_one() -> None:
    assert holiday("Christmas", date(2026, 12, 25)) == date(2026, 12, 25)
    assert holiday("Christmas", date(2026, 12, 26)) == date(2027, 12, 25)


@pytest.mark.parametrize("phrase", ["tuesday", "christmas party", "my birthday", "easter egg"])
def test_other_phrases_are_not_named_days(phrase: str) -> None:
    assert holiday(phrase, TODAY) is None


def test_the_date_tools_read_named_days() -> None:
    assert weekday.call({"date": "Christmas 2026"}).value["weekday"] == "Friday"
    span = difference.call({"start": "2026-12-01", "end": "christmas 2026"}).value
    assert span["days"] == 24
