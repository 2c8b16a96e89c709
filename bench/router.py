"""Tool-first routing against LLM-only answering, side by side on the frugal workload.

    python bench/router.py [--llm-rows 20] [--threads 1] [--max-tokens 64]

1. Router: every row of src/milliwatt/evals/frugal.jsonl through the router (tools: math,
   units, dates, text, graph, calendar): latency per request (p50/p99) for answered rows and
   for rows it hands to the model, CPU time, precision and recall.
2. LLM only: the bundled SmolLM2-135M (llama.cpp, CPU) answers a sample of the same tool rows
   with no tools; its CPU time per answer and how many answers are right.
Energy is estimated as CPU seconds x 15 W per busy core (the project's default
watts_per_core), the same rule for both; the ratio is what matters.
The last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from milliwatt.agent.router import Router
from milliwatt.evals.frugal import Outcome, Row, answer_matches, default_workload, load_rows, score
from milliwatt.tools import arithmetic, dates, graph, scheduling, text, units
from milliwatt.tools.registry import ToolContext, ToolRegistry

WATTS_PER_CORE = 15.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_router(rows: list[Row], context: ToolContext) -> dict[str, float]:
    registry = ToolRegistry(
        t for family in (arithmetic, units, dates, text, graph, scheduling) for t in family.TOOLS
    )
    router = Router(registry)
    router.warm()
    answered: list[float] = []
    declined: list[float] = []
    cpu_started = time.process_time()
    for _ in range(3):  # three passes: steady-state figures, not first-call loading
        for row in rows:
            started = time.perf_counter()
            found = router.resolve(row.prompt, context)
            elapsed = time.perf_counter() - started
            (answered if found is not None else declined).append(elapsed)
    cpu = (time.process_time() - cpu_started) / (3 * len(rows))

    def answer(prompt: str) -> Outcome:
        found = router.resolve(prompt, context)
        return Outcome("model", "") if found is None else Outcome("tool", found.answer, found.tool)

    report = score(rows, answer)
    return {
        "answered_p50_us": percentile(answered, 0.5) * 1e6,
        "answered_p99_us": percentile(answered, 0.99) * 1e6,
        "declined_p50_us": percentile(declined, 0.5) * 1e6,
        "declined_p99_us": percentile(declined, 0.99) * 1e6,
        "cpu_s_per_request": cpu,
        "precision": report.precision,
        "recall": report.recall,
        "answered_share": len(answered) / (len(answered) + len(declined)),
    }


def bench_llm(rows: list[Row], threads: int, max_tokens: int) -> dict[str, float] | None:
    try:
        from milliwatt.models.base import GenerationSettings, Message
        from milliwatt.models.llamacpp import LlamaCppModel
        from milliwatt.models.loader import bundled_model_path

        model = LlamaCppModel(bundled_model_path(), threads=threads)
    except (ImportError, FileNotFoundError) as exc:
        print(f"LLM baseline skipped: {exc}")
        return None
    settings = GenerationSettings(max_tokens=max_tokens)
    system = Message("system", "Answer with the result only.")
    model.complete([system, Message("user", "What is 1 + 1?")], settings=settings)  # warm-up
    cpu_times, wall_times, tokens, right = [], [], [], 0
    for row in rows:
        cpu_started, started = time.process_time(), time.perf_counter()
        response = model.complete([system, Message("user", row.prompt)], settings=settings)
        cpu_times.append(time.process_time() - cpu_started)
        wall_times.append(time.perf_counter() - started)
        tokens.append(response.usage.total_tokens)
        right += answer_matches(row.expected, response.text)
    model.close()
    return {
        "wall_s_per_answer": statistics.mean(wall_times),
        "cpu_s_per_answer": statistics.mean(cpu_times),
        "tokens_per_answer": statistics.mean(tokens),
        "accuracy": right / len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-rows", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    rows = load_rows(default_workload())
    with tempfile.TemporaryDirectory() as data:
        routed = bench_router(rows, ToolContext(user="bench", data_dir=Path(data)))
    print(f"router over {len(rows)} rows ({routed['answered_share']:.0%} answered by a tool)")
    print(
        f"  answered: p50 {routed['answered_p50_us']:.0f} us, "
        f"p99 {routed['answered_p99_us']:.0f} us"
    )
    print(
        f"  handed to the model: p50 {routed['declined_p50_us']:.0f} us, "
        f"p99 {routed['declined_p99_us']:.0f} us"
    )
    print(f"  precision {routed['precision']:.3f}, recall {routed['recall']:.3f}")
    router_joules = routed["cpu_s_per_request"] * WATTS_PER_CORE
    sample = random.Random(1).sample([r for r in rows if r.route == "tool"], args.llm_rows)
    llm = bench_llm(sample, args.threads, args.max_tokens)
    figures = {
        "router_p50_us": f"{routed['answered_p50_us']:.0f}",
        "router_p99_us": f"{routed['answered_p99_us']:.0f}",
        "decline_p50_us": f"{routed['declined_p50_us']:.0f}",
        "precision": f"{routed['precision']:.3f}",
        "recall": f"{routed['recall']:.3f}",
        "router_joules": f"{router_joules:.2e}",
    }
    if llm is not None:
        llm_joules = llm["cpu_s_per_answer"] * WATTS_PER_CORE
        print(
            f"LLM only (SmolLM2-135M, {args.threads} thread) on {len(sample)} tool rows: "
            f"{llm['wall_s_per_answer'] * 1000:.0f} ms and {llm['tokens_per_answer']:.0f} "
            f"tokens per answer, {llm['accuracy']:.0%} right"
        )
        print(
            f"estimated energy per answer: router {router_joules:.2e} J, "
            f"LLM {llm_joules:.2e} J, ratio {llm_joules / router_joules:,.0f}x"
        )
        figures.update(
            llm_ms=f"{llm['wall_s_per_answer'] * 1000:.0f}",
            llm_accuracy=f"{llm['accuracy']:.2f}",
            llm_joules=f"{llm_joules:.2e}",
            energy_ratio=f"{llm_joules / router_joules:.0f}",
            speedup=f"{llm['wall_s_per_answer'] * 1e6 / routed['answered_p50_us']:.0f}",
        )
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
