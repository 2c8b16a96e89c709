"""Long-term facts: real SQLite and PostgreSQL, real embeddings, strict per-user scoping."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from milliwatt.memory.facts import FactNotFoundError, FactStore, FactStoreBase
from milliwatt.models.embeddings import Embedder, EmbeddingModelMissingError, get_embedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    try:
        return get_embedder()
    except EmbeddingModelMissingError as exc:
        pytest.skip(f"embedding model not installed: {exc}")


def open_store(tmp_path: Path, storage_url: str | None, embedder: Embedder) -> FactStoreBase:
    if storage_url is None:
        return FactStore(tmp_path / "facts.db", embedder)
    from milliwatt.memory.facts_postgres import PostgresFactStore

    return PostgresFactStore(storage_url, embedder)


@pytest.fixture
def store(tmp_path: Path, storage_url: str | None, embedder: Embedder) -> Iterator[FactStoreBase]:
    facts = open_store(tmp_path, storage_url, embedder)
    yield facts
    facts.close()


def test_remember_and_recall_by_meaning(store: FactStoreBase) -> None:
    store.remember("alice", "helper", "Alice is allergic to peanuts.", "user said")
    store.remember("alice", "helper", "Alice's favourite colour is green.", "user said")
    store.remember("alice", "helper", "Alice works as a nurse in Leeds.", "user said")
    top = store.recall("alice", "helper", "what food should I avoid serving her?", k=1)[0]
    assert top.text == "Alice is allergic to peanuts."
    assert top.source == "user said" and top.created_at > 0 and top.score > 0
    job = store.recall("alice", "helper", "where does she work", k=1)[0]
    assert "nurse" in job.text


def test_facts_survive_reopening(
    tmp_path: Path, storage_url: str | None, embedder: Embedder
) -> None:
    first = open_store(tmp_path, storage_url, embedder)
    fact_id = first.remember("bob", "helper", "Bob has two cats.", "chat 2024-05-01")
    first.close()
    second = open_store(tmp_path, storage_url, embedder)
    assert [(f.id, f.text) for f in second.facts("bob", "helper")] == [
        (fact_id, "Bob has two cats.")
    ]
    second.close()


def test_one_users_facts_are_never_visible_to_another(store: FactStoreBase) -> None:
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


def test_forget(store: FactStoreBase) -> None:
    keep = store.remember("carol", "helper", "Carol speaks Welsh.", "user said")
    drop = store.remember("carol", "helper", "Carol lives in Cardiff.", "user said")
    store.forget("carol", "helper", drop)
    assert [f.id for f in store.recall("carol", "helper", "where does Carol live")] == [keep]
    with pytest.raises(FactNotFoundError):
        store.forget("carol", "helper", drop)
    # the full-text index forgot it as well
    # (a score of 1/61: first by meaning alone, no full-text match left to add to it)
    assert [(f.id, f.score) for f in store.recall("carol", "helper", "Cardiff")] == [(keep, 1 / 61)]
    if isinstance(store, FactStore):
        conn = sqlite3.connect(store.path)
        found = conn.execute("SELECT count(*) FROM facts_fts WHERE facts_fts MATCH 'Cardiff'")
        assert found.fetchone()[0] == 0
        conn.close()


def test_same_fact_twice_is_stored_once(store: FactStoreBase) -> None:
    first = store.remember("dan", "helper", "Dan  prefers   tea.", "user said")
    assert store.remember("dan", "helper", "Dan prefers tea.", "later chat") == first
    assert len(store.facts("dan", "helper")) == 1


def test_blank_query_lists_newest_first(store: FactStoreBase) -> None:
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
    store: FactStoreBase, user: str, fact: str, source: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.remember(user, "helper", fact, source)
    with pytest.raises(ValueError, match="k must be between 1 and 100"):
        store.recall("u", "helper", "q", k=0)


def test_recall_ranks_alike_on_both_backends(
    tmp_path: Path, postgres_url: str, embedder: Embedder
) -> None:
    facts = [
        "Frank is allergic to shellfish.",
        "Frank's sister lives in Lisbon.",
        "Frank drives a blue van to work.",
        "Frank's doctor is Dr Okafor at the Riverside clinic.",
        "Frank runs the Lisbon half marathon every March.",
        "Frank prefers window seats when flying.",
    ]
    queries = ["who is my doctor", "Lisbon", "what should I not eat", "flights", "van colour"]
    rankings = []
    for url in (None, postgres_url):
        store = open_store(tmp_path, url, embedder)
        for text in facts:
            store.remember("frank", "helper", text, "user said")
        rankings.append(
            [
                [(f.text, round(f.score, 9)) for f in store.recall("frank", "helper", q)]
                for q in queries
            ]
        )
        store.close()
    sqlite_ranking, postgres_ranking = rankings
    assert postgres_ranking == sqlite_ranking
    # both searches took part: the full-text hit on "Lisbon" scores above meaning alone
    assert sqlite_ranking[1][0][1] > 1 / 61
