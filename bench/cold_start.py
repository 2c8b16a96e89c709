"""Cold start: seconds from launching `milliwatt serve` to its first answered requests.

    python bench/cold_start.py [--runs 3] [--crs DIR]

Each run starts a fresh process with a fresh data directory and the default configuration
(bundled model, built-in tools, WAF on), then sends, as soon as the port answers, one
request a tool answers and one the model answers (16 tokens). Goal: <= 5 s to the first
answer after install. With --crs the WAF loads the OWASP CRS from DIR (its load is part
of start-up).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ask(url: str, text: str) -> dict:  # type: ignore[type-arg]
    body = {"model": "milliwatt", "messages": [{"role": "user", "content": text}]}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    reply.raise_for_status()
    return reply.json()


def one_run(crs: Path | None) -> tuple[float, float, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as workdir:
        config = Path(workdir) / "milliwatt.toml"
        config.write_text("[models.smollm2-135m]\nmax_tokens = 16\n")
        env = {**os.environ, "MILLIWATT_DATA_DIR": workdir, "MILLIWATT_CONFIG": str(config)}
        if crs is not None:
            env["MILLIWATT_CRS_DIR"] = str(crs)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "milliwatt.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    httpx.get(f"{url}/healthz", timeout=0.5)
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.perf_counter() - started > 120:
                        raise RuntimeError("milliwatt serve did not start") from None
                    time.sleep(0.02)
            ready = time.perf_counter() - started
            assert ask(url, "what is 234 * 567")["milliwatt"]["route"] == "tool"
            tool = time.perf_counter() - started
            assert ask(url, "Say hello.")["milliwatt"]["route"] == "model"
            model = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(10)
    return ready, tool, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--crs", type=Path, default=None)
    args = parser.parse_args()
    runs = [one_run(args.crs) for _ in range(args.runs)]
    ready, tool, model = (statistics.median(col) for col in zip(*runs, strict=True))
    for i, (r, t, m) in enumerate(runs, 1):
        print(
            f"run {i}: ready {r:.2f} s, first tool answer {t:.2f} s, first model answer {m:.2f} s"
        )
    print(
        f"median: ready {ready:.2f} s, tool answer {tool:.2f} s, "
        f"model answer {model:.2f} s (goal <= 5 s)"
    )
    print(
        f"runs={args.runs} crs={'yes' if args.crs else 'baseline'} ready_s={ready:.2f} "
        f"first_tool_answer_s={tool:.2f} first_model_answer_s={model:.2f}"
    )


if __name__ == "__main__":
    main()
