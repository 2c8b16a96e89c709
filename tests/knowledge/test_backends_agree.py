"""The same documents in SQLite and in PostgreSQL: the same passages, in the same order, for
the same questions (full text ranked by BM25 on both, vectors through the same IVF index)."""

from __future__ import annotations

from pathlib import Path

from milliwatt.knowledge import CollectionKey, KnowledgeBase
from milliwatt.models.embeddings import Embedder

KEY = CollectionKey("default", "helper", "manuals")
QUESTIONS = [
    "how often do I oil the bicycle chain?",
    "What does the light do when the battery is empty?",
    "descale the kettle",
    "MAX",
    "tyre pressure in bar",
    "widget battery",
    "removing limescale from a water heater",
]


def passages(kb: KnowledgeBase) -> list[list[tuple[str, int, int, float]]]:
    return [
        [(Path(p.source).name, p.start, p.end, round(p.score, 9)) for p in kb.search(q, KEY, k=5)]
        for q in QUESTIONS
    ]


def test_both_backends_rank_alike(
    tmp_path: Path, embedder: Embedder, docs: Path, postgres_url: str
) -> None:
    found = []
    for name, url in (("sqlite", None), ("postgres", postgres_url)):
        kb = KnowledgeBase(tmp_path / name, embedder, url)
        kb.ingest([docs], KEY)
        found.append(passages(kb))
        # full text alone, the part the backends compute differently
        words = ["kettle", "chain", "battery", "light", "water", "widget", "the"]
        collection = kb._writer.get_collection(KEY)
        assert collection is not None
        found.append([[kb._writer.full_text_search([collection.id], words, 10)]])
        kb.close()
    sqlite_search, sqlite_text, postgres_search, postgres_text = found
    assert postgres_search == sqlite_search
    assert postgres_text == sqlite_text and len(sqlite_text[0][0]) >= 5


def test_collection_statistics_follow_every_change(
    tmp_path: Path, embedder: Embedder, docs: Path, postgres_url: str
) -> None:
    import psycopg

    kb = KnowledgeBase(tmp_path / "data", embedder, postgres_url)

    def stats() -> tuple[int, int]:
        with psycopg.connect(postgres_url) as conn:
            kept = conn.execute("SELECT chunks, tokens FROM knowledge_collections").fetchone()
            real = conn.execute(
                "SELECT count(*), coalesce(sum(milliwatt_tokens(words)), 0) FROM knowledge_chunks"
            ).fetchone()
        assert kept is not None and real is not None
        assert tuple(kept) == tuple(real)  # the counters BM25 reads are the rows' own
        return int(kept[0]), int(kept[1])

    kb.ingest([docs], KEY)
    first = stats()
    assert first[0] >= 5 and first[1] > first[0]
    (docs / "home" / "kettle.txt").write_text("A short kettle note.", encoding="utf-8")
    kb.ingest([docs], KEY)
    assert stats()[1] < first[1]
    (docs / "widget.md").unlink()
    kb.ingest([docs], KEY, prune=True)
    assert stats()[0] < first[0]
    kb.close()


def test_two_nodes_ingesting_at_once_take_turns(
    tmp_path: Path, embedder: Embedder, docs: Path, postgres_url: str
) -> None:
    import threading

    nodes = [KnowledgeBase(tmp_path / f"node-{i}", embedder, postgres_url) for i in range(2)]
    sources = [docs / "widget.md", docs / "home"]
    failures: list[BaseException] = []

    def ingest(node: KnowledgeBase, source: Path) -> None:
        try:
            node.ingest([source], KEY)
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=ingest, args=pair) for pair in zip(nodes, sources, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    (info,) = nodes[0].collections("default", "helper")
    assert info.documents == 3
    # each node's index, built from the shared rows, finds what the other node ingested
    assert "vinegar" in nodes[0].search("descale the kettle", KEY, k=1)[0].text
    assert "AA battery" in nodes[1].search("which battery does it take", KEY, k=1)[0].text
    for node in nodes:
        node.close()
