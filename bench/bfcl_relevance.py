"""The relevance decision alone (no model) on both halves of BFCL and on the terse set.

    python bench/bfcl_relevance.py [--data DIR]

For each question, RelevanceJudge (agent/relevance.py) ranks the offered functions against
the request and a null hypothesis; a question whose best function is declined gets no call.
Printed per half (tuning: the margins and the near-miss weights were set on it; held-out:
never looked at for them) and for the terse set: how many questions that want a call are
declined (each one a wrong answer) and how many irrelevance questions are (each one a wrong
call avoided), for the judge as it is, for the margin alone (the judge without its
near-miss decline) and for the old absolute gate (cosine 0.45 on "name: description").
Also timed: the near-miss evidence the judge adds to the margin (word matching, no
embedding), per question. The last line holds the headline figures.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np

from bfcl_data import bfcl_folder
from milliwatt.agent.relevance import RelevanceJudge
from milliwatt.agent.relevance_features import described, echo
from milliwatt.evals.bfcl import load_category, tool_specs
from milliwatt.evals.bfcl_ast import category_kind
from milliwatt.evals.bfcl_split import split_of
from milliwatt.models.embeddings import get_embedder

ROOT = Path(__file__).resolve().parents[1]
TERSE = ROOT / "src" / "milliwatt" / "evals" / "bfcl_terse"
CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"]
OLD_GATE = 0.45


def main() -> int:
    data = bfcl_folder(__doc__.split("\n\n")[0])
    if data is None:
        return 1
    embed = get_embedder().embed
    judge = RelevanceJudge(embed)
    margin_only = RelevanceJudge(embed, decline_below=None)
    sets = [(data, c) for c in CATEGORIES] + [
        (TERSE, "terse_simple"),
        (TERSE, "terse_irrelevance"),
    ]
    # (group, wants a call) -> declined? by the judge, by the margin alone, by the old gate
    tally: dict[tuple[str, bool], tuple[list[bool], list[bool], list[bool]]] = {}
    near_miss_seconds: list[float] = []
    for folder, category in sets:
        for case in load_category(folder, category):
            request = " ".join(m["content"] for m in case.messages if m["role"] == "user")
            specs = tool_specs(case.functions)
            declined = judge.judge(request, specs)[0].verdict == "decline"
            by_margin = margin_only.judge(request, specs)[0].verdict == "decline"
            start = time.perf_counter()
            for spec in specs:
                if described(spec):
                    echo(request, spec)
            near_miss_seconds.append(time.perf_counter() - start)
            texts = [f"{re.sub(r'[._]', ' ', s.name)}: {s.description}" for s in specs]
            old = float((embed(texts) @ embed([request])[0]).max()) < OLD_GATE
            group = "terse" if folder == TERSE else split_of(case.id)
            wants = category_kind(category) != "irrelevance"
            lists = tally.setdefault((group, wants), ([], [], []))
            for declined_list, verdict in zip(lists, (declined, by_margin, old), strict=True):
                declined_list.append(verdict)
    figures: dict[str, float] = {}
    print("declined: judge / margin alone / old gate")
    print("group   | questions wanting a call          | irrelevance questions")
    for group in ("tuning", "heldout", "terse"):
        relevant = [np.mean(x) for x in tally[(group, True)]]
        irrelevant = [np.mean(x) for x in tally[(group, False)]]
        sizes = len(tally[(group, True)][0]), len(tally[(group, False)][0])
        print(
            f"{group:7} | {' / '.join(f'{r:5.1%}' for r in relevant)} of {sizes[0]:3} | "
            f"{' / '.join(f'{r:5.1%}' for r in irrelevant)} of {sizes[1]:3}"
        )
        for name, rel, irr in zip(("", "_margin", "_old"), relevant, irrelevant, strict=True):
            figures[f"{group}_relevant_declined{name}"] = round(float(rel), 3)
            figures[f"{group}_irrelevant_declined{name}"] = round(float(irr), 3)
    near_miss_ms = 1000 * float(np.mean(near_miss_seconds))
    print(f"near-miss evidence: {near_miss_ms:.3f} ms a question (word matching, no embedding)")
    figures["near_miss_ms"] = round(near_miss_ms, 3)
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
