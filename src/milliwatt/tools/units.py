"""Unit conversion with pint: lengths, masses, volumes, temperatures, compound units."""

from __future__ import annotations

import math
import re
from functools import cache, lru_cache
from typing import Any

import pint

from milliwatt.tools.registry import Effect, Tool, ToolError, tool

MAX_UNIT_CHARS = 80
MAX_EXPONENT = 12
SIGNIFICANT_DIGITS = 10

# names people write that pint reads differently or not at all ("fl oz" would be femtolitre
# times ounce); matched case-insensitively on the whole phrase, before pint sees it
ALIASES = {
    "fl oz": "fluid_ounce",
    "fluid ounce": "fluid_ounce",
    "fluid ounces": "fluid_ounce",
    "nautical mile": "nautical_mile",
    "nautical miles": "nautical_mile",
    "light year": "light_year",
    "light years": "light_year",
    "light-year": "light_year",
    "light-years": "light_year",
    "metric ton": "metric_ton",
    "metric tons": "metric_ton",
    "metric tonne": "metric_ton",
    "metric tonnes": "metric_ton",
    "imperial gallon": "imperial_gallon",
    "imperial gallons": "imperial_gallon",
    "us gallon": "gallon",
    "us gallons": "gallon",
    "mpg": "mile/gallon",
    "l/100km": "liter_per_100km",
    "l/100 km": "liter_per_100km",
    "liters per 100 km": "liter_per_100km",
    "litres per 100 km": "liter_per_100km",
    "kmh": "km/hour",
    "km/hr": "km/hour",
    "kilometers an hour": "km/hour",
    "miles an hour": "mile/hour",
    "sq ft": "foot**2",
    "sq m": "meter**2",
    "sq km": "km**2",
    "sq mi": "mile**2",
    "sq in": "inch**2",
    "cu ft": "foot**3",
    "cc": "cm**3",
    "°c": "degC",
    "°f": "degF",
    "°k": "kelvin",
    "ºc": "degC",
    "ºf": "degF",
    "degrees c": "degC",
    "degrees f": "degF",
    "deg c": "degC",
    "deg f": "degF",
    "degrees celsius": "degC",
    "degrees centigrade": "degC",
    "degree celsius": "degC",
    "centigrade": "degC",
    "degrees fahrenheit": "degF",
    "degree fahrenheit": "degF",
    "degrees kelvin": "kelvin",
    "degrees rankine": "degR",
    "stones": "stone",
    "lb": "pound",
    "tons": "ton",
    "litres": "liter",
    "litre": "liter",
    "metres": "meter",
    "metre": "meter",
    "kilometres": "kilometer",
    "kilometre": "kilometer",
    "centimetres": "centimeter",
    "centimetre": "centimeter",
    "millimetres": "millimeter",
    "millimetre": "millimeter",
}
# single letters that are temperatures when the other side is a temperature
TEMPERATURE_LETTERS = {"c": "degC", "f": "degF", "k": "kelvin", "r": "degR"}


# names, optional integer exponents, joined by * or /; pint evaluates numbers in unit strings,
# so anything else (huge powers, nested expressions) is refused before it gets there
_NAME = r"[^\W\d][\w°µμΩ]*(?:\s+[^\W\d][\w°µμΩ]*)*(?:\s*(?:\*\*|\^)\s*-?\d{1,2})?"
_UNIT_SYNTAX = re.compile(rf"{_NAME}(?:\s*[*/]\s*{_NAME})*")


class UnitError(ValueError):
    """A unit was not recognised or the conversion makes no sense."""


@cache
def unit_registry() -> pint.UnitRegistry[float]:
    # built once per process (about 0.3 s); conversions afterwards take microseconds
    registry: pint.UnitRegistry[float] = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    registry.define("liter_per_100km = liter / (100 * kilometer) = L_100km")
    return registry


