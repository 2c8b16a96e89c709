"""Ingest and hybrid search end to end: real files, real SQLite and PostgreSQL, real
embeddings."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from milliwatt.knowledge import (
    CollectionKey,
    KnowledgeBase,
    LoadError,
    UnknownCollectionError,
    best_passage,
    open_knowledge_base,
)
from milliwatt.models.embeddings import Embedder

from .pdf_maker import make_pdf

KEY = CollectionKey("default", "helper", "manuals")


@pytest.fixture
def kb(tmp_path: Path, embedder: Embedder, storage_url: str | None) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase(tmp_path / "data", embedder, storage_url)
    yield base
    base.close()


def index_folders(data: Path) -> list[Path]:
    """The IVF index folders under a data directory (PostgreSQL's: one folder per database)."""
    return list(data.glob("knowledge-index*/*.ivf"))


def stored_vectors(kb: KnowledgeBase, storage_url: str | None) -> list[tuple[int, bytes]]:
    if storage_url is None:
        conn = sqlite3.connect(kb.path)
        rows = conn.execute("SELECT id, vector FROM chunks").fetchall()
        conn.close()
        return rows
    import psycopg

    with psycopg.connect(storage_url) as conn:
        return conn.execute("SELECT id, vector FROM knowledge_chunks").fetchall()


def test_ingest_folder_and_search_with_citations(kb: KnowledgeBase, docs: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    report = kb.ingest([docs], KEY, progress=lambda s, d, t: seen.append((s, d, t)))
    assert len(report.added) == 3 and report.chunks >= 5
    assert [d for _, d, _ in seen] == [1, 2, 3] and all(t == 3 for _, _, t in seen)

    passages = kb.search("how often do I oil the bicycle chain?", KEY, k=3)
    top = passages[0]
    assert top.source == str((docs / "home" / "bicycle.html").resolve())
    assert top.heading == "Bicycle care > Chain"
    assert "three hundred kilometres" in top.text
    assert top.similarity > 0.5
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)

    widget = kb.search("What does the light do when the battery is empty?", KEY, k=1)[0]
    text = (docs / "widget.md").read_text(encoding="utf-8")
    assert text[widget.start : widget.end] == widget.text  # offsets cite the source exactly
    assert widget.heading == "Widget manual > Batteries"
    assert widget.citation().endswith(f"§ Widget manual > Batteries [{widget.start}:{widget.end}]")


def test_meaning_and_exact_words_both_count(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs], KEY)
    # no shared content word with the passage: only the vectors can find it
    assert "vinegar" in kb.search("removing limescale from a water heater", KEY, k=1)[0].text
    # a rare exact token: full text ranks it even though the sentence is about something else
    assert "MAX" in kb.search("MAX", KEY, k=1)[0].text


def test_unchanged_files_are_skipped_and_changed_ones_replaced(
    kb: KnowledgeBase, docs: Path
) -> None:
    kb.ingest([docs], KEY)
    again = kb.ingest([docs], KEY)
    assert len(again.unchanged) == 3 and again.chunks == 0 and not again.added

    kettle = docs / "home" / "kettle.txt"
    kettle.write_text("The kettle now has a blue handle made of bamboo.", encoding="utf-8")
    changed = kb.ingest([docs], KEY)
    assert changed.replaced == [str(kettle.resolve())] and len(changed.unchanged) == 2
    assert all("vinegar" not in p.text for p in kb.search("descale vinegar", KEY, k=10))
    assert "bamboo" in kb.search("what is the handle made of?", KEY, k=1)[0].text
    assert kb.collections("default", "helper")[0].documents == 3


def test_failed_ingest_leaves_previous_state(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs], KEY)
    before = [(p.chunk_id, p.text) for p in kb.search("widget battery", KEY, k=10)]
    (docs / "widget.md").write_text("# Widget\n\nCompletely rewritten text.", encoding="utf-8")
    (docs / "zz-broken.pdf").write_bytes(b"this is not a PDF")
    with pytest.raises(LoadError, match=r"zz-broken\.pdf: not a readable PDF"):
        kb.ingest([docs], KEY)
    after = [(p.chunk_id, p.text) for p in kb.search("widget battery", KEY, k=10)]
    assert after == before


def test_collections_are_scoped_by_tenant_and_agent(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs / "widget.md"], KEY)
    other_agent = CollectionKey("default", "other-agent", "manuals")
    kb.ingest([docs / "home"], other_agent)
    assert all("widget" not in p.text for p in kb.search("widget battery", other_agent, k=10))
    assert all("kettle" not in p.text for p in kb.search("kettle", KEY, k=10))
    with pytest.raises(UnknownCollectionError, match="no collection acme/helper/manuals"):
        kb.search("widget", CollectionKey("acme", "helper", "manuals"))
    assert [c.key for c in kb.collections("default", "helper")] == [KEY]


