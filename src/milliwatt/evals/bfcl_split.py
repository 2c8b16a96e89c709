"""Which half of BFCL a question belongs to: tuning (thresholds are set on it) or held-out
(only reported), decided by a stable hash of the question's id.

The rule: sha256 of the id (UTF-8); the first 8 hex digits as an integer; even is tuning,
odd is held-out. It needs no list of ids, does not change when a file is reordered or grows,
and splits every category about in half. Samples of a half are taken in the order of a
second hash ("sample:" + id), so a sample of N is the same N questions on every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar

Split = Literal["tuning", "heldout", "all"]
SPLITS: tuple[Split, ...] = ("heldout", "tuning", "all")


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)


def split_of(case_id: str) -> Literal["tuning", "heldout"]:
    """The half a question id belongs to, the same on every machine and run."""
    return "tuning" if _hash(case_id) % 2 == 0 else "heldout"


def in_split(cases: Sequence[T], split: Split) -> list[T]:
    """The questions of one half, in file order ("all": every question)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use heldout, tuning or all")
    if split == "all":
        return list(cases)
    return [c for c in cases if split_of(c.id) == split]


def hash_sample(cases: Sequence[T], size: int | None) -> list[T]:
    """A stable sample of `size` questions (all of them when size is None), in file order."""
    if size is None or size >= len(cases):
        return list(cases)
    if size < 1:
        raise ValueError(f"a sample needs at least one question, got {size}")
    chosen = {c.id for c in sorted(cases, key=lambda c: _hash(f"sample:{c.id}"))[:size]}
    return [c for c in cases if c.id in chosen]
