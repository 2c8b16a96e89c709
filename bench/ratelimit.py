"""Rate limits shared by two `milliwatt serve` processes through Redis, and what access
control costs a request.

    python bench/ratelimit.py [--rpm 60] [--seconds 60] [--rate 40] [--redis redis://...]

1. Two real `milliwatt serve` processes on loopback, one data directory (its key database)
   and one Redis limiter. One key limited to --rpm requests per minute (GCRA, burst 1) sends
   --rate requests a second for --seconds, alternating between the servers; the requests
   are tool-route chat completions (answered without a model). Counted: 200s and 429s per
   server; the goal is rpm (+-1) successes in 60 s across both.
2. In this process: the access middleware (key lookup in SQLite, the audit record, the
   limiter) around an app that answers at once, against the bare app, interleaved; the p50
   of the difference per request, for the in-process limiter and for Redis.

The last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
[models.remote]
backend = "openai"
base_url = "http://127.0.0.1:9/v1"

[[agents]]
name = "milliwatt"
models = ["remote"]

[access]
limiter = "redis"
redis_url = "{redis}"
redis_prefix = "{prefix}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "milliwatt.cli", "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not start")


async def shared_limit(urls: list[str], key: str, seconds: float, rate: float) -> dict[str, Any]:
    body = {"model": "milliwatt", "messages": [{"role": "user", "content": "what is 17 * 23"}]}
    headers = {"Authorization": f"Bearer {key}"}
    counts = {url: {"ok": 0, "429": 0, "other": 0} for url in urls}
    latencies: list[float] = []

    async with httpx.AsyncClient(timeout=30) as client:

        async def one(url: str) -> None:
            started = time.perf_counter()
            response = await client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code == 200:
                counts[url]["ok"] += 1
            elif response.status_code == 429:
                assert "retry-after" in response.headers
                counts[url]["429"] += 1
            else:
                counts[url]["other"] += 1

        tasks = []
        start = time.monotonic()
        i = 0
        while (now := time.monotonic()) < start + seconds:
            tasks.append(asyncio.create_task(one(urls[i % len(urls)])))
            i += 1
            await asyncio.sleep(max(0.0, start + i / rate - now))
        await asyncio.gather(*tasks)
    return {"counts": counts, "sent": i, "p50_ms": statistics.median(latencies) * 1000}


def overhead(limiter_kind: str, redis_url: str, rounds: int) -> float:
    """p50 of (access middleware + app) - (bare app), in ms, interleaved."""
    from milliwatt.access.keys import KeyStore
    from milliwatt.access.limits import Limiter, Limits, MemoryLimiter
    from milliwatt.access.quota import Quota
    from milliwatt.gateway.auth import AccessMiddleware
    from milliwatt.shield.audit_trail import AuditTrail

    folder = Path(tempfile.mkdtemp(prefix="mw-overhead-"))
    keys = KeyStore(folder)
    key, _ = keys.create("acme", limits=Limits(rpm=10**9, burst=10**6, concurrent=10**6))
    limiter: Limiter
    if limiter_kind == "redis":
        from milliwatt.access.redis_limiter import RedisLimiter

        limiter = RedisLimiter(redis_url, f"mwbench:{uuid.uuid4().hex}:")
    else:
        limiter = MemoryLimiter()
    trail = AuditTrail(folder / "trail.jsonl")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guarded = AccessMiddleware(app, keys, Quota(limiter, trail.record), trail)
    scope = {
        "type": "http", "method": "GET", "path": "/v1/models", "client": ("127.0.0.1", 5000),
        "headers": [(b"authorization", f"Bearer {key}".encode())],
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    async def measure() -> list[float]:
        differences = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            await app(dict(scope), receive, send)
            t1 = time.perf_counter()
            await guarded(dict(scope), receive, send)
            t2 = time.perf_counter()
            differences.append((t2 - t1) - (t1 - t0))
        return differences

    differences = asyncio.run(measure())
    limiter.close()
    return statistics.median(differences[rounds // 10 :]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpm", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second sent")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()

    import redis

    redis.Redis.from_url(args.redis).ping()  # fail now, clearly, without a Redis

    from milliwatt.access.keys import KeyStore
    from milliwatt.access.limits import Limits

    workdir = Path(tempfile.mkdtemp(prefix="mw-ratelimit-"))
    prefix = f"mwbench:{uuid.uuid4().hex}:"
    (workdir / "milliwatt.toml").write_text(CONFIG.format(redis=args.redis, prefix=prefix))
    env = {
        **os.environ,
        "MILLIWATT_DATA_DIR": str(workdir / "data"),
        "MILLIWATT_CONFIG": str(workdir / "milliwatt.toml"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    (workdir / "data").mkdir(mode=0o700)
    key, _ = KeyStore(workdir / "data").create("bench", limits=Limits(rpm=args.rpm))
    servers = [start_server(workdir, env) for _ in range(2)]
    try:
        urls = [url for _, url in servers]
        result = asyncio.run(shared_limit(urls, key, args.seconds, args.rate))
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(10)
    ok = sum(c["ok"] for c in result["counts"].values())
    refused = sum(c["429"] for c in result["counts"].values())
    other = sum(c["other"] for c in result["counts"].values())
    expected = args.rpm * args.seconds / 60
    for url, c in result["counts"].items():
        print(f"{url}: {c['ok']} ok, {c['429']} refused (429), {c['other']} other")
    print(
        f"sent {result['sent']} in {args.seconds:.0f} s at {args.rate:g}/s; {ok} succeeded "
        f"(limit {args.rpm}/min -> {expected:.0f}), {refused} got 429; "
        f"p50 latency {result['p50_ms']:.2f} ms"
    )
    memory_ms = overhead("memory", args.redis, args.rounds)
    redis_ms = overhead("redis", args.redis, args.rounds)
    print(
        f"access overhead p50: {memory_ms:.3f} ms (in-process limiter), {redis_ms:.3f} ms (Redis)"
    )
    print(
        f"rpm={args.rpm} seconds={args.seconds:g} servers=2 sent={result['sent']} ok={ok} "
        f"refused_429={refused} other={other} ok_minus_expected={ok - expected:+.0f} "
        f"overhead_p50_ms_memory={memory_ms:.3f} overhead_p50_ms_redis={redis_ms:.3f}"
    )


if __name__ == "__main__":
    main()
