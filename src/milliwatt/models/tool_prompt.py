"""How tools are shown to models that have no native tool-calling: compact text + a schema.

The schema constrains the model's whole reply to one JSON object: either
{"tool": NAME, "arguments": {...}} fitting that tool's parameters, or {"answer": TEXT}.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from milliwatt.models.base import ToolSpec


def compact_signature(spec: ToolSpec) -> str:
    """`name(a: integer, b?: string) - description`: far fewer tokens than JSON schema."""
    props: dict[str, Any] = spec.parameters.get("properties", {})
    required = set(spec.parameters.get("required", []))
    params = ", ".join(
        f"{name}{'' if name in required else '?'}: {_type_name(schema)}"
        for name, schema in props.items()
    )
    return f"{spec.name}({params}) - {spec.description}"


def render_tool_prompt(tools: Sequence[ToolSpec]) -> str:
    lines = "\n".join(f"- {compact_signature(t)}" for t in tools)
    return (
        "You can use these tools:\n"
        f"{lines}\n"
        'To use a tool, reply {"tool": NAME, "arguments": {...}}. '
        'To answer directly, reply {"answer": TEXT}.'
    )


def tool_choice_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"tool": {"const": t.name}, "arguments": inline_refs(t.parameters)},
            "required": ["tool", "arguments"],
        }
        for t in tools
    ]
    options.append(
        {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    )
    return {"anyOf": options}


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema:
        return "|".join(_type_name(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type_name(schema.get('items', {}))}]"
    return str(kind)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace local `$ref`s by their `$defs` so a schema can be nested inside another.

    Pydantic puts nested models in `$defs`; once a tool's schema becomes one branch of the
    tool-choice schema, `#/$defs/...` would point at the wrong root. A recursive model is
    cut at a small depth (its deeper levels accept any object).
    """
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: Any, depth: int) -> Any:
        if isinstance(node, list):
            return [resolve(item, depth) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            if depth > 4:
                return {"type": "object"}
            return resolve(defs[ref.removeprefix("#/$defs/")], depth + 1)
        return {k: resolve(v, depth) for k, v in node.items() if k != "$defs"}

    resolved: dict[str, Any] = resolve(schema, 0)
    return resolved


def calls_schema(
    tools: Sequence[ToolSpec], *, max_calls: int = 1, none: bool = True
) -> dict[str, Any]:
    """One reply holding 1..max_calls calls of the offered tools, or (when `none`) none.

    `{"calls": [{"name": NAME, "arguments": {...}}, ...]}` or `{"none": true}`: the first
    key is the model's choice between calling and answering, made at one token by its own
    probabilities; several calls in one reply serve requests that ask for several actions.
    """
    if not tools:
        raise ValueError("calls_schema: no tools to call")
    if max_calls < 1:
        raise ValueError(f"max_calls must be at least 1, got {max_calls}")
    branches = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": grammar_schema(inline_refs(t.parameters)),
            },
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    call = branches[0] if len(branches) == 1 else {"anyOf": branches}
    calls = {"type": "array", "items": call, "minItems": 1, "maxItems": max_calls}
    options: list[dict[str, Any]] = [
        {"type": "object", "properties": {"calls": calls}, "required": ["calls"]}
    ]
    if none:
        options.append(
            {"type": "object", "properties": {"none": {"const": True}}, "required": ["none"]}
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


# string formats llama.cpp's schema converter writes rules for; others are left unconstrained
_FORMATS = frozenset({"date", "time", "date-time", "uuid"})
_WORDS = frozenset({"description", "default", "title", "examples"})


def grammar_schema(node: Any) -> Any:
    """A schema with only what constrains the reply: descriptions and defaults dropped, an
    untyped value (BFCL's "any") left free, formats the grammar cannot write dropped."""
    if isinstance(node, list):
        return [grammar_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    kept: dict[str, Any] = {}
    for key, value in node.items():
        if key in _WORDS or (key == "format" and value not in _FORMATS):
            continue
        if key == "properties" and isinstance(value, dict):
            kept[key] = {name: grammar_schema(sub) for name, sub in value.items()}
        else:
            kept[key] = grammar_schema(value)
    return kept


def read_calls(text: str) -> list[tuple[str, dict[str, Any]]] | None:
    """The calls of a `calls_schema` reply; [] for `{"none": true}`, None when cut off."""
    try:
        reply = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(reply, dict) or "calls" not in reply:
        return []
    return [(str(c["name"]), dict(c.get("arguments", {}))) for c in reply["calls"]]
