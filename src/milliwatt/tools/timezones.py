"""Naming time zones the way people do: IANA keys, common abbreviations and city names."""

from __future__ import annotations

from datetime import tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# abbreviations name a region's clock, so summer time follows the calendar
ABBREVIATIONS = {
    "utc": "UTC",
    "gmt": "UTC",
    "z": "UTC",
    "et": "America/New_York",
    "est": "America/New_York",
    "edt": "America/New_York",
    "eastern": "America/New_York",
    "eastern time": "America/New_York",
    "ct": "America/Chicago",
    "cst": "America/Chicago",
    "cdt": "America/Chicago",
    "central time": "America/Chicago",
    "mt": "America/Denver",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "mountain time": "America/Denver",
    "pt": "America/Los_Angeles",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "pacific time": "America/Los_Angeles",
    "bst": "Europe/London",
    "cet": "Europe/Paris",
    "cest": "Europe/Paris",
    "eet": "Europe/Athens",
    "ist": "Asia/Kolkata",
    "jst": "Asia/Tokyo",
    "kst": "Asia/Seoul",
    "aest": "Australia/Sydney",
    "aedt": "Australia/Sydney",
    "nzst": "Pacific/Auckland",
}
# large cities that are not themselves zone names
CITIES = {
    "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "san diego": "America/Los_Angeles",
    "las vegas": "America/Los_Angeles",
    "washington": "America/New_York",
    "washington dc": "America/New_York",
    "boston": "America/New_York",
    "miami": "America/New_York",
    "philadelphia": "America/New_York",
    "atlanta": "America/New_York",
    "dallas": "America/Chicago",
    "houston": "America/Chicago",
    "austin": "America/Chicago",
    "montreal": "America/Toronto",
    "beijing": "Asia/Shanghai",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "osaka": "Asia/Tokyo",
    "kyoto": "Asia/Tokyo",
    "munich": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "hamburg": "Europe/Berlin",
    "barcelona": "Europe/Madrid",
    "milan": "Europe/Rome",
    "geneva": "Europe/Zurich",
    "edinburgh": "Europe/London",
    "manchester": "Europe/London",
    "st petersburg": "Europe/Moscow",
    "saint petersburg": "Europe/Moscow",
    "abu dhabi": "Asia/Dubai",
    "tel aviv": "Asia/Jerusalem",
    "rio de janeiro": "America/Sao_Paulo",
    "rio": "America/Sao_Paulo",
    "cape town": "Africa/Johannesburg",
    "canberra": "Australia/Sydney",
    "wellington": "Pacific/Auckland",
}


class UnknownZoneError(ValueError):
    """The text names no time zone we know."""


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())  # scans the tz database on disk: once


@cache
def _zone_by_city() -> dict[str, str]:
    index: dict[str, str] = {}
    for key in sorted(_known_zones()):
        if "/" not in key or key.startswith(("Etc/", "SystemV/", "US/")):
            continue
        city = key.rsplit("/", 1)[1].replace("_", " ").lower()
        index.setdefault(city, key)
    index.update(CITIES)
    return index


def find_zone_name(text: str) -> str | None:
    """The IANA key for a zone, abbreviation or city name, or None."""
    name = " ".join(text.strip().split())
    if not name or len(name) > 64:
        return None
    lowered = name.lower().removesuffix(" time").strip() if len(name) > 5 else name.lower()
    if lowered in ABBREVIATIONS:
        return ABBREVIATIONS[lowered]
    if name.lower() in ABBREVIATIONS:
        return ABBREVIATIONS[name.lower()]
    if lowered in _zone_by_city():
        return _zone_by_city()[lowered]
    if "/" in name and name in _known_zones():
        return name
    return None


def zone(text: str) -> tzinfo:
    """The tzinfo for a zone, abbreviation or city; UnknownZoneError if none matches."""
    key = find_zone_name(text)
    if key is None:
        raise UnknownZoneError(f"unknown time zone {text.strip()[:64]!r}")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownZoneError(f"unknown time zone {text.strip()[:64]!r}") from None
