"""`milliwatt ingest` and `milliwatt knowledge ...` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from milliwatt.knowledge.cli import ingest, knowledge_app
from milliwatt.models.embeddings import Embedder


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> typer.Typer:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MILLIWATT_CONFIG", raising=False)
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(tmp_path / "data"))
    app = typer.Typer()
    app.command()(ingest)
    app.add_typer(knowledge_app, name="knowledge")
    return app


def test_ingest_then_search(cli: typer.Typer, docs: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["ingest", str(docs), "--collection", "manuals"])
    assert first.exit_code == 0, first.output
    assert "default/milliwatt/manuals: 3 added, 0 replaced, 0 unchanged" in first.stdout
    second = runner.invoke(cli, ["ingest", str(docs), "-c", "manuals"])
    assert "0 added, 0 replaced, 3 unchanged" in second.stdout

    found = runner.invoke(cli, ["knowledge", "search", "oil the chain", "--json", "-k", "2"])
    assert found.exit_code == 0, found.output
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert len(rows) == 2
    assert rows[0]["heading"] == "Bicycle care > Chain"
    assert rows[0]["source"].endswith("bicycle.html")

    text = runner.invoke(cli, ["knowledge", "search", "descale", "-c", "manuals"])
    assert "1. " in text.stdout and "kettle.txt" in text.stdout and "vinegar" in text.stdout

    listed = runner.invoke(cli, ["knowledge", "list"])
    assert "manuals" in listed.stdout and "3" in listed.stdout

    dropped = runner.invoke(cli, ["knowledge", "drop", "manuals"])
    assert dropped.exit_code == 0 and "dropped default/milliwatt/manuals" in dropped.stdout


def test_failures_say_what_and_change_nothing(cli: typer.Typer, docs: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(docs / "widget.md")]).exit_code == 0
    (docs / "broken.pdf").write_bytes(b"garbage")
    failed = runner.invoke(cli, ["ingest", str(docs)])
    assert failed.exit_code == 1
    assert "broken.pdf: not a readable PDF" in failed.stderr
    assert "nothing was changed" in failed.stderr
    listed = runner.invoke(cli, ["knowledge", "list"])
    assert "│ default    │ 1 " in listed.stdout  # still just the one document

    bad_name = runner.invoke(cli, ["ingest", str(docs), "-c", "bad name"])
    assert bad_name.exit_code == 2 and "invalid collection name" in bad_name.stderr
    missing = runner.invoke(cli, ["knowledge", "search", "x", "-c", "nope"])
    assert missing.exit_code == 2 and "no collection default/milliwatt/nope" in missing.stderr
    blocked = runner.invoke(cli, ["ingest", "http://127.0.0.1:9/doc.html"])
    assert blocked.exit_code == 1 and "is loopback" in blocked.stderr
