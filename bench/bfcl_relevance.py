"""The relevance decision alone (no model) on both halves of BFCL and on the terse set.

    python bench/bfcl_relevance.py [--data DIR]

For each question, RelevanceJudge (agent/relevance.py) ranks the offered functions against
the request and a null hypothesis; a question whose best function is declined gets no call.
Printed per half (tuning: the margins were set on it; held-out: never looked at for them):
how many questions that want a call are declined (each one a wrong answer) and how many
irrelevance questions are (each one a wrong call avoided), with the old absolute gate
(cosine 0.45 on "name: description") beside it. The last line holds the headline figures.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from milliwatt.agent.relevance import RelevanceJudge
from milliwatt.evals.bfcl import load_category, tool_specs
from milliwatt.evals.bfcl_ast import category_kind
from milliwatt.evals.bfcl_split import split_of
from milliwatt.models.embeddings import get_embedder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "corpora" / "bfcl"
TERSE = ROOT / "src" / "milliwatt" / "evals" / "bfcl_terse"
CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"]
OLD_GATE = 0.45


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"BFCL data not found at {args.data}", file=sys.stderr)
        return 1
    embed = get_embedder().embed
    judge = RelevanceJudge(embed)
    sets = [(args.data, c) for c in CATEGORIES] + [
        (TERSE, "terse_simple"),
        (TERSE, "terse_irrelevance"),
    ]
    # (group, wants a call) -> [new declined?], [old declined?]
    tally: dict[tuple[str, bool], tuple[list[bool], list[bool]]] = {}
    for folder, category in sets:
        for case in load_category(folder, category):
            request = " ".join(m["content"] for m in case.messages if m["role"] == "user")
            specs = tool_specs(case.functions)
            declined = judge.judge(request, specs)[0].verdict == "decline"
            texts = [f"{re.sub(r'[._]', ' ', s.name)}: {s.description}" for s in specs]
            old = float((embed(texts) @ embed([request])[0]).max()) < OLD_GATE
            group = "terse" if folder == TERSE else split_of(case.id)
            wants = category_kind(category) != "irrelevance"
            new_list, old_list = tally.setdefault((group, wants), ([], []))
            new_list.append(declined)
            old_list.append(old)
    figures: dict[str, float] = {}
    print("group      | questions wanting a call declined | irrelevant questions declined")
    for group in ("tuning", "heldout", "terse"):
        new_rel, old_rel = tally[(group, True)]
        new_irr, old_irr = tally[(group, False)]
        print(
            f"{group:10} | {np.mean(new_rel):6.1%} (old gate {np.mean(old_rel):6.1%}) of "
            f"{len(new_rel):3} | {np.mean(new_irr):6.1%} (old gate {np.mean(old_irr):6.1%}) "
            f"of {len(new_irr):3}"
        )
        figures[f"{group}_relevant_declined"] = round(float(np.mean(new_rel)), 3)
        figures[f"{group}_irrelevant_declined"] = round(float(np.mean(new_irr)), 3)
        figures[f"{group}_relevant_declined_old"] = round(float(np.mean(old_rel)), 3)
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
