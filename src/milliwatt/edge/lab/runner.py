"""A lab run: the namespaces, the PoPs' servers, the delay proxy, the user's loops.

    user ──veth── wan ──veth── edge     (a PoP's server)
                   └───veth── central  (an identical server)

The delay proxy runs in `wan`: the user reaches the edge PoP at wan:8001 and the central
one at wan:8002, each path delayed by half its modelled round trip in each direction. Both
PoPs run the same server with the same configuration; only the path differs. The PoPs stay
up across scenarios; each scenario starts the proxy with its own delays.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

import milliwatt
from milliwatt.edge.lab.agent_loop import LoopTime, Measured, Plan
from milliwatt.edge.lab.namespaces import LabUnavailableError, Topology, unavailable_reason
from milliwatt.edge.lab.results import ScenarioResult, summarise
from milliwatt.edge.lab.scenarios import Scenario

POP_PORT = 8000
PROXY_PORTS = {"edge": 8001, "central": 8002}


@dataclass(frozen=True)
class PopSpec:
    """Where a PoP's server listens, its own directory and the host name users call it by."""

    host: str
    port: int
    workdir: Path
    public_host: str


# a PoP's server: the command and environment that start it for a spec
PopLauncher = Callable[[PopSpec], tuple[list[str], dict[str, str]]]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: this process' milliwatt first on its path."""
    source = str(Path(milliwatt.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def milliwatt_pop(max_tokens: int, threads: int = 1) -> PopLauncher:
    """`milliwatt serve` with the bundled model, the math tools and long keep-alive. No API
    keys: it listens only inside the lab's private namespaces. One llama.cpp thread by
    default: the lab times paths, not the model, and on a busy machine two threads that
    wait for each other at every token made an 8-token call take 0.2 to 13 s (one: 0.15 s)."""

    def launch(spec: PopSpec) -> tuple[list[str], dict[str, str]]:
        config = spec.workdir / "milliwatt.toml"
        config.write_text(
            "\n".join(
                [
                    "[models.smollm2-135m]",
                    f"max_tokens = {max_tokens}",
                    "ignore_eos = true  # every model call makes max_tokens tokens",
                    f"threads = {threads}",
                    "[server]",
                    "keep_alive_seconds = 3600  # one connection per user for the whole run",
                    f'allowed_hosts = ["{spec.public_host}"]',
                    "[[agents]]",
                    'name = "milliwatt"',
                    'tools = ["math.*"]',
                    "",
                ]
            )
        )
        argv = [sys.executable, "-m", "milliwatt.cli", "serve", "--host", spec.host]
        argv += ["--port", str(spec.port), "--no-auth"]
        env = child_env(MILLIWATT_CONFIG=str(config), MILLIWATT_DATA_DIR=str(spec.workdir / "data"))
        return argv, env

    return launch


@contextlib.contextmanager
def started(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """A process with its output in `log`, stopped (TERM, then KILL) when the block ends."""
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


@contextlib.contextmanager
def delay_proxy(
    topology: Topology, routes: list[str], log: Path
) -> Iterator[subprocess.Popen[str]]:
    argv = [sys.executable, "-m", "milliwatt.edge.lab.delay_proxy"]
    argv += [arg for route in routes for arg in ("--route", route)]
    with log.open("w") as errors:
        proc = subprocess.Popen(
            topology.command("wan", argv), env=child_env(), stdout=subprocess.PIPE,
            stderr=errors, text=True,
        )  # fmt: skip
    try:
        assert proc.stdout is not None  # a pipe: asked for above
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            raise LabUnavailableError(f"the delay proxy did not start: {tail(log)}")
        yield proc
    finally:
        stop(proc)


def run_loops(
    topology: Topology, plan: Plan, pops: dict[str, subprocess.Popen[str]], workdir: Path
) -> Measured:
    """The user's loops, run in its namespace; a PoP that dies ends the run with its log."""
    argv = [sys.executable, "-m", "milliwatt.edge.lab.agent_loop", json.dumps(asdict(plan))]
    result, log = workdir / "user.json", workdir / "user.log"
    with result.open("w") as out, log.open("w") as errors:  # files: no pipe to fill up
        proc = subprocess.Popen(
            topology.command("user", argv), env=child_env(), stdout=out, stderr=errors, text=True
        )
    try:
        while proc.poll() is None:
            for role, pop in pops.items():
                if pop.poll() is not None:
                    words = tail(workdir / f"{role}.log")
                    raise LabUnavailableError(f"the {role} PoP exited ({pop.returncode}): {words}")
            time.sleep(0.2)
    finally:
        stop(proc)
    try:
        found = json.loads(result.read_text())
    except json.JSONDecodeError:
        found = {"error": f"exit status {proc.returncode}: {tail(log)}"}
    if proc.returncode != 0 or "error" in found:
        raise LabUnavailableError(f"the user's loops failed: {found.get('error')}")
    return Measured([LoopTime(**loop) for loop in found["loops"]], found["ping_ms"])


def unwind_on_sigterm() -> None:
    """SIGTERM raises SystemExit, as Ctrl-C raises KeyboardInterrupt: the run unwinds,
    its processes stopped and namespaces removed (the main thread only)."""

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)


def run_lab(
    scenarios: Sequence[Scenario],
    steps: Sequence[int],
    *,
    repeats: int = 3,
    max_tokens: int = 4,
    tool: bool = True,
    launcher: PopLauncher | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> list[ScenarioResult]:
    """Each scenario's N-step loops at the edge and at the centre. `launcher` starts a PoP's
    server (default: `milliwatt serve`); LabUnavailableError when this machine cannot, or a
    part of the lab fails (with that part's own words)."""
    reason = unavailable_reason()
    if reason is not None:
        raise LabUnavailableError(reason)
    launch = launcher or milliwatt_pop(max_tokens)
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="mwlab-") as tmp,
        Topology() as topology,
        contextlib.ExitStack() as processes,  # left first: processes end before namespaces
    ):
        workdir = Path(tmp)
        for role in ("user", "wan", "edge", "central"):
            topology.add(role)
        access = topology.link("user", "wan")
        paths = {role: topology.link("wan", role) for role in ("edge", "central")}
        pops = {}
        for role, path in paths.items():
            (workdir / role).mkdir()
            spec = PopSpec(path.b_address, POP_PORT, workdir / role, access.b_address)
            argv, env = launch(spec)
            log = workdir / f"{role}.log"
            pops[role] = processes.enter_context(started(topology.command(role, argv), env, log))
        progress(f"namespaces {topology.run}-*; PoPs starting")
        for scenario in scenarios:
            rtt = {
                "edge": scenario.rtt_ms(scenario.edge),
                "central": scenario.rtt_ms(scenario.central),
            }
            routes = [
                f"listen={access.b_address}:{PROXY_PORTS[role]},"
                f"target={path.b_address}:{POP_PORT},one_way_ms={rtt[role] / 2:.3f}"
                for role, path in paths.items()
            ]
            plan = Plan(
                targets={role: f"http://{access.b_address}:{PROXY_PORTS[role]}" for role in paths},
                steps=list(steps),
                repeats=repeats,
                max_tokens=max_tokens,
                tool=tool,
            )
            progress(scenario.describe())
            with delay_proxy(topology, routes, workdir / "proxy.log"):
                measured = run_loops(topology, plan, pops, workdir)
            results.append(summarise(scenario, measured))
    return results
