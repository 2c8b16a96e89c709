"""The whole server with `[storage] url` set to PostgreSQL: a turn answered over HTTP is in
the database, and no SQLite session file is made."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.gateway.live_app import live_app
from tests.storage_backends import SERVER, TcpRelay

from milliwatt.config import AgentConfig, ToolSelectionConfig
from milliwatt.memory.stores import open_session_store

AGENTS = [AgentConfig(name="milliwatt", tool_selection=ToolSelectionConfig(enabled=False))]


def test_a_served_turn_lands_in_postgres(tmp_path: Path, postgres_url: str) -> None:
    data = tmp_path / "data"
    with live_app(data, agents=AGENTS, storage={"url": postgres_url}) as url:
        body = {
            "model": "milliwatt",
            "user": "ada",
            "messages": [{"role": "user", "content": "Tell me about the sea."}],
        }
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        answer = reply.json()["choices"][0]["message"]["content"]
        listed = httpx.get(f"{url}/v1/sessions", timeout=10)
    history = open_session_store(tmp_path, postgres_url).history("ada")
    assert [(m.role, m.content) for m in history] == [
        ("user", "Tell me about the sea."),
        ("assistant", answer),
    ]
    assert answer == "You said: Tell me about the sea."
    assert not (data / "sessions.db").exists()
    assert listed.status_code == 200 and "ada" in listed.text


def test_a_database_gone_away_is_503_and_then_recovers(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import milliwatt.storage.postgres as postgres

    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_SECONDS", 2.0)  # fail in 2 s, not 10
    server = urlsplit(SERVER)
    relay = TcpRelay((server.hostname or "127.0.0.1", server.port or 5432)).start()
    url = postgres_url.replace(f"{server.hostname}:{server.port}", f"127.0.0.1:{relay.port}")

    def turn(base: str, text: str) -> httpx.Response:
        body = {
            "model": "milliwatt",
            "user": "ada",
            "messages": [{"role": "user", "content": text}],
        }
        return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)

    with live_app(tmp_path / "data", agents=AGENTS, storage={"url": url}) as base:
        assert turn(base, "first").status_code == 200
        relay.cut()
        down = turn(base, "while down")
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "database_unavailable"
        assert down.headers["retry-after"].isdigit()
        assert "127.0.0.1" not in down.text  # the database's address stays in the log
        relay.start()  # the same port: the database is back
        deadline = time.monotonic() + 30
        while (answer := turn(base, "after")).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.5)
    history = open_session_store(tmp_path, postgres_url).history("ada")
    assert [m.content for m in history if m.role == "user"] == ["first", "after"]
    relay.cut()
