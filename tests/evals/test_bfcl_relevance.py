"""The relevance decision's operating point, on BFCL's tuning half (the half its weights and
thresholds were set on; the held-out figures are in docs/evals.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from milliwatt.agent.relevance import RelevanceJudge
from milliwatt.evals.bfcl import load_category, tool_specs
from milliwatt.evals.bfcl_split import in_split
from milliwatt.models.embeddings import get_embedder

BFCL = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "bfcl"


def declined_share(judge: RelevanceJudge, category: str) -> float:
    cases = in_split(load_category(BFCL, category), "tuning")
    declined = 0
    for case in cases:
        request = " ".join(m["content"] for m in case.messages if m["role"] == "user")
        declined += judge.judge(request, tool_specs(case.functions))[0].verdict == "decline"
    return declined / len(cases)


def test_near_misses_are_declined_and_meant_functions_kept() -> None:
    if not BFCL.is_dir():
        pytest.skip(f"BFCL corpus not found at {BFCL}")
    embed = get_embedder().embed
    judge, margin_only = RelevanceJudge(embed), RelevanceJudge(embed, decline_below=None)
    irrelevant = declined_share(judge, "irrelevance")
    assert irrelevant >= 0.80  # 85.5% when the threshold was set
    assert irrelevant >= declined_share(margin_only, "irrelevance") + 0.25  # from 50.8%
    assert declined_share(judge, "simple_python") <= 0.10  # 8.2% (16 of 194)
