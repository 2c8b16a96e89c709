"""The whole server with `[storage] url` set to PostgreSQL: a turn answered over HTTP is in
the database, and no SQLite session file is made."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.gateway.live_app import live_app

from milliwatt.config import AgentConfig, ToolSelectionConfig
from milliwatt.memory.postgres import PostgresSessionStore

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
    history = PostgresSessionStore(postgres_url).history("ada")
    assert [(m.role, m.content) for m in history] == [
        ("user", "Tell me about the sea."),
        ("assistant", answer),
    ]
    assert answer == "You said: Tell me about the sea."
    assert not (data / "sessions.db").exists()
    assert listed.status_code == 200 and "ada" in listed.text