@lru_cache(maxsize=4096)
def parse_unit(text: str, temperature: bool = False) -> pint.Unit:
    """Read a unit phrase ("km/h", "square feet", "degrees Fahrenheit"); UnitError if unknown."""
    phrase = " ".join(text.strip().split())
    if not phrase or len(phrase) > MAX_UNIT_CHARS:
        raise UnitError(f"a unit must be 1 to {MAX_UNIT_CHARS} characters, got {len(phrase)}")
    key = phrase.lower()
    if temperature and key in TEMPERATURE_LETTERS:
        phrase = TEMPERATURE_LETTERS[key]
    elif key in ALIASES:
        phrase = ALIASES[key]
    elif key.startswith("degrees ") and key[8:] in ("c", "f"):
        phrase = "deg" + key[8:].upper()
    if not _UNIT_SYNTAX.fullmatch(phrase):
        raise UnitError(f"cannot read the unit {text.strip()!r}: use names, * / and ** n")
    unit = _pint_unit(phrase) or _pint_unit(phrase.lower())  # "Celsius", "Miles"
    if unit is None:
        raise UnitError(f"unknown unit {text.strip()!r}")
    if any(abs(complex(power)) > MAX_EXPONENT for power in unit._units.values()):
        raise UnitError(f"unit exponents are limited to ±{MAX_EXPONENT}")
    return unit


def _pint_unit(phrase: str) -> pint.Unit | None:
    try:
        return unit_registry().parse_units(phrase)
    except Exception:  # pint's parser raises many kinds (even AssertionError) on odd names
        return None


def _symbol(unit: pint.Unit) -> str:
    return (f"{unit:~P}" or str(unit)).replace("L_100km", "L/100km")


@lru_cache(maxsize=4096)
def _is_temperature(unit: pint.Unit) -> bool:
    return unit.dimensionality == unit_registry().kelvin.dimensionality


def convert_quantity(value: float, source: str, target: str) -> tuple[float, pint.Unit, pint.Unit]:
    """Convert value from source to target unit; reciprocal dimensions (mpg to L/100km) work."""
    if not math.isfinite(value):
        raise UnitError("the value must be a finite number")
    src, dst = parse_unit(source), parse_unit(target)
    letters = {source.strip().lower(), target.strip().lower()} <= TEMPERATURE_LETTERS.keys()
    if letters or _is_temperature(src) or _is_temperature(dst):
        src, dst = parse_unit(source, temperature=True), parse_unit(target, temperature=True)
    quantity = unit_registry().Quantity(value, src)
    try:
        if src.dimensionality == dst.dimensionality:
            result = quantity.to(dst).magnitude
        elif (1 / src).dimensionality == dst.dimensionality and value != 0:
            result = (1 / quantity).to(dst).magnitude
        else:
            raise UnitError(
                f"cannot convert {source.strip()} ({src.dimensionality}) to "
                f"{target.strip()} ({dst.dimensionality})"
            )
    except (pint.errors.PintError, OverflowError, ZeroDivisionError) as exc:
        raise UnitError(f"cannot convert {source.strip()} to {target.strip()}: {exc}") from None
    if not math.isfinite(result):
        raise UnitError("the result is too large")
    if _is_temperature(dst):
        result = round(result, 10)  # offsets leave float dust: 32 degF is 0 degC, not 5.7e-14
    return float(result), src, dst


def round_significant(x: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    return float(f"{x:.{digits}g}")


@tool(
    effects={Effect.PURE},
    name="units.convert",
    examples=[
        "convert 26.2 miles to km",
        "how many ounces in a pound",
        "100 degrees Fahrenheit in Celsius",
        "60 mph in meters per second",
        "how many square feet is 20 square meters",
        "30 mpg in liters per 100 km",
        "convert these cups into millilitres for my recipe",
        "what is 5 stone in kilograms",
    ],
)
def convert(value: float, from_unit: str, to_unit: str) -> dict[str, Any]:
    """Convert a quantity between units of the same kind (length, mass, volume, area, speed,
    temperature, energy, pressure, data size, compound units like km/h or kg/m^3).

    Units are written as names or symbols: "mile", "km", "degF", "degrees Celsius", "mph",
    "square feet", "kWh". Reciprocal kinds such as mpg and L/100km also convert.
    """
    try:
        result, src, dst = convert_quantity(value, from_unit, to_unit)
    except UnitError as exc:
        raise ToolError(str(exc)) from None
    return {
        "value": value,
        "from_unit": _symbol(src),
        "to_unit": _symbol(dst),
        "result": round_significant(result),
        "from_name": str(src),
        "to_name": str(dst),
    }


TOOLS: list[Tool] = [convert]
