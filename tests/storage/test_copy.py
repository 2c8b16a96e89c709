"""`milliwatt storage copy`: a data directory's SQLite data into PostgreSQL, whole, once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from milliwatt.access.keys import AuthError, KeyStore
from milliwatt.access.limits import Limits
from milliwatt.access.operators import OperatorStore, OtpError
from milliwatt.knowledge import CollectionKey, KnowledgeBase
from milliwatt.memory.facts import FactStore
from milliwatt.memory.sessions import TurnCost
from milliwatt.memory.stores import open_session_store
from milliwatt.models.base import Message, ToolCall
from milliwatt.models.embeddings import Embedder, EmbeddingModelMissingError, get_embedder
from milliwatt.shield.audit_trail import AuditTrail
from milliwatt.tools.registry import ToolContext
from milliwatt.tools.scheduling import book, free_busy

KEY = CollectionKey("default", "helper", "notes")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    try:
        return get_embedder()
    except EmbeddingModelMissingError as exc:
        pytest.skip(f"embedding model not installed: {exc}")


def fill(data: Path, embedder: Embedder) -> list[Message]:
    """Some of everything, the embedded default's way."""
    sessions = open_session_store(data)
    call = ToolCall("c1", "math.calculate", {"expression": "6*7"})
    turn = [
        Message("user", "what is 6*7"),
        Message("assistant", "", [call]),
        Message("tool", "42", tool_call_id="c1", name="math.calculate"),
        Message("assistant", "42"),
    ]
    sessions.append_turn("ada", "milliwatt", turn, TurnCost(7, 2, 0.5, 1.5))
    sessions.append_turn("ada", "milliwatt", [Message("user", "thanks")], TurnCost(1))
    sessions.close()
    facts = FactStore(data / "facts.db", embedder)
    facts.remember("ada", "milliwatt", "Ada keeps bees on the roof.", "user said")
    facts.close()
    context = ToolContext(user="ada", data_dir=data)
    assert book.call(
        {"title": "Hive check", "start": "2026-04-01 09:00", "duration_minutes": 30}, context
    ).ok
    notes = data / "notes.md"
    notes.write_text(
        "# Bees\n\nThe hive needs a check every nine days in spring.", encoding="utf-8"
    )
    kb = KnowledgeBase(data, embedder)
    kb.ingest([notes], KEY)
    kb.close()
    with AuditTrail(data / "audit-trail.jsonl", checkpoint_every=2) as trail:
        for i in range(5):
            trail.record("key.used", {"n": i})
    return [*turn, Message("user", "thanks")]


