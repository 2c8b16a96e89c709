"""Hybrid retrieval: full text (SQLite: BM25 over FTS5; PostgreSQL: ts_rank over a tsvector)
and cosine over the IVF vector index, fused by reciprocal rank.

Rank fusion needs no score calibration between the two retrievers, which is why it is
used: BM25 scores and cosine similarities live on unrelated scales.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

import milliwatt.knowledge.store as store
from milliwatt.knowledge.index import VectorIndexes
from milliwatt.knowledge.stores import KnowledgeStore

RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks
CANDIDATES = 50  # taken from each retriever before fusion

# best_passage answers without a model only when all of these hold (see docs/knowledge.md)
ANSWER_MIN_SIMILARITY = 0.55  # cosine between question and passage
ANSWER_MIN_MARGIN = 0.05  # over the best passage that does not overlap it
ANSWER_MIN_TERM_COVERAGE = 0.5  # share of the question's content words found in it
ANSWER_MIN_CONTENT_WORDS = 2  # a bare keyword names a topic; it asks nothing to answer

_WORD = re.compile(r"\w+", re.UNICODE)
# words that carry no topic; dropped from the full-text query and from term coverage
_STOPWORD_LIST = """a an and are as at be by can could did do does for from has have how i in is
it its me my of on or our should so than that the their them then there these they this to
was we were what when where which who whom why will with would you your"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its citation."""

    text: str
    source: str
    heading: str
    start: int
    end: int
    score: float  # fused reciprocal-rank score: higher is better, comparable within a query
    similarity: float  # cosine between the query and the passage (-1..1)
    chunk_id: int

    def citation(self) -> str:
        where = f" § {self.heading}" if self.heading else ""
        return f"{self.source}{where} [{self.start}:{self.end}]"


def content_words(text: str) -> list[str]:
    return [w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS]


def hybrid_search(
    db: KnowledgeStore,
    indexes: VectorIndexes,
    collections: list[store.Collection],
    query: str,
    query_vector: np.ndarray,
    k: int = 5,
) -> tuple[list[Passage], dict[int, int], dict[int, int]]:
    """Top-k fused passages, plus each retriever's ranks (chunk id -> 0-based rank)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not collections:
        return [], {}, {}
    with db.reading():  # one connection for the search's queries (PostgreSQL: one pool turn)
        return _hybrid_search(db, indexes, collections, query, query_vector, k)


def _hybrid_search(
    db: KnowledgeStore,
    indexes: VectorIndexes,
    collections: list[store.Collection],
    query: str,
    query_vector: np.ndarray,
    k: int,
) -> tuple[list[Passage], dict[int, int], dict[int, int]]:
    similarities: dict[int, float] = {}
    for collection in collections:
        for chunk_id, sim in indexes.search(db, collection, query_vector, CANDIDATES):
            similarities[chunk_id] = sim
    by_vector = sorted(similarities, key=lambda cid: -similarities[cid])[:CANDIDATES]
    words = list(dict.fromkeys(content_words(query)))
    by_text = db.full_text_search([c.id for c in collections], words, CANDIDATES)
    vector_rank = {cid: rank for rank, cid in enumerate(by_vector)}
    text_rank = {cid: rank for rank, cid in enumerate(by_text)}
    fused: dict[int, float] = {}
    for ranks in (vector_rank, text_rank):
        for cid, rank in ranks.items():
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    top = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
    rows = db.get_chunks(top)
    missing = [cid for cid in top if cid not in similarities]
    for cid, vector in db.get_vectors(missing).items():
        similarities[cid] = float(vector @ query_vector)
    passages = [
        Passage(
            text=rows[cid].text,
            source=rows[cid].source,
            heading=rows[cid].heading,
            start=rows[cid].start,
            end=rows[cid].end,
            score=fused[cid],
            similarity=similarities[cid],
            chunk_id=cid,
        )
        for cid in top
        if cid in rows  # a chunk deleted since the index was read is skipped
    ]
    return passages, vector_rank, text_rank


def pick_answer(
    question: str,
    passages: list[Passage],
    vector_rank: dict[int, int],
    text_rank: dict[int, int],
) -> Passage | None:
    """The top passage when it clearly answers the question, else None (be conservative).

    Both retrievers must rank it first, it must be close to the question in meaning and
    clearly closer than any passage that does not overlap it, and it must contain at least
    half of the question's content words (of which there must be two or more).
    """
    if not passages:
        return None
    best = passages[0]
    if vector_rank.get(best.chunk_id) != 0 or text_rank.get(best.chunk_id) != 0:
        return None
    if best.similarity < ANSWER_MIN_SIMILARITY:
        return None
    rivals = [p.similarity for p in passages[1:] if not _overlaps(p, best)]
    if rivals and best.similarity - max(rivals) < ANSWER_MIN_MARGIN:
        return None
    # five-letter prefixes: a cheap stem, so "installing" meets "install"
    wanted = {w[:5] for w in content_words(question)}
    if len(wanted) < ANSWER_MIN_CONTENT_WORDS:
        return None
    found = {w[:5] for w in content_words(best.heading + " " + best.text)}
    if len(wanted & found) / len(wanted) < ANSWER_MIN_TERM_COVERAGE:
        return None
    return best


def _overlaps(a: Passage, b: Passage) -> bool:
    return a.source == b.source and a.start < b.end and b.start < a.end
