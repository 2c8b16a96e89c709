"""Places on the globe and the round-trip time a network path between two of them costs.

The model: light in fiber travels at about 2/3 c, so a straight fiber path costs 1 ms of
round trip per ~100 km of great-circle distance. Real routes are longer than great circles
(fiber follows roads and coasts, traffic detours through exchange points). Between well
connected data centres, measured pings run at 1.3-1.6x the straight-fiber time (public ping
tables: London-New York about 72 ms for 5,570 km, Frankfurt-Singapore about 160 ms for
10,270 km); over all Internet paths the median is nearer 2x (Singla et al., "The Internet at
the Speed of Light", HotNets 2014, measured 3.1x the c-latency, which is 2.1x straight
fiber). PATH_INFLATION = 1.5 models PoP-to-PoP and user-to-PoP paths on good networks;
pass measured RTTs where you have them. Access networks (Wi-Fi, DSL, radio) add their own
milliseconds at the user's end wherever the server is, so the model leaves them out.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from milliwatt.errors import InvalidRequestError

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
FIBER_KM_PER_MS = 299_792.458 / 1000 * 2 / 3  # one way, light at 2/3 c
PATH_INFLATION = 1.5  # real routes against the great circle, see above


@dataclass(frozen=True)
class Place:
    """A named point: a city of users (weight: how many) or a candidate site (weight 1)."""

    name: str
    lat: float
    lon: float
    weight: float = 1.0


def great_circle_km(a: Place, b: Place) -> float:
    """Haversine distance over the mean-radius sphere (within 0.5% of the ellipsoid)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def modelled_rtt_ms(a: Place, b: Place, inflation: float = PATH_INFLATION) -> float:
    """Round-trip propagation time between two places under the fiber model above."""
    return 2 * great_circle_km(a, b) * inflation / FIBER_KM_PER_MS


def rtt_matrix_ms(
    rows: Sequence[Place], columns: Sequence[Place], inflation: float = PATH_INFLATION
) -> npt.NDArray[np.float32]:
    """`modelled_rtt_ms` of every row place to every column place, at once (float32: the
    model is good to a few percent, and 3,000 x 3,000 pairs then take 36 MB)."""
    lat2 = np.radians(np.array([p.lat for p in columns], dtype=np.float64))[None, :]
    lon2 = np.radians(np.array([p.lon for p in columns], dtype=np.float64))[None, :]
    rtt = np.empty((len(rows), len(columns)), dtype=np.float32)
    step = max(1, (1 << 20) // max(1, len(columns)))  # float64 temporaries of ~8 MB each
    for start in range(0, len(rows), step):
        part = rows[start : start + step]
        lat1 = np.radians(np.array([p.lat for p in part], dtype=np.float64))[:, None]
        lon1 = np.radians(np.array([p.lon for p in part], dtype=np.float64))[:, None]
        h = np.sin((lat2 - lat1) / 2) ** 2
        h += np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        km = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
        rtt[start : start + len(part)] = 2 * km * inflation / FIBER_KM_PER_MS
    return rtt


def load_places(
    path: Path,
    *,
    name_column: str,
    weight_column: str | None = None,
    unique_names: bool = False,
) -> list[Place]:
    """Places from a CSV file with a header; a bad row is an error naming file, line and column
    (and, with `unique_names`, a name seen before is one)."""
    columns = [name_column, "lat", "lon", *([weight_column] if weight_column else [])]
    places, first_line = [], dict[str, int]()
    for line, row in read_rows(path, columns):
        place = _place(path, line, row, name_column, weight_column)
        if unique_names and place.name in first_line:
            raise InvalidRequestError(
                f"{path}:{line}: {name_column} {place.name!r} repeats line {first_line[place.name]}"
            )
        first_line.setdefault(place.name, line)
        places.append(place)
    return places


def read_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV file whose header has `columns`; a file that cannot be read,
    is not UTF-8 or is not CSV is an error naming it."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise InvalidRequestError(f"{path}: cannot read ({error.strerror})") from error
    with handle:
        rows = csv.DictReader(handle)
        try:
            if rows.fieldnames is None:
                raise InvalidRequestError(
                    f"{path}: empty file (want a header: {','.join(columns)})"
                )
            missing = set(columns) - set(rows.fieldnames)
            if missing:
                raise InvalidRequestError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            for row in rows:
                yield rows.line_num, row
        except UnicodeDecodeError:
            raise InvalidRequestError(f"{path}:{rows.line_num + 1}: not UTF-8 text") from None
        except csv.Error as error:
            raise InvalidRequestError(f"{path}:{rows.line_num}: {error}") from None


def _place(
    path: Path, line: int, row: dict[str, str], name_column: str, weight_column: str | None
) -> Place:
    name = (row[name_column] or "").strip()
    if not name:
        raise InvalidRequestError(f"{path}:{line}: empty {name_column}")
    lat = _number(path, line, row, "lat", -90, 90)
    lon = _number(path, line, row, "lon", -180, 180)
    weight = _number(path, line, row, weight_column, 0, math.inf) if weight_column else 1.0
    return Place(name, lat, lon, weight)


def _number(
    path: Path, line: int, row: dict[str, str], column: str, low: float, high: float
) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequestError(f"{path}:{line}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidRequestError(f"{path}:{line}: {column} {text!r} is not a finite number")
    if not (low <= value <= high):
        raise InvalidRequestError(f"{path}:{line}: {column} {value} is outside [{low}, {high}]")
    return value
