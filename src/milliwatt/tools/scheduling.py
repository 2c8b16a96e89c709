"""Calendar tools: a calendar per user (in SQLite or PostgreSQL: calendar_store.py),
free/busy, conflict-checked booking and iCalendar export. Times are stored as UTC epoch
seconds; naive input times are read in the time zone the caller names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar

from milliwatt.tools.calendar_store import Event, calendar_store
from milliwatt.tools.dates import DateError, parse_moment
from milliwatt.tools.registry import Effect, Tool, ToolContext, ToolError, tool
from milliwatt.tools.timezones import UnknownZoneError, zone

MAX_TITLE_CHARS = 200
MAX_EVENT = timedelta(days=31)
MAX_WINDOW = timedelta(days=366)


def _moment(text: str, timezone: str) -> datetime:
    try:
        tz = zone(timezone)
        moment, _ = parse_moment(text)
    except (DateError, UnknownZoneError) as exc:
        raise ToolError(str(exc)) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)


def _window(start: str, end: str, timezone: str) -> tuple[datetime, datetime]:
    a, b = _moment(start, timezone), _moment(end, timezone)
    if b <= a:
        raise ToolError("the end must be after the start")
    if b - a > MAX_WINDOW:
        raise ToolError("a window may span at most 366 days")
    return a, b


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _iso(epoch: int, timezone: str) -> str:
    return datetime.fromtimestamp(epoch, zone(timezone)).isoformat(timespec="minutes")


def _event_dict(row: Event, timezone: str) -> dict[str, str]:
    return {
        "id": row[0],
        "title": row[1],
        "start": _iso(row[2], timezone),
        "end": _iso(row[3], timezone),
    }


@tool(
    effects={Effect.WRITES},
    name="calendar.book",
    examples=[
        "book a meeting tomorrow 10:00-11:00",
        "schedule dentist on March 3 at 9am for 30 minutes",
    ],
)
def book(
    context: ToolContext,
    title: str,
    start: str,
    end: str | None = None,
    duration_minutes: int | None = None,
    timezone: str = "UTC",
) -> dict[str, Any]:
    """Book an event in the user's calendar if the slot is free; refuses, naming the conflicting
    events, when it overlaps one. Give an end time or a duration in minutes."""
    title = " ".join(title.split())
    if not title or len(title) > MAX_TITLE_CHARS:
        raise ToolError(f"the title must be 1 to {MAX_TITLE_CHARS} characters")
    if (end is None) == (duration_minutes is None):
        raise ToolError("give either end or duration_minutes")
    begins = _moment(start, timezone)
    if duration_minutes is not None:
        if not 0 < duration_minutes <= MAX_EVENT.total_seconds() // 60:
            raise ToolError("duration_minutes must be between 1 and 44640 (31 days)")
        ends = begins + timedelta(minutes=duration_minutes)
    else:
        ends = _moment(end or "", timezone)
    if ends <= begins:
        raise ToolError("the event must end after it starts")
    if ends - begins > MAX_EVENT:
        raise ToolError("an event may last at most 31 days")
    a, b = _epoch(begins), _epoch(ends)
    event_id = uuid.uuid4().hex[:12]
    created = _epoch(datetime.now(UTC))
    conflicts = calendar_store(context).book(context.user, (event_id, title, a, b), created)
    if conflicts:
        names = ", ".join(f"{c[1]!r} ({_iso(c[2], timezone)})" for c in conflicts[:5])
        raise ToolError(f"the slot conflicts with {names}")
    return {"booked": True, **_event_dict((event_id, title, a, b), timezone)}


@tool(
    effects={Effect.WRITES},
    name="calendar.cancel",
    examples=["cancel event 3f2a9c1b7d4e"],
)
def cancel(context: ToolContext, event_id: str) -> dict[str, Any]:
    """Cancel (delete) one of the user's events by its id."""
    if not calendar_store(context).cancel(context.user, event_id):
        raise ToolError(f"no event with id {event_id[:40]!r}")
    return {"cancelled": event_id}


@tool(
    effects={Effect.READS_UNTRUSTED},  # titles may come from invitations others wrote
    name="calendar.free_busy",
    examples=["am I free tomorrow between 2pm and 4pm", "what is on my calendar on Friday"],
)
def free_busy(context: ToolContext, start: str, end: str, timezone: str = "UTC") -> dict[str, Any]:
    """List the user's events in a time window and the free gaps between them."""
    a, b = _window(start, end, timezone)
    rows = calendar_store(context).events(context.user, _epoch(a), _epoch(b))
    free, cursor = [], _epoch(a)
    for row in rows:
        if row[2] > cursor:
            free.append({"start": _iso(cursor, timezone), "end": _iso(row[2], timezone)})
        cursor = max(cursor, row[3])
    if cursor < _epoch(b):
        free.append({"start": _iso(cursor, timezone), "end": _iso(_epoch(b), timezone)})
    return {"free": not rows, "busy": [_event_dict(r, timezone) for r in rows], "free_slots": free}


@tool(
    effects={Effect.READS_UNTRUSTED},
    name="calendar.export_ics",
    examples=["export my calendar as ics"],
)
def export_ics(context: ToolContext, start: str | None = None, end: str | None = None) -> str:
    """Export the user's events (all, or those overlapping start..end) as an iCalendar
    (RFC 5545) document."""
    low, high = 0, 2**62
    if start is not None and end is not None:
        a, b = _window(start, end, "UTC")
        low, high = _epoch(a), _epoch(b)
    elif (start is None) != (end is None):
        raise ToolError("give both start and end, or neither")
    rows = calendar_store(context).events(context.user, low, high)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//milliwatt//calendar//EN")
    cal.add("version", "2.0")
    for event_id, title, a_epoch, b_epoch in rows:
        event = icalendar.Event()
        event.add("uid", f"{event_id}@milliwatt")
        event.add("summary", title)
        event.add("dtstart", datetime.fromtimestamp(a_epoch, UTC))
        event.add("dtend", datetime.fromtimestamp(b_epoch, UTC))
        event.add("dtstamp", datetime.now(UTC).replace(microsecond=0))
        cal.add_component(event)
    ical: bytes = cal.to_ical()
    return ical.decode("utf-8")


TOOLS: list[Tool] = [book, cancel, free_busy, export_ics]