def test_copy_moves_everything_and_only_once(
    tmp_path: Path, embedder: Embedder, postgres_url: str
) -> None:
    from milliwatt.memory.facts_postgres import PostgresFactStore
    from milliwatt.shield.audit_trail_postgres import verify_postgres
    from milliwatt.storage.copy import copy_data_dir

    data = tmp_path / "data"
    history = fill(data, embedder)
    keys = KeyStore(data)
    key, _ = keys.create("acme", agents=("helper",), limits=Limits(rpm=30))
    revoked, revoked_info = keys.create("acme")
    keys.revoke(revoked_info.id)
    keys.set_tenant_limits("acme", Limits(tpm=900))
    operators = OperatorStore(data)
    totp = pyotp.TOTP(parse_qs(urlparse(operators.enroll("ada")).query)["secret"][0])
    used = totp.now()
    operators.confirm("ada", used)
    report = copy_data_dir(data, postgres_url)
    assert report == {
        "sessions": "copied 2",
        "facts": "copied 1",
        "calendars": "copied 1",
        "knowledge": "copied 1",
        "audit_trail": "copied 5",
        "access": "copied 2",
    }
    # every kind now answers from PostgreSQL as it did from SQLite
    sessions = open_session_store(tmp_path, postgres_url)
    assert sessions.history("ada") == history
    info = sessions.info("ada")
    assert info is not None and (info.turns, info.cost) == (2, TurnCost(8, 2, 0.5, 1.5))
    recalled = PostgresFactStore(postgres_url, embedder).recall("ada", "milliwatt", "insects")
    assert [f.text for f in recalled] == ["Ada keeps bees on the roof."]
    context = ToolContext(user="ada", data_dir=tmp_path / "elsewhere", storage_url=postgres_url)
    busy = free_busy.call({"start": "2026-04-01 08:00", "end": "2026-04-01 12:00"}, context)
    assert [e["title"] for e in busy.value["busy"]] == ["Hive check"]
    kb = KnowledgeBase(tmp_path / "node", embedder, postgres_url)
    assert "nine days" in kb.search("how often should the hive be checked", KEY, k=1)[0].text
    kb.close()
    verdict = verify_postgres(postgres_url)
    assert verdict.ok and verdict.records == 5
    node_keys = KeyStore(tmp_path / "node", postgres_url)
    principal = node_keys.authenticate(key)
    assert (principal.agents, principal.limits.rpm, principal.tenant_limits.tpm) == (
        ("helper",), 30, 900,
    )  # fmt: skip
    with pytest.raises(AuthError, match="revoked"):
        node_keys.authenticate(revoked)
    node_operators = OperatorStore(tmp_path / "node", postgres_url)
    assert [(o.name, o.active) for o in node_operators.list()] == [("ada", True)]
    with pytest.raises(OtpError, match="used already"):  # the last accepted step came along
        node_operators.verify("ada", used)
    # a second copy adds nothing
    again = copy_data_dir(data, postgres_url)
    assert set(again.values()) == {
        f"skipped: PostgreSQL's {t} is not empty"
        for t in (
            "sessions", "facts", "calendar_events", "knowledge_collections", "audit_trail", "keys"
        )
    }  # fmt: skip
    assert len(sessions.history("ada")) == len(history)


def test_the_storage_commands(tmp_path: Path, embedder: Embedder, postgres_url: str) -> None:
    data = tmp_path / "data"
    fill(data, embedder)
    env = {
        **os.environ,
        "MILLIWATT_DATA_DIR": str(data),
        "MILLIWATT_CONFIG": str(tmp_path / "m.toml"),
    }
    (tmp_path / "m.toml").write_text("")

    def storage(*args: str, url: str | None = postgres_url) -> subprocess.CompletedProcess[str]:
        extra = {"MILLIWATT_STORAGE__URL": url} if url else {}
        return subprocess.run(
            [sys.executable, "-m", "milliwatt.cli", "storage", *args],
            capture_output=True, text=True, env=env | extra, timeout=120,
        )  # fmt: skip

    refused = storage("copy", url=None)
    assert refused.returncode == 1 and "storage.url is not set" in refused.stderr
    copied = storage("copy")
    assert copied.returncode == 0, copied.stderr
    assert "sessions\tcopied 2" in copied.stdout and "audit_trail\tcopied 5" in copied.stdout
    shown = storage("status")
    assert shown.returncode == 0, shown.stderr
    assert "backend\tpostgres" in shown.stdout and "sessions\t1 rows in sessions" in shown.stdout
    assert "backend\tsqlite" in storage("status", url=None).stdout


def test_a_nul_character_stops_the_copy_of_its_kind_whole(
    tmp_path: Path, postgres_url: str
) -> None:
    from milliwatt.storage.copy import NulCharacterError, copy_data_dir

    data = tmp_path / "data"
    sessions = open_session_store(data)
    sessions.append_turn("ada", "milliwatt", [Message("user", "fine")], TurnCost())
    sessions.append_turn("bob", "milliwatt", [Message("user", "a\x00b")], TurnCost())
    sessions.close()
    with pytest.raises(NulCharacterError, match="NUL character"):
        copy_data_dir(data, postgres_url)
    assert open_session_store(tmp_path, postgres_url).list() == []  # not even "ada"
