"""The router answers from the agent's own documents, with a citation, when a passage
clearly answers; otherwise the model answers."""

from __future__ import annotations

from pathlib import Path

from milliwatt.agent.router import Router
from milliwatt.agent.runner import Agent
from milliwatt.config import AgentConfig
from milliwatt.knowledge import CollectionKey, open_knowledge_base
from milliwatt.models.embeddings import Embedder
from milliwatt.models.fake import FakeModel
from milliwatt.tools.builtin import builtin_registry


def test_clear_answer_from_documents_needs_no_model(
    tmp_path: Path, docs: Path, embedder: Embedder
) -> None:
    data = tmp_path / "data"
    open_knowledge_base(data).ingest([docs], CollectionKey("default", "helper", "manuals"))
    tools = builtin_registry().subset(["knowledge.search"])
    model = FakeModel(lambda messages, specs: "from the model")
    agent = Agent(
        AgentConfig(name="helper", tools=["knowledge.search"]),
        [model],
        tools=tools,
        router=Router(tools),
        data_dir=data,
    )
    result = agent.run("How often should I descale the kettle?")
    assert result.route == "tool" and result.tools_called[0].name == "knowledge.search"
    assert "vinegar" in result.answer and "kettle.txt" in result.answer
    assert model.calls == []
    other = agent.run("What is the capital of France?")
    assert other.route == "model" and other.answer == "from the model"
