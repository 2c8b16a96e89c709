"""`milliwatt report`: one page of the console's figures, as HTML (plots inline) or PNG.

Read from the request ledger (<data_dir>/requests.db) of a server that ran with
telemetry on; the plots are drawn with matplotlib, off-screen.
"""

from __future__ import annotations

import base64
import html
import io
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from milliwatt.telemetry.store import FILE_NAME, RequestStore
from milliwatt.telemetry.summary import summarize, timeseries

LANE_COLORS = {"tool": "#2f9e6f", "refused": "#d9480f", "error": "#e8a317", "cancelled": "#868e96"}
MODEL_COLORS = ("#1c7ed6", "#7048e8", "#c2255c", "#0c8599")


def build_report(data_dir: Path, since_seconds: float, out: Path) -> dict[str, Any]:
    """Write the report to `out` (.html or .png); returns the summary it shows."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".png"):
        raise ValueError(f"--out {out}: the report is written as .html or .png")
    path = Path(data_dir) / FILE_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no request ledger at {path}: run `milliwatt serve` (telemetry on) first"
        )
    store = RequestStore(path)
    try:
        until = time.time()
        since = until - since_seconds
        records = store.since(since)
    finally:
        store.close()
    summary = summarize(records, since=since, until=until)
    step = max(60.0, since_seconds / 48)
    series = timeseries(records, since=since, until=until, step=step)
    png = _figure(summary, series)
    if suffix == ".png":
        out.write_bytes(png)
    else:
        out.write_text(_html(summary, png), encoding="utf-8")
    return summary


def _figure(summary: dict[str, Any], series: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    times = [datetime.fromtimestamp(t, UTC) for t in series["t"]]
    lanes = series["lanes"]
    models = [lane for lane in lanes if lane not in LANE_COLORS]
    colors = [LANE_COLORS.get(lane) or MODEL_COLORS[models.index(lane) % 4] for lane in lanes]
    mix = axes[0][0]
    bottom = [0] * len(times)
    for (lane, counts), color in zip(lanes.items(), colors, strict=True):
        width = series["step"] / 86400  # matplotlib dates are in days
        mix.bar(times, counts, width, bottom=bottom, align="edge", color=color, label=lane)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    if lanes:
        mix.legend(loc="upper left", fontsize=8)
    mix.set_title("Route mix (requests per interval)")
    cost = axes[0][1]
    cost.step(times, series["tokens"], where="post", color="#1c7ed6", label="tokens")
    cost.set_ylabel("tokens")
    joules = cost.twinx()
    joules.step(times, series["joules_est"], where="post", color="#2f9e6f", label="joules")
    joules.set_ylabel("joules (estimated)")
    cost.set_title("Tokens and estimated joules")
    latency = axes[1][0]
    names = list(summary["latency_ms"])
    for offset, q in enumerate(("p50", "p90", "p99")):
        values = [summary["latency_ms"][n][q] or 0 for n in names]
        latency.bar([i + offset * 0.27 for i in range(len(names))], values, 0.27, label=q)
    latency.set_xticks([i + 0.27 for i in range(len(names))], names, fontsize=8)
    latency.set_yscale("log")
    latency.set_title("Latency by route (ms, log scale)")
    latency.legend(fontsize=8)
    blocks = axes[1][1]
    families = summary["waf"]["families"]
    denials = {f"denied: {k}": v for k, v in summary["denials"].items() if k != "waf"}
    labels = [*families, *denials]
    blocks.barh(labels, [*families.values(), *denials.values()], color="#d9480f")
    blocks.set_title("WAF blocks by rule family, and denials")
    for axis in (mix, cost):
        axis.tick_params(axis="x", labelsize=8, rotation=20)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def _html(summary: dict[str, Any], png: bytes) -> str:
    saved = summary["saved"]
    rows = [
        ("requests", summary["requests"]),
        *((f"route {k}", v) for k, v in summary["routes"].items()),
        ("model tokens", summary["tokens"]["total"]),
        ("estimated joules", summary["joules_est"]),
        ("joules saved vs the smallest model alone (est.)", saved["joules_est"]),
        ("tokens saved vs the smallest model alone", saved["tokens"]),
        ("WAF blocks", summary["waf"]["blocks"]),
        *((f"denials: {k}", v) for k, v in summary["denials"].items()),
    ]
    table = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows
    )
    window = summary["window"]
    span = (
        f"{datetime.fromtimestamp(window['since'], UTC):%Y-%m-%d %H:%M} to "
        f"{datetime.fromtimestamp(window['until'], UTC):%Y-%m-%d %H:%M} UTC"
    )
    image = base64.b64encode(png).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>milliwatt report</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}
table{{border-collapse:collapse}}td{{padding:4px 12px;border-bottom:1px solid #ddd}}
td+td{{text-align:right;font-variant-numeric:tabular-nums}}img{{max-width:100%}}</style></head>
<body><h1>milliwatt report</h1><p>{span}</p><table>{table}</table>
<img alt="route mix, cost, latency and blocks" src="data:image/png;base64,{image}">
</body></html>
"""


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)
