"""Long-term facts: real SQLite, real embeddings, strict per-user scoping."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from milliwatt.memory.facts import FactNotFoundError, FactStore
from milliwatt.models.embeddings import Embedder, EmbeddingModelMissingError, get_embedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    try:
        return get_embedder()
    except EmbeddingModelMissingError as exc:
        pytest.skip(f"embedding model not installed: {exc}")


@pytest.fixture
def store(tmp_path: Path, embedder: Embedder) -> FactStore:
    facts = FactStore(tmp_path / "facts.db", embedder)
    yield facts
    facts.close()


def test_remember_and_recall_by_meaning(store: FactStore) -> None:
    store.remember("alice", "helper", "Alice is allergic to peanuts.", "user said")
    store.remember("alice", "helper", "Alice's favourite colour is green.", "user said")
    store.remember("alice", "helper", "Alice works as a nurse in Leeds.", "user said")
    top = store.recall("alice", "helper", "what food should I avoid serving her?", k=1)[0]
    assert top.text == "Alice is allergic to peanuts."
    assert top.source == "user said" and top.created_at > 0 and top.score > 0
    job = store.recall("alice", "helper", "where does she work", k=1)[0]
    assert "nurse" in job.text


def test_facts_survive_reopening(tmp_path: Path, embedder: Embedder) -> None:
    first = FactStore(tmp_path / "facts.db", embedder)
    fact_id = first.remember("bob", "helper", "Bob has two cats.", "chat 2024-05-01")
    first.close()
    second = FactStore(tmp_path / "facts.db", embedder)
    assert [(f.id, f.text) for f in second.facts("bob", "helper")] == [
        (fact_id, "Bob has two cats.")
    ]
    second.close()


def test_one_users_facts_are_never_visible_to_another(store: FactStore) -> None:
    secret = store.remember("alice", "helper", "Alice's door code is 4711.", "user said")
    store.remember("bob", "helper", "Bob likes jazz.", "user said")
    for query in ("door code", "Alice's door code is 4711.", "4711", "", "alice"):
        for fact in store.recall("bob", "helper", query, k=100):
            assert "4711" not in fact.text
    assert [f.text for f in store.facts("bob", "helper")] == ["Bob likes jazz."]
    # the same user through another agent is another scope too
    assert store.recall("alice", "other-agent", "door code") == []
    # another user cannot delete it either, and learns nothing from trying
    with pytest.raises(FactNotFoundError, match=f"no fact {secret} for this user"):
        store.forget("bob", "helper", secret)
    assert store.recall("alice", "helper", "door code", k=1)[0].id == secret


def test_forget(store: FactStore) -> None:
    keep = store.remember("carol", "helper", "Carol speaks Welsh.", "user said")
    drop = store.remember("carol", "helper", "Carol lives in Cardiff.", "user said")
    store.forget("carol", "helper", drop)
    assert [f.id for f in store.recall("carol", "helper", "where does Carol live")] == [keep]
    with pytest.raises(FactNotFoundError):
        store.forget("carol", "helper", drop)
    # the full-text index forgot it as well
    conn = sqlite3.connect(store.path)
    assert (
        conn.execute("SELECT count(*) FROM facts_fts WHERE facts_fts MATCH 'Cardiff'").fetchone()[0]
        == 0
    )
    conn.close()


def test_same_fact_twice_is_stored_once(store: FactStore) -> None:
    first = store.remember("dan", "helper", "Dan  prefers   tea.", "user said")
    assert store.remember("dan", "helper", "Dan prefers tea.", "later chat") == first
    assert len(store.facts("dan", "helper")) == 1


def test_blank_query_lists_newest_first(store: FactStore) -> None:
    ids = [store.remember("erin", "helper", f"Fact number {i}.", "user said") for i in range(3)]
    assert [f.id for f in store.recall("erin", "helper", " ", k=2)] == ids[::-1][:2]


@pytest.mark.parametrize(
    ("user", "fact", "source", "message"),
    [
        ("", "x", "s", "need a user"),
        ("u", "   ", "s", "the fact is empty"),
        ("u", "x" * 2001, "s", "the limit is 2000"),
        ("u", "x", " ", "needs a source"),
    ],
)
def test_bad_input_is_named(
    store: FactStore, user: str, fact: str, source: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.remember(user, "helper", fact, source)
    with pytest.raises(ValueError, match="k must be between 1 and 100"):
        store.recall("u", "helper", "q", k=0)
