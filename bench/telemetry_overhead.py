"""What telemetry costs the tool route: its p50 with telemetry on and off, side by side.

    python bench/telemetry_overhead.py [--requests 400]

Two `milliwatt serve` processes of this checkout on loopback, the same configuration but
for [telemetry]: one with it off, one with all of it on (Prometheus metrics, the request
ledger in SQLite, a JSON log line per request, and OpenTelemetry spans exported over
OTLP/HTTP to a collector on loopback). Requests go to the two in turn, one at a time, over
kept-alive connections, so both see the same machine load; each is a tool-route question
the router answers ("what is 17 + 25"). The cost is the median of the paired differences
(each round's "on" time minus its "off" time: drift in the machine's load cancels out) as
a share of the p50 without telemetry; the plain difference of the two p50s is printed
too. Goal: at most 5%. The last line holds the headline figures.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
GOAL_PCT = 5.0
CONFIG = """
[[agents]]
name = "milliwatt"
tools = ["math.*"]
tool_selection.enabled = false

[telemetry]
"""


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts every export (what a collector answers)."""

    batches = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).batches += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(workdir: Path, telemetry: str) -> tuple[subprocess.Popen[bytes], str]:
    workdir.mkdir(parents=True)
    (workdir / "milliwatt.toml").write_text(CONFIG + telemetry)
    port = free_port()
    env = {
        **os.environ,
        "MILLIWATT_DATA_DIR": str(workdir / "data"),
        "MILLIWATT_CONFIG": str(workdir / "milliwatt.toml"),
        "PYTHONPATH": str(REPO / "src"),
    }
    with (workdir / "serve.log").open("wb") as log:  # the JSON log lines land here
        proc = subprocess.Popen(
            [sys.executable, "-m", "milliwatt.cli", "serve", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "serve.log").read_text()[-2000:])
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not start")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600, help="timed requests per server")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    body = {"model": "milliwatt", "messages": [{"role": "user", "content": "what is 17 + 25"}]}
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="milliwatt-telemetry-") as tmp:
        try:
            off_proc, off_url = start(Path(tmp) / "off", "enabled = false\n")
            on_proc, on_url = start(Path(tmp) / "on", f'otlp_endpoint = "{endpoint}"\n')
            procs += [off_proc, on_proc]
            times: dict[str, list[float]] = {"off": [], "on": []}
            with httpx.Client(base_url=off_url) as off, httpx.Client(base_url=on_url) as on:
                clients = {"off": off, "on": on}
                for i in range(args.warmup + args.requests):
                    order = ("off", "on") if i % 2 == 0 else ("on", "off")
                    for name in order:
                        started = time.perf_counter()
                        reply = clients[name].post("/v1/chat/completions", json=body)
                        elapsed = (time.perf_counter() - started) * 1000
                        assert reply.json()["milliwatt"]["route"] == "tool", reply.text
                        if i >= args.warmup:
                            times[name].append(elapsed)
            logged = (Path(tmp) / "on" / "serve.log").read_text().count('"milliwatt.requests"')
            stored = httpx.get(f"{on_url}/console/api/summary?window=1h").json()["requests"]
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(15)
    collector.shutdown()
    p50 = {k: statistics.median(v) for k, v in times.items()}
    p90 = {k: sorted(v)[int(0.9 * len(v))] for k, v in times.items()}
    paired = statistics.median(on - off for on, off in zip(times["on"], times["off"], strict=True))
    overhead = paired / p50["off"] * 100
    p50_difference = (p50["on"] - p50["off"]) / p50["off"] * 100
    for name in ("off", "on"):
        print(f"telemetry {name:3}: p50 {p50[name]:.3f} ms  p90 {p90[name]:.3f} ms")
    print(f"telemetry on: {stored} requests in the ledger, {logged} log lines, "
          f"{_Collector.batches} OTLP exports")  # fmt: skip
    met = overhead <= GOAL_PCT
    print(
        f"requests={args.requests} p50_off_ms={p50['off']:.3f} p50_on_ms={p50['on']:.3f} "
        f"paired_median_ms={paired:.3f} overhead_pct={overhead:.2f} "
        f"p50_difference_pct={p50_difference:.2f} "
        f"p90_off_ms={p90['off']:.3f} p90_on_ms={p90['on']:.3f} "
        f"goal_pct={GOAL_PCT} goal_met={str(met).lower()}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
