"""Tool preselection: offer the model only the few tools that match the request.

Every tool in the prompt costs prompt tokens (a 135M model reads a few hundred a second on
one core) and gives a small model one more wrong choice. Each tool is described by its name,
description and examples; each of those texts is embedded once with the bundled
all-MiniLM-L6-v2, and a tool's score for a request is the best cosine over its texts.

A tool is offered when its score beats the request's null score (how well functions nobody
offered fit it, agent/relevance.py) by `min_margin`: an absolute cosine bar turned away
users' tersely described tools ("forecast: conditions at loc") that do fit the request.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from milliwatt.agent.conversation import CONVERSATION_EXAMPLES
from milliwatt.agent.relevance import RelevanceJudge, name_words
from milliwatt.config import ToolSelectionConfig
from milliwatt.models.embeddings import MODEL_PACKAGE as EMBEDDING_MODEL

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised rows

DEFAULT_TOP_K = 3
# set on tuning data only (docs/cascade.md): BFCL's tuning half and the terse set; 0.05 turns
# away 2.8% of BFCL requests meant for a function (the old 0.40 cosine bar: 5.2%) and 16% of
# the terse set's (old bar: 50%); 0.10 would turn away 5.6% and 34%
DEFAULT_MIN_MARGIN = 0.05


class Describable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...


T = TypeVar("T", bound=Describable)


@dataclass(frozen=True)
class Scored:
    name: str
    score: float


def tool_texts(item: Describable) -> list[str]:
    """What a tool is matched on: 'units convert: description' and each example request."""
    words = name_words(item.name)
    examples = getattr(item, "examples", ()) or ()
    return [f"{words}: {item.description}", *(str(e) for e in examples)]


class ToolSelector:
    """Ranks tools against a request; the text vectors are cached for the selector's life."""

    def __init__(
        self,
        *,
        top_k: int = DEFAULT_TOP_K,
        min_margin: float = DEFAULT_MIN_MARGIN,
        min_similarity: float | None = None,
        embed: Embed | None = None,
        cache_file: Path | None = None,
        conversation: Sequence[str] = (),
        conversation_margin: float = 0.0,
    ) -> None:
        """`conversation`: examples of requests that want words, not a tool; a request whose
        best tool does not beat its closest example by `conversation_margin` gets no tools.
        `min_similarity`, when given, is an absolute cosine bar a tool must also reach."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if not -2.0 <= min_margin <= 2.0:
            raise ValueError(f"min_margin must be a cosine difference in [-2, 2], got {min_margin}")
        if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be a cosine in [-1, 1], got {min_similarity}")
        self.top_k = top_k
        self.min_margin = min_margin
        self.min_similarity = min_similarity
        self._embed = embed
        # the null score's background texts go through the same cache as the tools' texts
        self._null = RelevanceJudge(self._cached)
        self.conversation = tuple(conversation)
        self.conversation_margin = conversation_margin
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        # tool texts rarely change: their vectors are kept on disk, so a restart does not
        # spend seconds embedding them again (keyed by a hash of the text)
        self._cache_file = cache_file
        self._stored: dict[str, np.ndarray] = _load_vectors(cache_file)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._embed is None:
            # loaded on first use: agents that never reach the model loop never pay for it
            from milliwatt.models.embeddings import get_embedder

            self._embed = get_embedder().embed
        return self._embed(texts)

    def rank(self, request: str, tools: Sequence[Describable]) -> list[Scored]:
        """Every tool with its best similarity to the request, best first."""
        if not request.strip():
            raise ValueError("request: the request is empty")
        if not tools:
            return []
        return self._rank(self.embed([request])[0], tools)

    def _rank(self, query: np.ndarray, tools: Sequence[Describable]) -> list[Scored]:
        texts = [tool_texts(t) for t in tools]
        self._cache([text for group in texts for text in group])
        scored = [
            Scored(t.name, float(max(self._vectors[text] @ query for text in group)))
            for t, group in zip(tools, texts, strict=True)
        ]
        return sorted(scored, key=lambda s: -s.score)

    def select(self, request: str, tools: Sequence[T]) -> list[T]:
        """The top-k tools beating the null score by min_margin ([] means: answer in words)."""
        if not request.strip():
            raise ValueError("request: the request is empty")
        if not tools:
            return []
        by_name = {t.name: t for t in tools}
        query = self.embed([request])[0]
        ranked = self._rank(query, tools)
        # a request more like conversation than like any tool is answered in words
        best = ranked[0].score
        if self.conversation and best < self._conversation_score(query) + self.conversation_margin:
            return []
        bar = self._null.null_score(query) + self.min_margin
        if self.min_similarity is not None:
            bar = max(bar, self.min_similarity)
        return [by_name[s.name] for s in ranked[: self.top_k] if s.score >= bar]

    def _conversation_score(self, query: np.ndarray) -> float:
        self._cache(list(self.conversation))
        return float(max(self._vectors[text] @ query for text in self.conversation))

    def _cached(self, texts: Sequence[str]) -> np.ndarray:
        self._cache(list(texts))
        return np.stack([self._vectors[text] for text in texts])

    def _cache(self, texts: list[str]) -> None:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
            for text in [t for t in missing if _key(t) in self._stored]:
                self._vectors[text] = self._stored[_key(text)]
                missing.remove(text)
            if missing:
                new = dict(zip(missing, self.embed(missing), strict=True))
                self._vectors.update(new)
                self._stored.update((_key(t), v) for t, v in new.items())
                _save_vectors(self._cache_file, self._stored)


def _key(text: str) -> str:
    return hashlib.sha256(f"{EMBEDDING_MODEL}\n{text}".encode()).hexdigest()


def _load_vectors(path: Path | None) -> dict[str, np.ndarray]:
    if path is None or not path.is_file():
        return {}
    try:
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile):  # a damaged cache is rebuilt
        return {}


def _save_vectors(path: Path | None, vectors: dict[str, np.ndarray]) -> None:
    if path is None:
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(temporary, allow_pickle=True, **vectors)
        os.replace(temporary, path)  # readers see the old file or the new one, never half
    except OSError as exc:  # a read-only or full disk costs the next start time, not answers
        log.warning("tool vectors not cached at %s: %s", path, exc)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def tool_selector(
    config: ToolSelectionConfig, cache_file: Path | None = None
) -> ToolSelector | None:
    """The selector an agent's configuration asks for (None: offer every tool)."""
    if not config.enabled:
        return None
    return ToolSelector(
        top_k=config.top_k,
        min_margin=config.min_margin,
        min_similarity=config.min_similarity,
        cache_file=cache_file,
        conversation=CONVERSATION_EXAMPLES if config.conversation else (),
        conversation_margin=config.conversation_margin,
    )
