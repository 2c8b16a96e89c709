"""`milliwatt eval ...`: measure milliwatt on public benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from milliwatt.config import BUNDLED_MODEL, load_settings
from milliwatt.evals.bfcl import BfclResult, load_category, run_bfcl
from milliwatt.evals.bfcl_calls import MODES, Mode, make_call_fn
from milliwatt.evals.bfcl_split import SPLITS, Split, hash_sample, in_split
from milliwatt.evals.everyday_cli import everyday
from milliwatt.evals.frugal_cli import frugal
from milliwatt.evals.injection_cli import injection

app = typer.Typer(no_args_is_help=True)
app.command()(frugal)
app.command()(everyday)
app.command()(injection)


@app.callback()
def evals() -> None:
    """Evaluate milliwatt on public benchmarks."""


@app.command()
def bfcl(
    data: Annotated[
        Path, typer.Option(help="Folder with BFCL_v4_<category>.json and possible_answer/.")
    ],
    category: Annotated[str, typer.Option(help="e.g. simple_python, multiple, irrelevance.")],
    mode: Annotated[
        str,
        typer.Option(
            help="raw: functions in the prompt, free text; plain: every function under one "
            "calls-or-none grammar; pipeline: milliwatt's (relevance, then the grammar)."
        ),
    ] = "pipeline",
    split: Annotated[
        str,
        typer.Option(
            help="heldout or tuning: the half of each category chosen by a hash of the "
            "question id (docs/evals.md); all: every question."
        ),
    ] = "heldout",
    sample: Annotated[
        int | None,
        typer.Option(min=1, help="A stable sample of N questions of the split (by hash)."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads for a local model (default: configured)")
    ] = None,
    model: Annotated[str, typer.Option(help="A model named in configuration.")] = BUNDLED_MODEL,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per question, then the totals.")
    ] = False,
) -> None:
    """Score function calls on a BFCL category with BFCL's AST rules."""
    if mode not in MODES:
        raise typer.BadParameter(f"{mode!r}: use raw, plain or pipeline", param_hint="--mode")
    if split not in SPLITS:
        raise typer.BadParameter(f"{split!r}: use heldout, tuning or all", param_hint="--split")
    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a folder", param_hint="--data")
    try:
        cases = load_category(data, category)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--category") from None
    chosen: Split = "tuning" if split == "tuning" else "all" if split == "all" else "heldout"
    cases = hash_sample(in_split(cases, chosen), sample)
    cases = cases[:limit] if limit else cases
    settings = load_settings()
    if model not in settings.models:
        known = ", ".join(sorted(settings.models))
        raise typer.BadParameter(f"no model {model!r} in configuration ({known})")
    from milliwatt.models.loader import load_model

    config = settings.models[model]
    if threads is not None:
        config = config.model_copy(update={"threads": threads})
    loaded = load_model(model, config)
    mode_name: Mode = "raw" if mode == "raw" else "plain" if mode == "plain" else "pipeline"

    def show(result: BfclResult) -> None:
        if as_json:
            typer.echo(json.dumps(result.as_row(), ensure_ascii=False, default=str))
        elif not result.verdict.correct:
            typer.echo(f"wrong {result.id}: {result.verdict.error}", err=True)

    try:
        report = run_bfcl(cases, make_call_fn(mode_name, loaded), on_result=show)
    finally:
        loaded.close()
    totals = {**report.totals(), "mode": mode_name, "model": model, "split": chosen}
    if as_json:
        typer.echo(json.dumps({"totals": totals}))
    else:
        typer.echo(
            f"{category} {chosen} ({mode_name}, {model}): "
            f"{totals['correct']}/{totals['total']} correct "
            f"= {100 * report.accuracy:.1f}%, {totals['tokens']} tokens, {totals['seconds']} s"
        )
