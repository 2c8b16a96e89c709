"""A new user's path: ingest a folder, ask the agent, get an answer that cites its source."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from milliwatt.agent.runner import Agent
from milliwatt.config import AgentConfig
from milliwatt.knowledge.cli import ingest
from milliwatt.models.base import Message, ModelResponse, ToolCall, ToolSpec
from milliwatt.models.embeddings import Embedder
from milliwatt.models.fake import FakeModel
from milliwatt.tools.knowledge import TOOLS
from milliwatt.tools.registry import ToolRegistry


def _answer_from_passages(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> object:
    """Stands in for the model: search first, then answer from the top passage and cite it."""
    results = [m for m in messages if m.role == "tool"]
    if not results:
        assert [t.name for t in tools] == ["knowledge.search"]
        question = next(m.content for m in reversed(messages) if m.role == "user")
        return ModelResponse(
            "fake", tool_calls=[ToolCall("1", "knowledge.search", {"query": question})]
        )
    content = results[-1].content
    passages = json.loads(content[content.index("[") : content.rindex("]") + 1])
    top = passages[0]
    return f"{top['text']} (source: {top['citation']})"


def test_ingest_a_folder_then_ask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs: Path, embedder: Embedder
) -> None:
    data = tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MILLIWATT_CONFIG", raising=False)
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(data))
    cli = typer.Typer()
    cli.command()(ingest)
    cli.command("unused")(lambda: None)  # a second command keeps `ingest` a subcommand
    done = CliRunner().invoke(cli, ["ingest", str(docs)])
    assert done.exit_code == 0, done.output

    model = FakeModel(_answer_from_passages)
    agent = Agent(
        AgentConfig(name="milliwatt", tools=["knowledge.search"]),
        [model],
        tools=ToolRegistry(TOOLS).subset(["knowledge.search"]),
        data_dir=data,
    )
    result = agent.run("How often should I oil the bicycle chain?", user="new-user")

    assert result.tools_called[0].name == "knowledge.search"
    assert "Oil the chain every three hundred kilometres" in result.answer
    bicycle = str((docs / "home" / "bicycle.html").resolve())
    assert f"(source: {bicycle} § Bicycle care > Chain [" in result.answer
