"""BFCL accuracy of one local model used raw and through milliwatt's pipeline, side by side.

    python bench/bfcl_raw_vs_pipeline.py [--per-category N] [--model NAME] [--data DIR]

raw: the functions are described in the prompt and calls are parsed from free text.
pipeline: embedding preselection (abstain when no function is close) + schema-constrained
calls. Both run on the same evenly spaced questions of each category, in one process.
The last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from milliwatt.config import BUNDLED_MODEL, load_settings
from milliwatt.evals.bfcl import BfclReport, load_category, run_bfcl
from milliwatt.evals.bfcl_calls import make_call_fn
from milliwatt.evals.frugal_run import spread
from milliwatt.models.embeddings import get_embedder
from milliwatt.models.loader import load_model

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora" / "bfcl"
CATEGORIES = ["simple_python", "multiple", "irrelevance", "parallel", "parallel_multiple"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-category", type=int, default=40)
    parser.add_argument("--model", default=BUNDLED_MODEL)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--modes", default="raw,pipeline")
    # accuracy is measured here, not latency: a busy machine must not turn into wrong answers
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per generation")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"BFCL data not found at {args.data}", file=sys.stderr)
        return 1
    settings = load_settings()
    config = settings.models[args.model].model_copy(update={"timeout_seconds": args.timeout})
    model = load_model(args.model, config)
    embed = get_embedder().embed
    chosen = args.modes.split(",")
    modes = {
        m: make_call_fn(m, model, embed=embed) for m in ("raw", "plain", "pipeline") if m in chosen
    }
    rows: list[tuple[str, dict[str, BfclReport], dict[str, float]]] = []
    for category in args.categories.split(","):
        cases = load_category(args.data, category)
        sample = spread(cases, args.per_category)
        reports: dict[str, BfclReport] = {}
        seconds: dict[str, float] = {}
        for mode, call_fn in modes.items():
            started = time.perf_counter()
            reports[mode] = run_bfcl(sample, call_fn)
            seconds[mode] = time.perf_counter() - started
            print(f"{category} {mode}: {reports[mode].totals()}", file=sys.stderr, flush=True)
        rows.append((category, reports, seconds))
    model.close()

    print(f"\nmodel {args.model}, {args.per_category} questions per category\n")
    print(
        f"{'category':<18} {'raw':>7} {'pipeline':>9} {'delta':>7} {'tok/q raw':>10} "
        f"{'tok/q pipe':>11} {'s/q raw':>8} {'s/q pipe':>9}"
    )
    headline: dict[str, str] = {"model": args.model, "n": str(args.per_category)}
    total_tokens = {"raw": 0, "pipeline": 0}
    for category, reports, seconds in rows:
        if len(reports) < 2:
            for mode, report in reports.items():
                headline[f"{mode}_{category}"] = f"{report.accuracy:.3f}"
            continue
        raw, pipe = reports["raw"], reports["pipeline"]
        n = len(raw.results)
        tok = {m: reports[m].totals()["tokens"] for m in reports}
        for m in tok:
            total_tokens[m] += tok[m]
        print(
            f"{category:<18} {100 * raw.accuracy:>6.1f}% {100 * pipe.accuracy:>8.1f}% "
            f"{100 * (pipe.accuracy - raw.accuracy):>+6.1f} {tok['raw'] / n:>10.0f} "
            f"{tok['pipeline'] / n:>11.0f} {seconds['raw'] / n:>8.2f} "
            f"{seconds['pipeline'] / n:>9.2f}"
        )
        headline[f"raw_{category}"] = f"{raw.accuracy:.3f}"
        headline[f"pipeline_{category}"] = f"{pipe.accuracy:.3f}"
    if total_tokens["raw"] and total_tokens["pipeline"]:
        ratio = total_tokens["raw"] / total_tokens["pipeline"]
        headline["token_ratio_raw_over_pipeline"] = f"{ratio:.2f}"
    print(" ".join(f"{k}={v}" for k, v in headline.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
