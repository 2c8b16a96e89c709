"""`milliwatt shield scan`: score text for prompt injection, one text or a JSON-lines file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from milliwatt.shield.firewall import InjectionDetector, default_detector


def scan(
    text: Annotated[str | None, typer.Argument(help="the text to score")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help='JSON lines of {"id", "text"}')
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines out")] = False,
) -> None:
    """Score text for prompt injection: a verdict and a score in [0, 1] per text."""
    if (text is None) == (file is None):
        raise typer.BadParameter("give either TEXT or --file F.jsonl, not both")
    detector = default_detector()
    items = [("text", text)] if text is not None else list(_read(file))  # type: ignore[arg-type]
    started = time.perf_counter()
    rows = [_verdict(detector, item_id, body) for item_id, body in items]
    elapsed_ms = (time.perf_counter() - started) * 1000
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            typer.echo(f"{row['verdict']:9} {row['score']:.3f}  {row['id']}")
    if file is not None:
        flagged = sum(row["verdict"] == "injection" for row in rows)
        totals = {
            "texts": len(rows),
            "injection": flagged,
            "benign": len(rows) - flagged,
            "threshold": round(detector.threshold, 4),
            "ms_per_text": round(elapsed_ms / max(len(rows), 1), 3),
        }
        typer.echo(json.dumps({"totals": totals}) if as_json else f"totals: {totals}")


def _verdict(detector: InjectionDetector, item_id: Any, text: str) -> dict[str, Any]:
    score = detector.score(text)
    verdict = "injection" if score >= detector.threshold else "benign"
    return {"id": item_id, "score": round(score, 4), "verdict": verdict}


def _read(path: Path) -> list[tuple[Any, str]]:
    items = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f'{path}:{number}: expected {{"id", "text"}} with a string text')
            items.append((row.get("id", number), row["text"]))
    return items
