"""Argument values from the schema and the request, not from a small model's habits.

Small models fill every field they are shown and copy defaults they were never told, so:
an optional parameter is offered only when the request mentions it (its name's words or one
of its allowed values), and an optional value the model wrote is kept only when the request
holds it (numbers read by the resolvers' number parser: "two hundred" is 200). Required
values are the model's, with integral floats made integers where the schema says integer,
and dates written as the schema asks (format "date", or "YYYY-MM-DD" in the description)
by the dates tools' parser: "March 17, 1915" becomes 1915-03-17.
"""

from __future__ import annotations

import re
from typing import Any

from milliwatt.agent.relevance import name_words
from milliwatt.agent.resolvers.common import Request
from milliwatt.models.base import ToolSpec
from milliwatt.tools.dates import DateError, parse_moment

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_ISO_DATE = re.compile(r"yyyy-mm-dd", re.IGNORECASE)
_STOP = frozenset({"the", "and", "for", "with", "type", "name", "value", "data", "info"})


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def request_numbers(request: str) -> set[float]:
    """The numbers a request holds, number words included."""
    text = Request.of(request).text
    return {float(m.replace(",", "")) for m in _NUMBER.findall(text)}


def mentioned(request: str, name: str, schema: dict[str, Any]) -> bool:
    """Does the request speak of this parameter: its name's words or an allowed value?"""
    words = set(re.findall(r"[a-z0-9]+", request.lower()))
    own = {w for w in name_words(name).split() if len(w) > 2 and w not in _STOP}
    if own & words:
        return True
    squashed = _squash(request)
    return any(_squash(str(v)) in squashed for v in schema.get("enum", []) if str(v).strip())


def offered_parameters(request: str, spec: ToolSpec) -> ToolSpec:
    """The function with its required parameters, the optional ones the request names and,
    when the request holds more numbers than the required numeric parameters take, the
    optional numeric ones ("for 4 people" gives `number_of_seats` without naming it)."""
    params = spec.parameters
    required = list(params.get("required", []))
    every: dict[str, Any] = params.get("properties", {})
    numeric_required = sum(_numeric(every.get(k, {})) for k in required)
    spare = len(request_numbers(request)) > numeric_required
    properties = {
        k: v
        for k, v in every.items()
        if k in required or mentioned(request, k, v) or (spare and _numeric(v))
    }
    return ToolSpec(spec.name, spec.description, {**params, "properties": properties})


def _numeric(schema: dict[str, Any]) -> bool:
    return schema.get("type") in ("integer", "number") and "enum" not in schema


def grounded(request: str, value: Any, numbers: set[float] | None = None) -> bool:
    """Is this value in the request (strings by their letters and digits, numbers by value)?"""
    numbers = request_numbers(request) if numbers is None else numbers
    if isinstance(value, bool):
        return False  # a flag is never spelt out: only kept when its parameter is named
    if isinstance(value, int | float):
        return float(value) in numbers
    if isinstance(value, str):
        return bool(_squash(value)) and _squash(value) in _squash(request)
    if isinstance(value, list):
        return bool(value) and all(grounded(request, v, numbers) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(grounded(request, v, numbers) for v in value.values())
    return False


def settle_arguments(request: str, spec: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    """Required values as written (integers made integers); optional ones only when the
    request holds them or, for flags and enums, names their parameter."""
    properties: dict[str, Any] = spec.parameters.get("properties", {})
    required = set(spec.parameters.get("required", []))
    numbers = request_numbers(request)
    kept: dict[str, Any] = {}
    for name, value in arguments.items():
        schema = properties.get(name, {})
        value = _typed(value, schema)
        if name in required:
            kept[name] = _dated(value, schema)
        elif value == schema.get("default", object()):
            continue  # the function does this anyway: the user did not ask for it
        elif grounded(request, value, numbers) or _named_choice(request, name, schema, value):
            kept[name] = _dated(value, schema)
    return kept


def _named_choice(request: str, name: str, schema: dict[str, Any], value: Any) -> bool:
    """A flag or a choice among allowed values is kept when the request names its parameter."""
    return (isinstance(value, bool) or "enum" in schema) and mentioned(request, name, schema)


def _dated(value: Any, schema: dict[str, Any]) -> Any:
    """A date in the form the schema asks for; anything else as it was."""
    iso = schema.get("format") == "date" or _ISO_DATE.search(str(schema.get("description", "")))
    if not iso or not isinstance(value, str):
        return value
    try:
        moment, _ = parse_moment(value)
    except DateError:
        return value
    return moment.date().isoformat()


def _typed(value: Any, schema: dict[str, Any]) -> Any:
    if schema.get("type") == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if schema.get("type") == "array" and isinstance(value, list):
        return [_typed(v, schema.get("items", {})) for v in value]
    return value
