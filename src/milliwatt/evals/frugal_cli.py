"""`milliwatt eval frugal`: how much of a workload tools answer, how well, and at what cost.

The agent (router first, then the model loop) answers every row; the same model alone
answers the same rows, or an even spread of them (--llm-rows), for comparison.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from milliwatt.config import load_settings
from milliwatt.evals.frugal import WorkloadError, default_workload, load_rows
from milliwatt.evals.frugal_run import (
    RowRun,
    run_model_alone,
    run_pipeline,
    run_routing_only,
    spread,
    totals,
)
from milliwatt.evals.scratch import scratch_agent


def frugal(
    data: Annotated[
        Path | None, typer.Option(help="JSON lines {prompt, expected, route}; default: built in")
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="one JSON line per row, then one with the totals")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N rows")] = None,
    sample: Annotated[
        int | None, typer.Option(min=1, help="only N rows, spread evenly over the workload")
    ] = None,
    llm_rows: Annotated[
        int | None,
        typer.Option(min=0, help="rows the model alone answers, spread evenly (default: all)"),
    ] = None,
    routing_only: Annotated[
        bool, typer.Option(help="score the router alone: rows it declines go to no model")
    ] = False,
    agent: Annotated[str | None, typer.Option(help="the configured agent to run")] = None,
    model: Annotated[
        str | None, typer.Option(help="a configured model to use alone (default: the agent's)")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="generated tokens per model call")] = 64,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads per local model (default: configured)")
    ] = None,
) -> None:
    """Score tool-first answering on a workload against the same model answering alone."""
    path = data or default_workload()
    try:
        rows = spread(load_rows(path)[:limit], sample)
    except (OSError, WorkloadError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None
    settings = load_settings()
    name = agent or settings.agents[0].name
    try:
        config = settings.agent(name)
    except KeyError:
        raise typer.BadParameter(f"no agent named {name!r}", param_hint="--agent") from None
    if model is not None and model not in settings.models:
        known = ", ".join(sorted(settings.models))
        raise typer.BadParameter(
            f"unknown model {model!r} (configured: {known})", param_hint="--model"
        )
    if model is not None:
        config = config.model_copy(update={"models": [model]})

    def show(run: str, done: RowRun) -> None:
        if json_lines:
            typer.echo(json.dumps(done.as_json(run), ensure_ascii=False))

    with scratch_agent(settings, config, threads=threads, max_tokens=max_tokens) as the_agent:
        run = run_routing_only if routing_only else run_pipeline
        report, pipeline = run(the_agent, rows, lambda d: show("pipeline", d))
        alone = run_model_alone(
            the_agent.models[0],
            config.instructions,
            [] if routing_only else spread(rows, llm_rows),
            watts_per_core=settings.watts_per_core,
            on_row=lambda d: show("llm_only", d),
        )
    figures = totals(report, pipeline, alone)
    figures["models"] = [m.name for m in the_agent.models]
    figures["llm_only"]["model"] = the_agent.models[0].name
    if json_lines:
        typer.echo(json.dumps({"totals": figures}))
    else:
        typer.echo(_table(figures))


def _table(f: dict[str, Any]) -> str:
    p, a = f["pipeline"], f["llm_only"]
    lines = [
        f"rows {f['total']}  models {' > '.join(f['models'])}",
        f"answered by tools  {f['tool_share']:.1%}",
        f"tool precision     {f['tool_precision']:.1%}   recall {f['tool_recall']:.1%}",
        f"mis-routes         {f['misroutes']} ({f['missed']} tool rows to the model, "
        f"{f['intruded']} model rows to a tool); wrong tool answers {f['wrong_tool_answers']}",
        f"pipeline           {p['tokens']} tokens, {p['ms']:.0f} ms, {p['joules_est']:.3g} J est "
        f"({p['joules_per_answer']:.3g} J/answer, "
        f"{f['pipeline_joules_per_tool_answer']:.3g} J per tool answer)",
    ]
    if a["rows"]:
        lines += [
            f"LLM only ({a['model']}, {a['rows']} rows)  {a['tokens']} tokens, {a['ms']:.0f} ms, "
            f"{a['joules_est']:.3g} J est ({a['joules_per_answer']:.3g} J/answer); "
            f"{a['tool_rows_right']}/{a['tool_rows']} tool rows right",
            f"energy, same rows: LLM only / pipeline = {f['energy_ratio_same_rows']}x; "
            f"per tool answer = {f['energy_ratio_tool_answers']}x",
        ]
    return "\n".join(lines)
