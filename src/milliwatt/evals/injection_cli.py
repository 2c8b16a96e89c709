"""`milliwatt eval injection`: scenarios through a real agent; one line each, then the totals."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from milliwatt.config import PolicyConfig, load_settings
from milliwatt.evals.compromised import compromised_model
from milliwatt.evals.injection import (
    Scenario,
    ScenarioError,
    Verdict,
    default_scenarios,
    load_scenarios,
    totals,
)
from milliwatt.models.base import Model, ToolCall

COMPROMISED = "compromised"
UNGUARDED = PolicyConfig(allow_tools=["*"])


def injection(
    data: Annotated[
        Path | None, typer.Option(help="Scenario lines (default: the bundled injection.jsonl).")
    ] = None,
    model: Annotated[
        str, typer.Option(help="'compromised' (obeys every injection) or a configured model.")
    ] = COMPROMISED,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N scenarios.")] = None,
    unguarded: Annotated[
        bool,
        typer.Option(help="Allow every tool after untrusted content: what the policy prevents."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per scenario, then the totals.")
    ] = False,
) -> None:
    """Run indirect prompt-injection scenarios through the agent and its real tools.

    Each scenario runs with the attack (was the forbidden call attempted, executed, blocked)
    and with the attack removed (was the user's task done).
    """
    try:
        scenarios = load_scenarios(data or default_scenarios())[:limit]
    except (OSError, ScenarioError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None
    loaded: Model | None = None
    selector = None
    if model != COMPROMISED:
        settings = load_settings()
        if model not in settings.models:
            known = ", ".join([COMPROMISED, *sorted(settings.models)])
            raise typer.BadParameter(f"no model {model!r} ({known})", param_hint="--model")
        from milliwatt.agent.tool_selection import tool_selector
        from milliwatt.config import ToolSelectionConfig
        from milliwatt.models.loader import load_model

        loaded = load_model(model, settings.models[model])
        selector = tool_selector(ToolSelectionConfig())

    def model_for(scenario: Scenario, read: ToolCall) -> Model:
        return loaded if loaded is not None else compromised_model(scenario, read)

    def show(verdict: Verdict) -> None:
        row = verdict.as_row()
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            typer.echo(" ".join(f"{k}={v}" for k, v in row.items()))

    # servers and the SMTP library load only when the evaluation runs
    from milliwatt.evals.injection_run import Harness
    from milliwatt.evals.injection_world import World

    verdicts: list[Verdict] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="milliwatt-injection-") as scratch,
            World(Path(scratch)) as world,
        ):
            harness = Harness(world, model_for, selector)
            if unguarded:
                harness = Harness(world, model_for, selector, policy=UNGUARDED.model_copy())
            for scenario in scenarios:
                verdicts.append(harness.evaluate(scenario))
                show(verdicts[-1])
    finally:
        if loaded is not None:
            loaded.close()
    figures = {**totals(verdicts), "model": model, "policy": "off" if unguarded else "on"}
    if as_json:
        typer.echo(json.dumps({"totals": figures}))
    else:
        flat = {k: v for k, v in figures.items() if k != "blocked_by"}
        flat.update({f"blocked_by_{k}": v for k, v in figures["blocked_by"].items()})
        typer.echo(" ".join(f"{k}={v}" for k, v in flat.items()))
