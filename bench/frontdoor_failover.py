"""The front door when the nearest PoP dies under load; and what relaying through it costs.

    python bench/frontdoor_failover.py [--clients 8] [--before 2] [--after 5]
        [--near-ms 2] [--far-ms 20] [--overhead-requests 300] [--freeze]

Two scripted PoPs (tests/edge/scripted_pop.py: real uvicorn servers on loopback, each in its
own process, --near-ms and --far-ms of added delay on every request) share one SQLite turn
store, as two `milliwatt serve` PoPs share a data_dir or a Postgres URL. `milliwatt
frontdoor` runs before them as its own process.

Overhead: the same small chat request, one at a time, straight to the near PoP and through
the front door, alternating; p50 of each and their difference.

Failover: --clients users each send chat turns back to back (each held 0.1 s by the PoP, so
turns are in flight when it dies) under their own session. After --before seconds the near
PoP gets SIGKILL (with --freeze: SIGSTOP, a hung host whose kernel still accepts
connections: only the probes' timeouts can tell); the load goes on --after seconds more.
Reported: the time until every user has had a turn acknowledged by the far PoP (time to
move), the failed requests among those sent between the kill and that moment (error rate
during the move), and acknowledged turns lost: 200 answers whose turn the surviving PoP
cannot find in the shared store. With --freeze each PoP keeps its own store (a process
stopped while it holds SQLite's write lock would stall every PoP sharing the file: a shared
file is for PoPs on one machine in tests; across machines the shared Postgres store locks
rows, not the database), and the turns are looked up in both once the frozen PoP resumes.
The last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SCRIPTED_POP = REPO / "tests" / "edge" / "scripted_pop.py"
PROBES = """[frontdoor]
probe_interval_seconds = 0.2
probe_timeout_seconds = 1.0
unhealthy_after = 2
healthy_after = 2
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], log: Path, health: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args[1:4]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{health} did not answer")


@dataclass
class Setup:
    near: str
    far: str
    frontdoor: str
    near_proc: subprocess.Popen[bytes]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    shared: bool = True  # one turn store for both PoPs

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def start_setup(workdir: Path, near_ms: float, far_ms: float, shared: bool = True) -> Setup:
    urls: dict[str, str] = {}
    procs: list[subprocess.Popen[bytes]] = []
    for name, delay in (("near", near_ms), ("far", far_ms)):
        port = free_port()
        urls[name] = f"http://127.0.0.1:{port}"
        args = [sys.executable, str(SCRIPTED_POP), "--port", str(port), "--name", name,
                "--delay-ms", str(delay),
                "--store", str(workdir / ("turns.db" if shared else f"{name}.db"))]  # fmt: skip
        procs.append(start(args, workdir / f"{name}.log", f"{urls[name]}/healthz"))
    config = workdir / "pops.toml"
    pops = "".join(f'[pops.{n}]\nreplicas = ["{u}"]\n' for n, u in urls.items())
    config.write_text(PROBES + pops)
    port = free_port()
    args = [sys.executable, "-m", "milliwatt.cli", "frontdoor", "--pops", str(config),
            "--port", str(port)]  # fmt: skip
    frontdoor = f"http://127.0.0.1:{port}"
    procs.append(start(args, workdir / "frontdoor.log", f"{frontdoor}/healthz"))
    return Setup(urls["near"], urls["far"], frontdoor, procs[0], procs, shared)


def body(content: str, user: str | None = None) -> dict[str, object]:
    extra = {"user": user} if user else {}
    return {"model": "milliwatt", "messages": [{"role": "user", "content": content}], **extra}


async def overhead(setup: Setup, requests: int) -> tuple[float, float]:
    """p50 ms straight to the near PoP and through the front door, alternating."""
    times: dict[str, list[float]] = {setup.near: [], setup.frontdoor: []}
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(requests + 20):
            for base in (setup.near, setup.frontdoor) if i % 2 else (setup.frontdoor, setup.near):
                started = time.perf_counter()
                answer = await client.post(f"{base}/v1/chat/completions", json=body("hi"))
                answer.raise_for_status()
                if i >= 20:  # the first ones warm connections up
                    times[base].append((time.perf_counter() - started) * 1000)
    return statistics.median(times[setup.near]), statistics.median(times[setup.frontdoor])


@dataclass
class Turn:
    user: str
    message: str
    sent: float
    done: float
    status: int
    pop: str


