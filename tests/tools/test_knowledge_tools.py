"""knowledge.search, remember and recall as an agent calls them: through the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from milliwatt.knowledge import CollectionKey, open_knowledge_base
from milliwatt.models.embeddings import EmbeddingModelMissingError, get_embedder
from milliwatt.tools.knowledge import TOOLS
from milliwatt.tools.registry import Effect, ToolContext, ToolRegistry

MANUAL = """# Widget manual

## Batteries

The widget runs for two years on a single AA battery. Replace it when the light blinks red.

## Cleaning

Wipe the widget with a dry cloth. Never put it in the dishwasher.
"""


@pytest.fixture(scope="module", autouse=True)
def _model() -> None:
    try:
        get_embedder()
    except EmbeddingModelMissingError as exc:
        pytest.skip(f"embedding model not installed: {exc}")


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry(TOOLS)


def test_declared_effects_and_schemas(registry: ToolRegistry) -> None:
    assert registry.get("knowledge.search").effects == {Effect.READS_UNTRUSTED}
    assert registry.get("recall").effects == {Effect.READS_UNTRUSTED}
    assert registry.get("remember").effects == {Effect.WRITES}
    schema = registry.get("knowledge.search").parameters
    assert set(schema["properties"]) == {"query", "k", "collection"}
    assert schema["required"] == ["query"]


def test_search_returns_cited_passages(registry: ToolRegistry, tmp_path: Path) -> None:
    manual = tmp_path / "manual.md"
    manual.write_text(MANUAL, encoding="utf-8")
    data = tmp_path / "data"
    open_knowledge_base(data).ingest([manual], CollectionKey("default", "helper", "manuals"))
    context = ToolContext(user="alice", agent="helper", data_dir=data)

    result = registry.call("knowledge.search", {"query": "how do I clean it?", "k": 2}, context)
    assert result.ok and result.untrusted
    top = result.value[0]
    assert top["heading"] == "Widget manual > Cleaning"
    assert MANUAL[top["start"] : top["end"]] == top["text"]
    assert top["source"] == str(manual.resolve())
    assert "§ Widget manual > Cleaning" in top["citation"]

    named = registry.call(
        "knowledge.search", {"query": "battery", "collection": "manuals"}, context
    )
    assert "AA battery" in named.value[0]["text"]
    # another agent has no documents: nothing leaks across agents
    other = ToolContext(user="alice", agent="other", data_dir=data)
    assert registry.call("knowledge.search", {"query": "battery"}, other).value == []


def test_search_errors_are_tool_errors(registry: ToolRegistry, tmp_path: Path) -> None:
    context = ToolContext(user="u", agent="helper", data_dir=tmp_path)
    missing = registry.call("knowledge.search", {"query": "x", "collection": "nope"}, context)
    assert missing.error == "no collection default/helper/nope; ingest documents into it first"
    bad_k = registry.call("knowledge.search", {"query": "x", "k": 0}, context)
    assert bad_k.error == (
        "invalid arguments for knowledge.search: k: Input should be greater than or equal to 1"
    )
    assert registry.get("knowledge.search").parameters["properties"]["k"]["maximum"] == 20
    assert "query" in registry.call("knowledge.search", {}, context).error


def test_remember_and_recall_are_per_user(
    registry: ToolRegistry, tmp_path: Path, storage_url: str | None
) -> None:
    where = {"data_dir": tmp_path, "storage_url": storage_url}
    alice = ToolContext(user="alice", agent="helper", session="s1", **where)  # type: ignore[arg-type]
    bob = ToolContext(user="bob", agent="helper", session="s2", **where)  # type: ignore[arg-type]
    saved = registry.call("remember", {"fact": "My cat is called Miso."}, alice)
    assert saved.ok and saved.value["remembered"] == "My cat is called Miso."

    recalled = registry.call("recall", {"query": "what is my pet's name?"}, alice)
    assert recalled.untrusted
    assert recalled.value[0]["fact"] == "My cat is called Miso."
    assert recalled.value[0]["source"] == "conversation s1"
    assert recalled.value[0]["when"].endswith("+00:00")

    assert registry.call("recall", {"query": "what is my pet's name?"}, bob).value == []
    assert registry.call("recall", {"query": "Miso"}, bob).value == []
    assert registry.call("remember", {"fact": "  "}, alice).error == "the fact is empty"
