"""units.convert: real conversions through pint, temperatures, compound units, bad units."""

from __future__ import annotations

import pytest

from milliwatt.tools.units import convert


def converted(value: float, source: str, target: str) -> float:
    outcome = convert.call({"value": value, "from_unit": source, "to_unit": target})
    assert outcome.ok, outcome.error
    return outcome.value["result"]


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (26.2, "miles", "km", 42.1648128),
        (1, "mile", "feet", 5280),
        (1, "pound", "ounces", 16),
        (2, "kg", "lb", 4.409245244),
        (1, "inch", "cm", 2.54),
        (5, "fl oz", "ml", 147.8676478),
        (1, "gallon", "liters", 3.785411784),
        (1, "imperial gallon", "litres", 4.54609),
        (3, "cups", "tablespoons", 48),
        (1, "nautical mile", "metres", 1852),
        (1, "metric ton", "kg", 1000),
        (1, "GiB", "MiB", 1024),
        (1, "GB", "MB", 1000),
        (1, "kWh", "J", 3_600_000),
        (1, "atm", "kPa", 101.325),
        (60, "mph", "m/s", 26.8224),
        (100, "km/h", "mph", 62.13711922),
        (20, "square meters", "square feet", 215.2782083),
        (1, "sq mi", "hectares", 258.9988110336),
        (9.81, "m/s^2", "ft/s**2", 32.18503937),
        (1, "kg*m/s**2", "N", 1),
        (1, "light year", "km", 9460730473000),
        (1, "hour", "seconds", 3600),
    ],
)
def test_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert converted(value, source, target) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (100, "degrees Fahrenheit", "Celsius", 37.77777778),
        (100, "F", "C", 37.77777778),
        (0, "C", "K", 273.15),
        (-40, "°C", "°F", -40),
        (300, "kelvin", "degC", 26.85),
        (5, "degC", "F", 41),
        (0, "K", "F", -459.67),
    ],
)
def test_temperatures_use_offsets(value: float, source: str, target: str, expected: float) -> None:
    assert converted(value, source, target) == pytest.approx(expected, abs=1e-6)


def test_reciprocal_kinds_convert() -> None:
    assert converted(30, "mpg", "L/100km") == pytest.approx(7.840486111, rel=1e-9)
    assert converted(7.840486111, "L/100km", "mpg") == pytest.approx(30, rel=1e-6)


def test_result_names_units() -> None:
    value = convert.call({"value": 26.2, "from_unit": "miles", "to_unit": "km"}).value
    assert (value["from_unit"], value["to_unit"]) == ("mi", "km")
    assert (value["from_name"], value["to_name"]) == ("mile", "kilometer")


@pytest.mark.parametrize(
    ("source", "target", "reason"),
    [
        ("kg", "m", "cannot convert kg"),
        ("dollars", "euros", "unknown unit 'dollars'"),
        ("flibbertigibbet", "m", "unknown unit"),
        ("km", "", "1 to 80 characters"),
        ("m" * 200, "m", "1 to 80 characters"),
        ("meter**9999999", "m", "cannot read the unit"),
        ("m**(9**9**9)", "m", "cannot read the unit"),
        ("__import__('os')", "m", "cannot read the unit"),
        ("((((m", "m", "cannot read the unit"),
        ("m**13", "m**13", "exponents are limited"),
    ],
)
def test_bad_units_are_refused(source: str, target: str, reason: str) -> None:
    outcome = convert.call({"value": 1, "from_unit": source, "to_unit": target})
    assert not outcome.ok
    assert reason in (outcome.error or "")


def test_non_finite_values_are_refused() -> None:
    assert "too large" in (
        convert.call({"value": 1e308, "from_unit": "km", "to_unit": "nm"}).error or ""
    )
    outcome = convert.call({"value": float("nan"), "from_unit": "km", "to_unit": "m"})
    assert "finite" in (outcome.error or "")
