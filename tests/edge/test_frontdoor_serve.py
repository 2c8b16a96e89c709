"""End to end: two real `milliwatt serve` PoPs sharing their session store, `milliwatt
frontdoor` before them; the PoP that holds a conversation is killed and the next turn is
answered by the other with the whole conversation.

The shared store is either the one data_dir (SQLite) of two processes on one machine or,
as PoPs on different machines would share it, one PostgreSQL database (`[storage] url`).
The model is a scripted OpenAI-compatible server on loopback: it answers with the number
of user messages it was shown, so an answer proves which history the PoP had."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import Server
from tests.edge.frontdoor_fixtures import chat, frontdoor_process, pops_toml
from tests.scripted_model import scripted_model
from tests.storage_backends import fresh_schema


def _heard(messages: list[dict[str, Any]]) -> dict[str, Any]:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return {"content": f"heard {len(users)}: {users[-1]}"}


@pytest.fixture
def model_port() -> Iterator[int]:
    with scripted_model(_heard) as port:
        yield port


def config(model_port: int, storage_url: str | None) -> str:
    storage = f'[storage]\nurl = "{storage_url}"\n' if storage_url else ""
    return f"""{storage}
[models.scripted]
backend = "openai"
base_url = "http://127.0.0.1:{model_port}/v1"
remote_name = "scripted"

[[agents]]
name = "milliwatt"
models = ["scripted"]
tools = []
tool_selection.enabled = false
"""


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # both PoPs keep sessions in one data_dir
    else:
        with fresh_schema() as url:
            yield url


def test_a_conversation_survives_the_death_of_its_pop(
    make_server: Any, model_port: int, storage_url: str | None, tmp_path: Path
) -> None:
    # one workdir: both PoPs read one milliwatt.toml
    first: Server = make_server(config(model_port, storage_url)).start()
    second: Server = make_server(config(model_port, storage_url)).start()
    by_name = {"a": first, "b": second}
    pops = pops_toml({"a": [first.url], "b": [second.url]})
    with frontdoor_process(tmp_path, pops) as url:

        def turn(text: str) -> httpx.Response:
            body = chat(content=text, user="ada")
            answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
            assert answer.status_code == 200, answer.text
            return answer

        turn("the first words")
        holder = turn("the second words").headers["x-milliwatt-pop"]
        by_name[holder].kill()  # SIGKILL, before any probe has seen it
        third = turn("the third words")
        assert third.headers["x-milliwatt-pop"] != holder
        answer = third.json()["choices"][0]["message"]["content"]
        assert answer == "heard 3: the third words"  # the survivor had turns 1 and 2
        stored = httpx.get(f"{url}/v1/sessions/ada", timeout=30).json()["messages"]
        assert [m["content"] for m in stored if m["role"] == "user"] == [
            "the first words", "the second words", "the third words",
        ]  # fmt: skip
    # the turns are where the configuration put them
    assert (first.workdir / "data" / "sessions.db").exists() == (storage_url is None)
