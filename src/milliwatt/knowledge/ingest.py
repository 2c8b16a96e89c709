"""Ingest: load, chunk, embed and store documents in one transaction per run.

Either every named source is stored or none is: a file that fails to load rolls the whole
run back, so the collection is never left half-updated. A source whose bytes hash the same
as last time is skipped; a changed one has its chunks replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import milliwatt.knowledge.loaders as loaders
import milliwatt.knowledge.store as store
from milliwatt.knowledge.chunking import chunk_text
from milliwatt.knowledge.index import VectorIndexes
from milliwatt.knowledge.stores import KnowledgeStore
from milliwatt.models.embeddings import Embedder

# fetches a URL and returns (body, content type); the CLI passes one built on the egress guard
UrlFetcher = Callable[[str], tuple[bytes, str]]
# called after each source: (source, sources done, sources in all)
ProgressCallback = Callable[[str, int, int], None]


@dataclass
class IngestReport:
    collection: str
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # no text to index
    pruned: list[str] = field(default_factory=list)  # gone from an ingested folder
    chunks: int = 0  # chunks written
    seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


def is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def expand_sources(sources: Sequence[str | Path]) -> list[str | Path]:
    """URLs as given; paths resolved, folders expanded into their supported files."""
    if not sources:
        raise ValueError("nothing to ingest: name at least one file, folder or URL")
    expanded: list[str | Path] = []
    for source in sources:
        if is_url(source):
            expanded.append(str(source))
        else:
            expanded.extend(loaders.discover([Path(source)]))
    return list(dict.fromkeys(expanded))


def ingest(
    db: KnowledgeStore,
    indexes: VectorIndexes,
    embedder: Embedder,
    key: store.CollectionKey,
    sources: Sequence[str | Path],
    *,
    fetch_url: UrlFetcher | None = None,
    progress: ProgressCallback | None = None,
    prune: bool = False,
) -> IngestReport:
    """Store the sources in the collection; with prune, also drop documents that were
    ingested from one of the named folders and are no longer in it."""
    began = time.perf_counter()
    items = expand_sources(sources)
    report = IngestReport(str(key))
    removed: list[int] = []
    added: list[int] = []
    vectors: list[np.ndarray] = []
    with db.write_transaction():
        before = db.ensure_collection(key, embedder.dimension)
        for done, item in enumerate(items, start=1):
            document = _load(item, fetch_url)
            previous = db.document_hash(before.id, document.source)
            if previous == document.content_hash:
                report.unchanged.append(document.source)
            else:
                chunks = _chunks(document)
                removed += db.delete_document(before.id, document.source)
                if not chunks:
                    report.empty.append(document.source)
                else:
                    embedded = embedder.embed([_embedding_text(document, c) for c in chunks])
                    added += db.insert_document(
                        before.id, document.source, document.content_hash, chunks, embedded
                    )
                    vectors.append(embedded)
                    report.chunks += len(chunks)
                    (report.added if previous is None else report.replaced).append(document.source)
            if progress is not None:
                progress(document.source, done, len(items))
        if prune:
            folders = [Path(s).resolve() for s in sources if not is_url(s) and Path(s).is_dir()]
            present = {str(item) for item in items}
            for source in db.document_sources(before.id):
                inside = any(Path(source).is_relative_to(folder) for folder in folders)
                if inside and source not in present:
                    removed += db.delete_document(before.id, source)
                    report.pruned.append(source)
        after = before
        if removed or added:
            generation = db.bump_generation(before.id)
            after = store.Collection(before.id, key, before.dimension, generation)
    if after is not before:
        stacked = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dimension))
        indexes.update(db, before, after, removed, added, stacked.astype(np.float32))
    report.seconds = time.perf_counter() - began
    return report


def _load(item: str | Path, fetch_url: UrlFetcher | None) -> loaders.Document:
    if isinstance(item, Path):
        return loaders.load_file(item)
    if fetch_url is None:
        raise loaders.LoadError(f"{item}: fetching URLs is not enabled here")
    body, media_type = fetch_url(item)
    return loaders.parse_bytes(body, item, loaders.kind_of_media_type(media_type, item))


def _chunks(document: loaders.Document) -> list[tuple[str, int, int, str]]:
    chunks = chunk_text(document.text, markdown=document.markdown, sections=document.sections)
    return [(c.heading, c.start, c.end, c.text) for c in chunks]


def _embedding_text(document: loaders.Document, chunk: tuple[str, int, int, str]) -> str:
    heading, _, _, text = chunk
    # a Markdown heading path says what the passage is about; a PDF's "page 3" does not
    return f"{heading}\n\n{text}" if heading and document.markdown else text
