"""`milliwatt report`: a one-page summary with plots, as HTML or PNG, from the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from milliwatt.telemetry.records import RequestRecord
from milliwatt.telemetry.store import RequestStore


def ledger(data_dir: Path) -> None:
    store = RequestStore.in_data_dir(data_dir)
    now = time.time()
    rows = [
        RequestRecord("a", now - 60, "POST", "/v1/chat/completions", 200, 2.0, "tool",
                      joules_est=0.01),
        RequestRecord("b", now - 30, "POST", "/v1/chat/completions", 200, 800.0, "model",
                      model="smollm2-135m", tier=0, stop="answer", prompt_tokens=90,
                      completion_tokens=10, joules_est=3.0),
        RequestRecord("c", now - 20, "POST", "/v1/chat/completions", 403, 5.0, "refused",
                      waf_blocked=True, waf_rules=["942100", "949110"], denials=["waf"]),
        RequestRecord("old", now - 3 * 86400, "POST", "/v1/chat/completions", 200, 2.0, "tool"),
    ]  # fmt: skip
    for row in rows:
        store.add(row)
    store.close()


def report(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MILLIWATT_CONFIG"}
    env["MILLIWATT_DATA_DIR"] = str(data_dir)
    command = [sys.executable, "-m", "milliwatt.cli", "report", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=data_dir, timeout=120
    )


def test_html_and_png_reports(tmp_path: Path) -> None:
    ledger(tmp_path)
    html = report(tmp_path, "--since", "24h", "--out", str(tmp_path / "r.html"))
    assert html.returncode == 0, html.stderr
    assert "3 requests in the last 24h (tool 1, model 1, refused 1)" in html.stdout
    page = (tmp_path / "r.html").read_text()
    assert "<td>requests</td><td>3</td>" in page and "data:image/png;base64," in page
    assert "<td>WAF blocks</td><td>1</td>" in page
    png = report(tmp_path, "--since", "7d", "--out", str(tmp_path / "r.png"))
    assert png.returncode == 0, png.stderr
    assert "4 requests" in png.stdout
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_errors_name_what_is_wrong(tmp_path: Path) -> None:
    missing = report(tmp_path, "--out", str(tmp_path / "r.html"))
    assert missing.returncode == 1 and "no request ledger" in missing.stderr
    ledger(tmp_path)
    bad_span = report(tmp_path, "--since", "yesterday")
    assert bad_span.returncode == 1 and "invalid time span 'yesterday'" in bad_span.stderr
    bad_out = report(tmp_path, "--out", "r.pdf")
    assert bad_out.returncode == 1 and ".html or .png" in bad_out.stderr
    assert not (tmp_path / "r.pdf").exists()
