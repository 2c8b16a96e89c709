"""`milliwatt eval everyday`: the default agent on ordinary requests, checked row by row."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from milliwatt.agent.runner import Agent
from milliwatt.config import load_settings
from milliwatt.evals.everyday import (
    SPLITS,
    EverydayError,
    Row,
    Turn,
    Verdict,
    check,
    default_prompts,
    load_rows,
    summary,
)
from milliwatt.evals.scratch import scratch_agent
from milliwatt.models.base import ModelError


def run_rows(
    agent: Agent, rows: Sequence[Row], on_row: Callable[[Verdict], None] | None = None
) -> list[Verdict]:
    """Every row through the agent (router, then the model loop), each checked."""
    verdicts = []
    for row in rows:
        started = time.perf_counter()
        try:
            result = agent.run(row.prompt)
            turn = Turn(
                result.answer,
                result.stop,
                result.route,
                tuple(t.name for t in result.tools_called),
                result.ledger.completion_tokens,
                time.perf_counter() - started,
            )
        except ModelError as exc:  # one failed row must not end the evaluation
            turn = Turn("", f"error: {exc}", "model", (), 0, time.perf_counter() - started)
        verdict = check(row, turn, today=date.today())
        verdicts.append(verdict)
        if on_row is not None:
            on_row(verdict)
    return verdicts


def everyday(
    data: Annotated[
        Path | None, typer.Option(help="JSON lines {id, category, split, prompt, ...}")
    ] = None,
    split: Annotated[str, typer.Option(help="tuning, held_out or all")] = "held_out",
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N rows")] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="one JSON line per row, then one with the totals")
    ] = False,
    agent: Annotated[str | None, typer.Option(help="the configured agent to run")] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads per local model (default: configured)")
    ] = None,
) -> None:
    """Check that the agent answers everyday requests: no step stops, empty or runaway replies.

    Ends with one line of key=value pairs.
    """
    if split not in (*SPLITS, "all"):
        raise typer.BadParameter(f"{split!r}: use tuning, held_out or all", param_hint="--split")
    try:
        rows = load_rows(data or default_prompts())
    except (OSError, EverydayError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None
    rows = [r for r in rows if split in ("all", r.split)][:limit]
    settings = load_settings()
    name = agent or settings.agents[0].name
    try:
        config = settings.agent(name)
    except KeyError:
        raise typer.BadParameter(f"no agent named {name!r}", param_hint="--agent") from None

    def show(verdict: Verdict) -> None:
        if json_lines:
            typer.echo(json.dumps(verdict.as_json(), ensure_ascii=False))
        elif not verdict.passed:
            typer.echo(f"FAIL {verdict.row.id}: {'; '.join(verdict.failures)}", err=True)

    with scratch_agent(settings, config, threads=threads) as the_agent:
        verdicts = run_rows(the_agent, rows, show)
    figures = summary(verdicts)
    if json_lines:
        typer.echo(json.dumps({"totals": figures}))
    typer.echo(_key_values({"split": split, "models": "+".join(config.models), **figures}))


def _key_values(figures: dict[str, Any]) -> str:
    flat = {k: v for k, v in figures.items() if k != "categories"}
    flat.update({f"pass_{c}": v for c, v in figures.get("categories", {}).items()})
    return " ".join(f"{k}={v}" for k, v in flat.items())