@dataclass
class Failover:
    move_s: float  # kill -> every user acknowledged by the surviving PoP
    sent_during_move: int
    errors_during_move: int
    errors: int
    acknowledged: int
    lost: int
    duplicated: int
    turns: list[Turn]

    @property
    def error_rate(self) -> float:
        return self.errors_during_move / max(1, self.sent_during_move)


async def failover(
    setup: Setup, clients: int, before: float, after: float, freeze: bool = False
) -> Failover:
    turns: list[Turn] = []
    start = time.monotonic()
    killed_at = start + before
    stop_at = killed_at + after

    async def user(name: str, client: httpx.AsyncClient) -> None:
        k = 0
        while time.monotonic() < stop_at:
            message = f"hold 0.1 {name} turn {k}"
            sent = time.monotonic()
            try:
                answer = await client.post(
                    f"{setup.frontdoor}/v1/chat/completions", json=body(message, name)
                )
                status, pop = answer.status_code, answer.headers.get("x-milliwatt-pop", "")
            except httpx.HTTPError:
                status, pop = 0, ""
            turns.append(Turn(name, message, sent, time.monotonic(), status, pop))
            k += 1

    async def killer() -> None:
        await asyncio.sleep(before)
        os.kill(setup.near_proc.pid, signal.SIGSTOP if freeze else signal.SIGKILL)

    names = [f"user-{i}" for i in range(clients)]
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(killer(), *(user(n, client) for n in names))
    if freeze:
        os.kill(setup.near_proc.pid, signal.SIGCONT)
    moved_at = []
    for name in names:
        after_kill = [t.done for t in turns if t.user == name and t.pop == "far" and t.status == 200
                      and t.sent >= killed_at]  # fmt: skip
        moved_at.append(min(after_kill) if after_kill else float("inf"))
    moved = max(moved_at)
    window = [t for t in turns if t.done >= killed_at and t.sent <= moved]
    lost = duplicated = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for name in names:
            messages = []
            for store in [setup.far] if setup.shared else [setup.near, setup.far]:
                stored = (await client.get(f"{store}/v1/sessions/{name}")).json()["turns"]
                messages += [s["message"] for s in stored]
            acknowledged = {t.message for t in turns if t.user == name and t.status == 200}
            lost += len(acknowledged - set(messages))
            duplicated += len(messages) - len(set(messages))
    return Failover(
        move_s=moved - killed_at,
        sent_during_move=len(window),
        errors_during_move=sum(t.status != 200 for t in window),
        errors=sum(t.status != 200 for t in turns),
        acknowledged=sum(t.status == 200 for t in turns),
        lost=lost,
        duplicated=duplicated,
        turns=turns,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--before", type=float, default=2.0)
    parser.add_argument("--after", type=float, default=5.0)
    parser.add_argument("--near-ms", type=float, default=2.0)
    parser.add_argument("--far-ms", type=float, default=20.0)
    parser.add_argument("--overhead-requests", type=int, default=300)
    parser.add_argument("--freeze", action="store_true", help="SIGSTOP instead of SIGKILL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup = start_setup(Path(tmp), args.near_ms, args.far_ms, shared=not args.freeze)
        try:
            direct, through = asyncio.run(overhead(setup, args.overhead_requests))
            print(f"overhead: p50 direct {direct:.2f} ms, through the front door {through:.2f} ms")
            result = asyncio.run(
                failover(setup, args.clients, args.before, args.after, args.freeze)
            )
        finally:
            setup.stop()
    print(
        f"failover: {result.acknowledged} turns acknowledged, {result.errors} failed; "
        f"every user on the far PoP {result.move_s:.2f} s after the kill; "
        f"{result.errors_during_move} of {result.sent_during_move} requests failed meanwhile; "
        f"{result.lost} acknowledged turns lost, {result.duplicated} stored twice"
    )
    print(
        f"signal={'SIGSTOP' if args.freeze else 'SIGKILL'} move_s={result.move_s:.3f} "
        f"error_rate_during_move={result.error_rate:.3f} "
        f"errors_during_move={result.errors_during_move} lost_acknowledged={result.lost} "
        f"overhead_p50_ms={through - direct:.3f} direct_p50_ms={direct:.3f} "
        f"frontdoor_p50_ms={through:.3f}"
    )


if __name__ == "__main__":
    main()
