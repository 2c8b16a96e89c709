"""BFCL's AST rules: is a list of function calls right for a question?

A call is right when its function name matches, every required parameter is present, no
parameter is unknown, each value has the declared type (an int is accepted for a float) and
is among the allowed ones; strings are compared after BFCL's normalisation (lowercase, no
spaces or ,./-_*^), lists and dicts element by element; a parameter whose allowed values
include "" is optional. Parallel calls match in any order. In the irrelevance categories the
answer is right only when no call is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# BFCL's Python types: "tuple" arrives as a JSON list, "any" is compared as a string
_PY_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_NORMALISE = re.compile(r"[ ,./\-_*^]")

Expected = Mapping[str, Mapping[str, Sequence[Any]]]  # {function: {param: allowed values}}


@dataclass(frozen=True)
class Call:
    """One function call as a model made it."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    correct: bool
    error: str = ""
    kind: str = ""  # a short label for the failure, e.g. "wrong_name", "value"

    def __bool__(self) -> bool:
        return self.correct


OK = Verdict(True)


def normalise(text: str) -> str:
    """BFCL's string normalisation: 'April 1, 2024' and 'april 1 2024' compare equal."""
    return _NORMALISE.sub("", text).lower().replace("'", '"')


def category_kind(category: str) -> str:
    """How a category is scored: simple, multiple, parallel, irrelevance or relevance."""
    if "java" in category or "multi_turn" in category:
        raise ValueError(
            f"category {category!r} is not scored here: only the Python AST categories are"
        )
    for kind in ("irrelevance", "relevance", "parallel", "multiple"):
        if kind in category:
            return kind
    return "simple"


def check_calls(
    category: str,
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    expected: Sequence[Expected] | None,
) -> Verdict:
    """Score one question's calls against its possible answers, per the category's rules."""
    kind = category_kind(category)
    if kind == "irrelevance":
        return OK if not calls else Verdict(False, f"{len(calls)} call(s) made", "not_abstained")
    if kind == "relevance":
        return OK if calls else Verdict(False, "no call made", "abstained")
    if expected is None:
        raise ValueError(f"category {category!r} needs possible answers to be scored")
    if len(calls) != len(expected):
        return Verdict(False, f"{len(calls)} call(s) made, {len(expected)} expected", "wrong_count")
    if kind == "parallel":
        return _check_any_order(functions, calls, expected)
    return check_call(_doc_for(functions, expected[0]), calls[0], expected[0])


def check_call(doc: Mapping[str, Any], call: Call, expected: Expected) -> Verdict:
    """One call against one function's documentation and its allowed values."""
    name = doc["name"]
    if call.name != name:
        return Verdict(False, f"called {call.name!r}, expected {name!r}", "wrong_name")
    allowed = expected[name]
    properties: Mapping[str, Any] = doc["parameters"].get("properties", {})
    for param in doc["parameters"].get("required", []):
        if param not in call.arguments:
            return Verdict(False, f"missing required parameter {param!r}", "missing_required")
    for param, value in call.arguments.items():
        if param not in properties or param not in allowed:
            return Verdict(False, f"unexpected parameter {param!r}", "unexpected_param")
        verdict = _check_value(param, value, properties[param], list(allowed[param]))
        if not verdict:
            return verdict
    for param, values in allowed.items():
        if param not in call.arguments and "" not in values:
            return Verdict(False, f"parameter {param!r} is needed here", "missing_optional")
    return OK


def _doc_for(functions: Sequence[Mapping[str, Any]], expected: Expected) -> Mapping[str, Any]:
    name = next(iter(expected))
    for doc in functions:
        if doc["name"] == name:
            return doc
    raise ValueError(f"the possible answer names {name!r}, which no function documents")