def test_index_is_rebuilt_when_its_file_is_lost(
    tmp_path: Path, embedder: Embedder, docs: Path, storage_url: str | None
) -> None:
    data = tmp_path / "data"
    first = KnowledgeBase(data, embedder, storage_url)
    first.ingest([docs], KEY)
    expected = [p.chunk_id for p in first.search("oil the chain", KEY, k=3)]
    first.close()
    folders = index_folders(data)
    assert len(folders) == 1
    (folders[0] / "vectors.npy").write_bytes(b"damaged")
    second = KnowledgeBase(data, embedder, storage_url)
    assert [p.chunk_id for p in second.search("oil the chain", KEY, k=3)] == expected
    second.close()


def test_index_matches_stored_vectors(
    kb: KnowledgeBase, docs: Path, storage_url: str | None
) -> None:
    kb.ingest([docs], KEY)
    rows = stored_vectors(kb, storage_url)
    query = kb.embedder.embed(["tyre pressure"])[0]
    sims = {r[0]: float(np.frombuffer(r[1], dtype=np.float32) @ query) for r in rows}
    top = kb.search("tyre pressure", KEY, k=1)[0]
    assert top.chunk_id == max(sims, key=sims.__getitem__)
    assert top.similarity == pytest.approx(sims[top.chunk_id], abs=2e-3)


def test_best_passage_is_conservative(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs], KEY)
    answer = kb.best_passage("How often should I oil the bicycle chain?", KEY)
    assert answer is not None and "three hundred kilometres" in answer.text
    assert kb.best_passage("What is the capital of France?", KEY) is None
    assert kb.best_passage("widget", KEY) is None  # matches several passages equally


def test_drop_collection(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs], KEY)
    kb.drop(KEY)
    assert kb.collections("default", "helper") == []
    assert not index_folders(kb.directory)
    with pytest.raises(UnknownCollectionError):
        kb.drop(KEY)


def test_bad_requests_are_named(kb: KnowledgeBase, docs: Path) -> None:
    with pytest.raises(ValueError, match="invalid collection name"):
        CollectionKey("default", "helper", "no spaces allowed")
    with pytest.raises(ValueError, match="nothing to ingest"):
        kb.ingest([], KEY)
    with pytest.raises(LoadError, match="fetching URLs is not enabled"):
        kb.ingest(["https://example.org/page"], KEY)
    kb.ingest([docs], KEY)
    with pytest.raises(ValueError, match="query is empty"):
        kb.search("   ", KEY)


def test_router_entry_point(tmp_path: Path, docs: Path, storage_url: str | None) -> None:
    data = tmp_path / "shared-data"
    open_knowledge_base(data, storage_url).ingest([docs], KEY)
    answer = best_passage("How often should I descale the kettle?", KEY, data, storage_url)
    assert answer is not None and "vinegar" in answer.text
    assert answer.source.endswith("kettle.txt")
    missing = CollectionKey("default", "nobody", "none")
    assert (
        best_passage("How often should I descale the kettle?", missing, data, storage_url) is None
    )


def test_prune_drops_files_gone_from_the_folder(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs], KEY)
    kb.ingest([docs / "widget.md"], CollectionKey("default", "helper", "other"))
    (docs / "home" / "kettle.txt").unlink()
    kept = kb.ingest([docs], KEY)  # without --prune nothing is dropped
    assert kept.pruned == [] and kb.collections("default", "helper")[0].documents == 3
    pruned = kb.ingest([docs], KEY, prune=True)
    assert pruned.pruned == [str((docs / "home" / "kettle.txt").resolve())]
    assert all("kettle" not in p.text for p in kb.search("descale the kettle", KEY, k=10))
    counts = {c.key.name: c.documents for c in kb.collections("default", "helper")}
    assert counts == {"manuals": 2, "other": 1}
    # pruning one subfolder leaves documents from elsewhere alone
    (docs / "home" / "bicycle.html").unlink()
    assert kb.ingest([docs / "home"], KEY, prune=True).pruned == [
        str((docs / "home" / "bicycle.html").resolve())
    ]
    assert kb.collections("default", "helper")[0].documents == 1


def test_a_second_process_sees_each_new_generation(
    tmp_path: Path, embedder: Embedder, docs: Path, storage_url: str | None
) -> None:
    data = tmp_path / "data"
    # PostgreSQL: another node, with index files of its own built from the shared rows
    elsewhere = data if storage_url is None else tmp_path / "node-2"
    writer = KnowledgeBase(data, embedder, storage_url)
    reader = KnowledgeBase(elsewhere, embedder, storage_url)
    writer.ingest([docs], KEY)
    assert "vinegar" in reader.search("descale the kettle", KEY, k=1)[0].text
    (docs / "home" / "kettle.txt").write_text("Descale it with citric acid.", encoding="utf-8")
    writer.ingest([docs], KEY)
    assert "citric acid" in reader.search("descale the kettle", KEY, k=1)[0].text
    writer.close()
    reader.close()


def test_pdf_passages_cite_their_page(kb: KnowledgeBase, tmp_path: Path) -> None:
    pdf = tmp_path / "guide.pdf"
    pdf.write_bytes(make_pdf(["Welcome to the guide.", "The warranty lasts five years."]))
    kb.ingest([pdf], KEY)
    top = kb.search("how long is the warranty", KEY, k=1)[0]
    assert top.heading == "page 2" and "five years" in top.text
