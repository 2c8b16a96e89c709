"""Tool preselection with the bundled all-MiniLM-L6-v2: the few relevant tools, or none."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from milliwatt.agent.conversation import CONVERSATION_EXAMPLES
from milliwatt.agent.function_background import BACKGROUND_FUNCTIONS
from milliwatt.agent.runner import Agent
from milliwatt.agent.tool_selection import ToolSelector, tool_selector, tool_texts
from milliwatt.config import AgentConfig, ToolSelectionConfig
from milliwatt.models.base import Message, ToolSpec
from milliwatt.models.embeddings import EmbeddingModelMissingError, get_embedder
from milliwatt.models.fake import FakeModel
from milliwatt.tools.builtin import builtin_registry


@pytest.fixture(scope="module")
def embed():  # type: ignore[no-untyped-def]
    try:
        return get_embedder().embed
    except EmbeddingModelMissingError as exc:
        pytest.skip(f"the bundled embedding model is not installed: {exc}")


class CountingEmbed:
    def __init__(self, embed) -> None:  # type: ignore[no-untyped-def]
        self.embed = embed
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.embed(texts)  # type: ignore[no-any-return]


def test_a_request_gets_the_tool_made_for_it(embed) -> None:  # type: ignore[no-untyped-def]
    tools = list(builtin_registry())
    selector = ToolSelector(embed=embed)
    cases = {
        "convert 3 furlongs to metres please": "units.convert",
        "is 7919 prime": "math.is_prime",
        "shortest path from A to C in my graph": "graph.shortest_path",
        "book a meeting tomorrow at 10": "calendar.book",
        "search the web for the weather in Oslo": "web.search",
    }
    for request, wanted in cases.items():
        chosen = selector.select(request, tools)
        assert 1 <= len(chosen) <= 3, request
        assert chosen[0].name == wanted, (request, [t.name for t in chosen])


def test_chat_requests_get_no_tools(embed) -> None:  # type: ignore[no-untyped-def]
    # the margin over the null score alone lets "tell me a joke" reach `recall` (0.09):
    # the conversation examples are what turn chat away, as in the default configuration
    selector = ToolSelector(embed=embed, conversation=CONVERSATION_EXAMPLES)
    tools = list(builtin_registry())
    for request in ["write a haiku about rain", "explain photosynthesis", "tell me a joke"]:
        assert selector.select(request, tools) == [], request


def test_tool_texts_are_embedded_once(embed) -> None:  # type: ignore[no-untyped-def]
    counting = CountingEmbed(embed)
    tools = list(builtin_registry())
    selector = ToolSelector(embed=counting)
    selector.select("what is 2 + 2", tools)
    first = len(counting.texts)
    # the background of the null score is embedded once too
    assert first == sum(len(tool_texts(t)) for t in tools) + len(BACKGROUND_FUNCTIONS) + 1
    selector.select("convert 5 miles to km", tools)
    assert len(counting.texts) == first + 1  # only the new request


def test_top_k_and_threshold_are_respected(embed) -> None:  # type: ignore[no-untyped-def]
    tools = list(builtin_registry())
    ranked = ToolSelector(embed=embed).rank("how many days from 2024-02-01 to 2024-03-01", tools)
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert len(ToolSelector(top_k=1, embed=embed).select("is 2024 a leap year", tools)) == 1
    strict = ToolSelector(min_similarity=0.99, embed=embed)
    assert strict.select("will 2028 have a 29th of February", tools) == []
    assert strict.select("is 2024 a leap year", tools)[0].name == "dates.is_leap_year"  # an example


def test_bad_settings_and_input_are_refused() -> None:
    with pytest.raises(ValueError, match="top_k"):
        ToolSelector(top_k=0)
    with pytest.raises(ValueError, match="min_similarity"):
        ToolSelector(min_similarity=1.5)
    with pytest.raises(ValueError, match="min_margin"):
        ToolSelector(min_margin=3.0)
    with pytest.raises(ValueError, match="request"):
        ToolSelector(embed=lambda texts: np.zeros((len(texts), 2))).rank("  ", [])
    assert tool_selector(ToolSelectionConfig(enabled=False)) is None
    configured = tool_selector(ToolSelectionConfig(top_k=2, min_similarity=0.5, min_margin=0.1))
    assert configured is not None
    assert (configured.top_k, configured.min_similarity, configured.min_margin) == (2, 0.5, 0.1)
    default = tool_selector(ToolSelectionConfig())
    assert default is not None and default.min_similarity is None  # no absolute bar unless set


def test_a_tersely_described_tool_is_offered_for_the_request_it_fits(embed) -> None:  # type: ignore[no-untyped-def]
    forecast = ToolSpec(
        name="forecast",
        description="conditions at loc",
        parameters={"type": "object", "properties": {"loc": {"type": "string"}}},
    )
    tools = [forecast, *builtin_registry()]
    request = "what's the weather in Paris right now?"
    selector = ToolSelector(embed=embed)
    [best] = [s for s in selector.rank(request, tools) if s.name == "forecast"]
    assert best.score < 0.40  # the older absolute bar turned it away
    assert ToolSelector(embed=embed, min_similarity=0.40).select(request, [forecast]) == []
    assert [t.name for t in selector.select(request, [forecast])] == ["forecast"]
    assert "forecast" in [t.name for t in selector.select(request, tools)]  # among the top 3
    assert selector.select("write a haiku about rain", [forecast]) == []


def test_the_agent_offers_the_model_only_the_selected_tools(embed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    offered: list[list[str]] = []

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        offered.append([t.name for t in tools])
        return "ok"

    registry = builtin_registry()
    agent = Agent(
        AgentConfig(), [FakeModel(reply)], tools=registry, selector=ToolSelector(embed=embed)
    )
    agent.run("please convert this recipe's cups into grams for me")
    agent.run("write a haiku about rain")
    assert "units.convert" in offered[0] and len(offered[0]) <= 3
    assert offered[1] == []
    entries = [e.name for e in agent.run("tell me a joke").ledger.entries]
    assert entries[0] == "tool_selection"  # its cost is in the ledger


def test_tool_vectors_are_kept_on_disk(embed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def counting(texts: Sequence[str]):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return embed(texts)

    tools = list(builtin_registry())
    cache = tmp_path / "cache" / "tool-vectors.npz"
    first = ToolSelector(embed=counting, cache_file=cache).select("convert 3 miles to km", tools)
    embedded_first = sum(calls)
    calls.clear()
    again = ToolSelector(embed=counting, cache_file=cache).select("convert 3 miles to km", tools)
    assert [t.name for t in again] == [t.name for t in first]
    assert embedded_first > 10 and calls == [1]  # only the request itself after a restart
    cache.write_bytes(b"damaged")
    ToolSelector(embed=counting, cache_file=cache).select("convert 3 miles to km", tools)
    assert sum(calls) == 1 + embedded_first  # a damaged cache is rebuilt


def test_a_cache_that_cannot_be_read_or_written_costs_time_not_answers(  # type: ignore[no-untyped-def]
    embed, tmp_path: Path
) -> None:
    tools = list(builtin_registry())
    cache = tmp_path / "tool-vectors.npz"
    expected = ToolSelector(embed=embed, cache_file=cache).select("convert 3 miles to km", tools)
    cache.write_bytes(cache.read_bytes()[:200])  # a zip cut short by a crash
    again = ToolSelector(embed=embed, cache_file=cache).select("convert 3 miles to km", tools)
    assert [t.name for t in again] == [t.name for t in expected]
    blocked = tmp_path / "a-file" / "tool-vectors.npz"  # its folder cannot be made
    blocked.parent.write_text("not a folder")
    chosen = ToolSelector(embed=embed, cache_file=blocked).select("convert 3 miles to km", tools)
    assert [t.name for t in chosen] == [t.name for t in expected]
    assert list(tmp_path.glob("*.tmp.npz")) == []


def test_requests_that_want_words_get_no_tools_whatever_words_they_share(embed) -> None:  # type: ignore[no-untyped-def]
    tools = list(builtin_registry())
    gated = tool_selector(ToolSelectionConfig())
    assert gated is not None
    gated._embed = embed  # the same bundled embedder, without the disk cache
    # each of these shares a word with a tool ("sentence", "email", "day off") and once got it
    for request in [
        "Write one sentence describing a sunset.",
        "Write an email asking for a day off.",
    ]:
        assert gated.select(request, tools) == [], request
    for request, wanted in [
        ("convert 3 furlongs to metres", "units.convert"),
        ("is 7919 prime", "math.is_prime"),
    ]:
        assert gated.select(request, tools)[0].name == wanted
    off = tool_selector(ToolSelectionConfig(conversation=False))
    assert off is not None and off.conversation == ()