def _check_any_order(
    functions: Sequence[Mapping[str, Any]], calls: Sequence[Call], expected: Sequence[Expected]
) -> Verdict:
    """A one-to-one pairing of calls with expected calls must exist (bipartite matching)."""
    fits: list[list[int]] = []
    first_error: Verdict | None = None
    for answer in expected:
        doc = _doc_for(functions, answer)
        row = []
        for j, call in enumerate(calls):
            verdict = check_call(doc, call, answer)
            if verdict:
                row.append(j)
            elif first_error is None or first_error.kind == "wrong_name":
                first_error = verdict
        fits.append(row)
    owner: dict[int, int] = {}  # call index -> expected index

    def assign(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or assign(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(expected)):
        if not assign(i, set()):
            reason = first_error.error if first_error else "calls do not pair up"
            return Verdict(False, f"no call matches expected call {i + 1}: {reason}", "unmatched")
    return OK


def _check_value(param: str, value: Any, doc: Mapping[str, Any], allowed: list[Any]) -> Verdict:
    declared = doc.get("type", "any")
    if declared not in _PY_TYPES:
        raise ValueError(f"parameter {param!r} has a type BFCL does not define: {declared!r}")
    py_type = _PY_TYPES[declared]
    value = _promote(value, declared)
    answer_type = next((type(a) for a in allowed if a != ""), None)
    # allowed values of another type than declared stand for a variable name: compare exactly
    is_variable = answer_type is not None and answer_type is not py_type
    if type(value) is py_type:
        # isinstance as well: `type(value) is py_type` says the same, but tells no type checker
        if isinstance(value, list) and not _items_typed(value, doc, allowed):
            return Verdict(False, f"{param!r}: items of {value!r} have the wrong type", "type")
    elif answer_type is not None and type(value) is answer_type:
        is_variable = True
    else:
        return Verdict(False, f"{param!r}: expected {declared}, got {type(value).__name__}", "type")
    if is_variable:
        fits = value in allowed
    elif py_type is dict:
        fits = any(_dict_fits(value, a) for a in allowed if a != "")
    elif py_type is list and _item_type(doc) == "dict":
        fits = any(_dict_list_fits(value, a) for a in allowed if isinstance(a, list))
    elif py_type is str:
        fits = normalise(value) in [normalise(a) for a in allowed if isinstance(a, str)]
    elif py_type is list:
        fits = _normalised(value) in [_normalised(a) for a in allowed if isinstance(a, list)]
    else:
        fits = value in allowed
    return OK if fits else Verdict(False, f"{param!r}: {value!r} is not among {allowed}", "value")


def _promote(value: Any, declared: str) -> Any:
    if declared == "float" and type(value) is int:
        return float(value)
    if declared in ("array", "tuple") and isinstance(value, tuple):
        return list(value)
    return value


def _item_type(doc: Mapping[str, Any]) -> str:
    items = doc.get("items")
    return items.get("type", "any") if isinstance(items, Mapping) else "any"


def _items_typed(value: list[Any], doc: Mapping[str, Any], allowed: list[Any]) -> bool:
    """One level deep, as BFCL checks: items of the declared type, or of the answer's type."""
    item_type = _PY_TYPES.get(_item_type(doc))
    if item_type is None:
        return True
    for answer in allowed:
        if not isinstance(answer, list):
            return True  # "" (optional): the value check decides
        answer_types = {type(a) for a in answer}
        if all(
            type(_promote(v, _item_type(doc))) is item_type or type(v) in answer_types
            for v in value
        ):
            return True
    return False


def _normalised(value: Any) -> Any:
    if isinstance(value, str):
        return normalise(value)
    if isinstance(value, list | tuple):
        return [_normalised(v) for v in value]
    return value


def _dict_fits(value: Mapping[str, Any], allowed: Any) -> bool:
    if not isinstance(allowed, Mapping):
        return False
    for key, item in value.items():
        if key not in allowed or _normalised(item) not in _normalised(list(allowed[key])):
            return False
    return all(key in value or "" in values for key, values in allowed.items())


def _dict_list_fits(value: list[Any], allowed: list[Any]) -> bool:
    return len(value) == len(allowed) and all(
        isinstance(v, Mapping) and _dict_fits(v, a) for v, a in zip(value, allowed, strict=True)
    )
