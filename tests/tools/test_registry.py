"""The tool registry: schemas from type hints, mandatory effects, validation, context injection."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from milliwatt.tools.registry import (
    Effect,
    ToolContext,
    ToolError,
    ToolRegistry,
    UnknownToolError,
    tool,
)


class Item(BaseModel):
    title: str
    count: int = 1


@tool(effects={Effect.PURE}, examples=["add 2 and 3"])
def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Longer text that is not part of the description.
    """
    return a + b


@tool(effects={Effect.WRITES, Effect.READS_UNTRUSTED}, name="notes.save")
def save(item: Item, context: ToolContext) -> str:
    """Save an item for the calling user."""
    if item.count < 0:
        raise ToolError("count must not be negative")
    return f"{context.user}:{item.title}x{item.count}"


def test_schema_comes_from_the_type_hints() -> None:
    assert add.name == "add"
    assert add.description == "Add two integers."
    assert add.examples == ("add 2 and 3",)
    assert add.parameters == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "default": 0}},
        "required": ["a"],
        "additionalProperties": False,
    }


def test_context_is_injected_not_exposed() -> None:
    assert "context" not in save.parameters["properties"]
    item_schema = save.parameters["$defs"]["Item"]
    assert "title" in item_schema["properties"]  # a field named "title" survives title-stripping
    result = save.call({"item": {"title": "milk", "count": 2}}, ToolContext(user="ada"))
    assert result.ok and result.value == "ada:milkx2"
    assert result.untrusted  # READS_UNTRUSTED marks the output


def test_bad_arguments_name_the_field() -> None:
    result = add.call({"a": "two"})
    assert not result.ok and "a:" in (result.error or "") and "integer" in (result.error or "")
    assert "b:" not in (result.error or "")
    unknown = add.call({"a": 1, "c": 3})
    assert "c:" in (unknown.error or "")
    nested = save.call({"item": {"count": 1}})
    assert "item.title" in (nested.error or "")


def test_tool_refusals_become_error_results() -> None:
    result = save.call({"item": {"title": "x", "count": -1}})
    assert result.error == "count must not be negative" and result.text().startswith("error:")


def test_other_exceptions_propagate() -> None:
    @tool(effects={Effect.PURE})
    def broken() -> int:
        """Always fails."""
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        broken.call({})


def test_annotated_bounds_are_kept() -> None:
    @tool(effects={Effect.PURE})
    def base(value: Annotated[int, Field(ge=2, le=36)]) -> int:
        """Echo a base."""
        return value

    bounds = {"type": "integer", "minimum": 2, "maximum": 36}
    assert base.parameters["properties"]["value"] == bounds
    assert "less than or equal to 36" in (base.call({"value": 99}).error or "")


@pytest.mark.parametrize(
    ("effects", "message"),
    [(set(), "must declare its effects"), ({Effect.PURE, Effect.NETWORK}, "cannot be combined")],
)
def test_effects_are_mandatory_and_consistent(effects: set[Effect], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tool(effects=effects)


def test_docstring_and_hints_are_required() -> None:
    def undocumented(a: int) -> int:
        return a

    def untyped(a) -> int:  # type: ignore[no-untyped-def]
        """Untyped."""
        return 1

    with pytest.raises(ValueError, match="docstring"):
        tool(effects={Effect.PURE})(undocumented)
    with pytest.raises(ValueError, match="type hint"):
        tool(effects={Effect.PURE})(untyped)


def test_registry_lookup_subset_and_duplicates() -> None:
    registry = ToolRegistry([add, save])
    assert registry.names() == ["add", "notes.save"] and len(registry) == 2
    assert registry.call("add", {"a": 1, "b": 2}).value == 3
    assert registry.subset(["notes.save"]).names() == ["notes.save"]
    with pytest.raises(UnknownToolError, match="unknown tool: 'nope'"):
        registry.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.add(add)
