"""The agent's tool selection (agent/tool_selection.py) on tuning data, per min_margin.

    python bench/tool_selection_margin.py [--data DIR]

For BFCL's tuning half (simple_python, multiple, irrelevance) and the terse set, each
question's functions are ranked by ToolSelector as the agent runs it (conversation check
on); printed: the share of questions wanting a call whose best function is turned away and
the share of irrelevance questions that are offered one, for the old absolute bar (cosine
0.40) and for several margins over the null score. The held-out half is never read. The
last line holds the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bfcl_data import bfcl_folder
from milliwatt.agent.conversation import CONVERSATION_EXAMPLES
from milliwatt.agent.tool_selection import ToolSelector
from milliwatt.evals.bfcl import load_category, tool_specs
from milliwatt.evals.bfcl_split import split_of
from milliwatt.models.embeddings import get_embedder

ROOT = Path(__file__).resolve().parents[1]
TERSE = ROOT / "src" / "milliwatt" / "evals" / "bfcl_terse"
OLD_BAR = 0.40
MARGINS = (0.0, 0.05, 0.10)


def main() -> int:
    data = bfcl_folder(__doc__.split("\n\n")[0])
    if data is None:
        return 1
    embed = get_embedder().embed
    selector = ToolSelector(embed=embed, conversation=CONVERSATION_EXAMPLES)
    sets = [
        (data, "simple_python", "bfcl", True),
        (data, "multiple", "bfcl", True),
        (data, "irrelevance", "bfcl", False),
        (TERSE, "terse_simple", "terse", True),
        (TERSE, "terse_irrelevance", "terse", False),
    ]
    # (group, wants a call) -> rows of (best score, best minus null, best minus conversation)
    rows: dict[tuple[str, bool], list[tuple[float, float, float]]] = {}
    for folder, category, group, wants in sets:
        for case in load_category(folder, category):
            if group == "bfcl" and split_of(case.id) != "tuning":
                continue
            request = " ".join(m["content"] for m in case.messages if m["role"] == "user")
            query = embed([request])[0]
            best = selector._rank(query, tool_specs(case.functions))[0].score
            null = selector._null.null_score(query)
            talk = selector._conversation_score(query)
            rows.setdefault((group, wants), []).append((best, best - null, best - talk))
    figures: dict[str, float] = {}
    print(
        "group, wanting a call? | questions | old bar | " + " | ".join(f"{m:.2f}" for m in MARGINS)
    )
    for (group, wants), found in sorted(rows.items()):
        a = np.array(found)
        talk = a[:, 2] >= 0  # the conversation check, as in the default configuration
        offered = {"old": (a[:, 0] >= OLD_BAR) & talk}
        offered |= {f"{m:.2f}": (a[:, 1] >= m) & talk for m in MARGINS}
        # wanting a call: the share turned away; irrelevant: the share offered a function
        shares = {k: float(np.mean(~v if wants else v)) for k, v in offered.items()}
        kind = "turned_away" if wants else "offered"
        print(
            f"{group:5} {wants!s:5} | {len(a):9} | "
            + " | ".join(f"{share:6.1%}" for share in shares.values())
        )
        for key, share in shares.items():
            figures[f"{group}_{'relevant' if wants else 'irrelevant'}_{kind}_{key}"] = round(
                share, 3
            )
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
