"""The OpenAI-compatible backend against a real server on loopback: llama-cpp-python's own,
serving the same bundled GGUF."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import free_port, start_logged, wait_for_http

from milliwatt.models.base import GenerationSettings, Message, ModelError, ToolSpec
from milliwatt.models.openai_compat import OpenAICompatModel


@pytest.fixture(scope="module")
def llama_server(
    bundled_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    proc = start_logged(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(bundled_model_path),
            "--model_alias",
            "smol",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ],
        log,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/v1/models", proc, log, timeout=120)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streams_an_answer_with_usage(llama_server: str) -> None:
    model = OpenAICompatModel(llama_server, "smol", context_length=2048)
    chunks = list(
        model.stream([Message("user", "Say hello.")], settings=GenerationSettings(max_tokens=16))
    )
    response = chunks[-1].response
    assert response is not None
    assert "".join(c.text for c in chunks[:-1]) == response.text
    assert response.text.strip()
    assert response.usage.completion_tokens > 0 and response.usage.prompt_tokens > 0
    model.close()


def test_tools_are_sent_natively_and_names_mapped_back(llama_server: str) -> None:
    spec = ToolSpec(
        "math.add",
        "Add two integers.",
        {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    )
    model = OpenAICompatModel(llama_server, "smol")
    response = model.complete(
        [Message("user", "add 1")], tools=[spec], settings=GenerationSettings(max_tokens=32)
    )
    for call in response.tool_calls:
        assert call.name == "math.add"
    assert response.text or response.tool_calls
    model.close()


def test_unreachable_server_is_a_model_error() -> None:
    model = OpenAICompatModel(f"http://127.0.0.1:{free_port()}/v1", "smol", timeout_seconds=2)
    with pytest.raises(ModelError, match="ConnectError"):
        model.complete([Message("user", "hi")])
