"""The tuning/held-out split of BFCL: stable, about half and half, disjoint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from milliwatt.evals.bfcl import categories, load_category
from milliwatt.evals.bfcl_split import hash_sample, in_split, split_of

BFCL = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "bfcl"


@dataclass(frozen=True)
class Case:
    id: str


def test_the_split_is_the_documented_hash_rule() -> None:
    for case_id in ["simple_python_0", "multiple_17", "parallel_199", "irrelevance_5", "x"]:
        digest = int(hashlib.sha256(case_id.encode()).hexdigest()[:8], 16)
        assert split_of(case_id) == ("tuning" if digest % 2 == 0 else "heldout")
    # fixed values: the split must never move between releases
    assert [split_of(f"simple_python_{i}") for i in range(6)] == [
        "heldout",
        "tuning",
        "tuning",
        "heldout",
        "tuning",
        "tuning",
    ]


def test_halves_are_disjoint_cover_everything_and_keep_file_order() -> None:
    cases = [Case(f"q_{i}") for i in range(1000)]
    tuning, heldout = in_split(cases, "tuning"), in_split(cases, "heldout")
    assert not {c.id for c in tuning} & {c.id for c in heldout}
    assert sorted(c.id for c in tuning + heldout) == sorted(c.id for c in cases)
    assert 450 <= len(tuning) <= 550  # about half
    assert tuning == sorted(tuning, key=lambda c: int(c.id[2:]))
    assert in_split(cases, "all") == cases


def test_an_unknown_split_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown split 'both'"):
        in_split([Case("a")], "both")  # type: ignore[arg-type]


def test_a_sample_is_stable_and_a_subset() -> None:
    cases = [Case(f"q_{i}") for i in range(200)]
    first, again = hash_sample(cases, 20), hash_sample(list(reversed(cases)), 20)
    assert len(first) == 20 and {c.id for c in first} == {c.id for c in again}
    assert hash_sample(cases, None) == cases and hash_sample(cases, 500) == cases
    with pytest.raises(ValueError, match="at least one"):
        hash_sample(cases, 0)


def test_every_bfcl_category_splits_about_in_half() -> None:
    if not BFCL.is_dir():
        pytest.skip(f"BFCL corpus not found at {BFCL}")
    for category in categories(BFCL):
        cases = load_category(BFCL, category)
        share = len(in_split(cases, "tuning")) / len(cases)
        assert 0.4 <= share <= 0.6, (category, share)
