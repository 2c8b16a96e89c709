"""Private documents an agent can cite: ingest, structure-aware chunks, hybrid search."""

from milliwatt.knowledge.base import (
    CollectionInfo,
    KnowledgeBase,
    UnknownCollectionError,
    best_passage,
    open_knowledge_base,
)
from milliwatt.knowledge.ingest import IngestReport
from milliwatt.knowledge.loaders import LoadError
from milliwatt.knowledge.search import Passage
from milliwatt.knowledge.store import CollectionKey

__all__ = [
    "CollectionInfo",
    "CollectionKey",
    "IngestReport",
    "KnowledgeBase",
    "LoadError",
    "Passage",
    "UnknownCollectionError",
    "best_passage",
    "open_knowledge_base",
]
