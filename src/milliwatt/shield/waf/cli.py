"""`milliwatt waf ...`: run CRS regression tests, check a rule set."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="waf", help="The web application firewall (OWASP CRS engine).", no_args_is_help=True
)


@app.command()
def ftw(
    paths: Annotated[list[Path], typer.Argument(help="go-ftw YAML files or folders of them")],
    rules: Annotated[
        Path | None, typer.Option("--rules", help="CRS folder (default: as the WAF finds it)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON report")] = False,
) -> None:
    """Run CRS regression tests in process; ends with `N passed, M failed`."""
    from milliwatt.shield.waf import ftw as runner

    started = time.perf_counter()
    report = runner.run(paths, rules)
    elapsed = time.perf_counter() - started
    failures = report.failures_by_rule()
    if as_json:
        out = {
            "passed": report.passed,
            "failed": report.failed,
            "skipped": [
                {"rule": o.rule_id, "test": o.test_id, "reason": o.skipped} for o in report.skipped
            ],
            "empty_files": [str(path) for path in report.empty_files],
            "failures": {
                str(rule): [
                    {"test": o.test_id, "title": o.title, "file": o.file, "problems": o.problems}
                    for o in items
                ]
                for rule, items in failures.items()
            },
            "seconds": round(elapsed, 1),
        }
        typer.echo(json.dumps(out, indent=2))
    else:
        for path in report.empty_files:
            typer.echo(f"skipped {path}: no YAML document in it")
        for rule, items in failures.items():
            typer.echo(f"rule {rule}: {len(items)} failed")
            for o in items:
                typer.echo(f"  test {o.test_id} ({o.title}): {'; '.join(o.problems)}")
        for o in report.skipped:
            typer.echo(f"skipped {o.rule_id}-{o.test_id}: {o.skipped}")
        typer.echo(f"ran in {elapsed:.1f}s")
    typer.echo(report.summary())
    raise typer.Exit(1 if report.failed else 0)


@app.command()
def check(
    rules: Annotated[
        Path | None, typer.Option("--rules", help="CRS folder (default: as the WAF finds it)")
    ] = None,
) -> None:
    """Load the rules and say what was loaded (errors name file and line)."""
    from milliwatt.shield.waf import WAF, RuleLoadError

    try:
        waf = WAF.load(rules)
    except (RuleLoadError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{waf.source}: {waf.rule_count} rules, regex engines {waf.regex_engines}")
