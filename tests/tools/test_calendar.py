"""calendar.*: a per-user calendar in SQLite and in PostgreSQL, conflict checks under
concurrency, iCalendar export."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import icalendar
import pytest

from milliwatt.tools.registry import ToolContext
from milliwatt.tools.scheduling import book, cancel, export_ics, free_busy


@pytest.fixture
def context(tmp_path: Path, storage_url: str | None) -> ToolContext:
    return ToolContext(user="ada", data_dir=tmp_path, storage_url=storage_url)


def booked(context: ToolContext, **arguments: object) -> dict[str, str]:
    outcome = book.call(arguments, context)
    assert outcome.ok, outcome.error
    return outcome.value


def test_book_and_conflict(context: ToolContext) -> None:
    first = booked(
        context,
        title="Standup",
        start="2026-03-02 09:00",
        duration_minutes=30,
        timezone="Europe/Paris",
    )
    assert (first["start"], first["end"]) == ("2026-03-02T09:00+01:00", "2026-03-02T09:30+01:00")
    clash = book.call(
        {
            "title": "Clash",
            "start": "2026-03-02 09:15",
            "end": "2026-03-02 10:00",
            "timezone": "Europe/Paris",
        },
        context,
    )
    assert "conflicts with 'Standup'" in (clash.error or "")
    # the same instant written in another zone is still a conflict
    utc = book.call({"title": "UTC", "start": "2026-03-02 08:10", "duration_minutes": 5}, context)
    assert "conflicts" in (utc.error or "")
    # touching is not overlapping
    booked(
        context,
        title="Next",
        start="2026-03-02 09:30",
        duration_minutes=30,
        timezone="Europe/Paris",
    )


def test_concurrent_bookings_of_one_slot_admit_exactly_one(context: ToolContext) -> None:
    def attempt(i: int) -> bool:
        return book.call(
            {"title": f"try {i}", "start": "2026-05-01 10:00", "duration_minutes": 60}, context
        ).ok

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count(True) == 1


def test_free_busy_lists_events_and_gaps(context: ToolContext) -> None:
    booked(context, title="A", start="2026-03-02 10:00", end="2026-03-02 11:00")
    booked(context, title="B", start="2026-03-02 13:00", end="2026-03-02 14:00")
    value = free_busy.call({"start": "2026-03-02 09:00", "end": "2026-03-02 17:00"}, context).value
    assert value["free"] is False
    assert [e["title"] for e in value["busy"]] == ["A", "B"]
    assert [(s["start"][11:16], s["end"][11:16]) for s in value["free_slots"]] == [
        ("09:00", "10:00"),
        ("11:00", "13:00"),
        ("14:00", "17:00"),
    ]
    empty = free_busy.call({"start": "2026-03-03 09:00", "end": "2026-03-03 10:00"}, context)
    assert empty.value["free"] is True


def test_cancel_and_user_isolation(context: ToolContext) -> None:
    event = booked(context, title="A", start="2026-03-02 10:00", duration_minutes=60)
    other = replace(context, user="bob")
    assert "no event with id" in (cancel.call({"event_id": event["id"]}, other).error or "")
    assert booked(other, title="Bob's", start="2026-03-02 10:00", duration_minutes=60)
    assert cancel.call({"event_id": event["id"]}, context).ok
    booked(context, title="A again", start="2026-03-02 10:00", duration_minutes=60)


def test_ics_export_round_trips_and_escapes(context: ToolContext) -> None:
    booked(context, title="Review; notes, v2", start="2026-03-02 10:00", duration_minutes=45)
    booked(
        context,
        title="Evil\r\nATTENDEE:mailto:x@evil.test",
        start="2026-03-03 10:00",
        duration_minutes=15,
    )
    text = export_ics.call({}, context).value
    parsed = icalendar.Calendar.from_ical(text)
    events = list(parsed.walk("VEVENT"))
    assert [str(e["summary"]) for e in events] == [
        "Review; notes, v2",
        "Evil ATTENDEE:mailto:x@evil.test",
    ]
    assert "\nATTENDEE" not in text
    assert events[0].decoded("dtstart").isoformat() == "2026-03-02T10:00:00+00:00"
    window = export_ics.call({"start": "2026-03-03", "end": "2026-03-04"}, context).value
    assert len(list(icalendar.Calendar.from_ical(window).walk("VEVENT"))) == 1


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"title": "", "start": "2026-03-02 10:00", "duration_minutes": 5}, "title must be"),
        ({"title": "x" * 201, "start": "2026-03-02 10:00", "duration_minutes": 5}, "title"),
        ({"title": "x", "start": "2026-03-02 10:00"}, "either end or duration_minutes"),
        ({"title": "x", "start": "2026-03-02 10:00", "end": "2026-03-02 09:00"}, "end after"),
        ({"title": "x", "start": "2026-03-02 10:00", "duration_minutes": 0}, "between 1"),
        ({"title": "x", "start": "2026-03-02", "end": "2026-05-02"}, "at most 31 days"),
        ({"title": "x", "start": "someday", "duration_minutes": 5}, "does not look like a date"),
        (
            {"title": "x", "start": "2026-03-02 10:00", "duration_minutes": 5, "timezone": "Mars"},
            "unknown time zone",
        ),
    ],
)
def test_bad_bookings(context: ToolContext, arguments: dict[str, object], reason: str) -> None:
    assert reason in (book.call(arguments, context).error or "")
