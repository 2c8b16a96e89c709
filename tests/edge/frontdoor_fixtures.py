"""Real servers for the front door's tests: scripted PoPs in their own processes (so that a
test can SIGKILL one), and the front door itself, in a thread or as `milliwatt frontdoor`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from tests.conftest import free_port, start_logged, wait_for_http

from milliwatt.edge.frontdoor import FrontDoor
from milliwatt.edge.pops import parse_config

SCRIPTED_POP = Path(__file__).with_name("scripted_pop.py")
FAST_PROBES = """
[frontdoor]
probe_interval_seconds = 0.2
probe_timeout_seconds = 1.0
unhealthy_after = 2
healthy_after = 2
"""


class PopProcess:
    """One scripted replica: `python tests/edge/scripted_pop.py` on a loopback port."""

    def __init__(
        self, workdir: Path, name: str, *, models: str = "milliwatt", delay_ms: float = 0,
        store: Path | None = None, pace_ms: float = 20,
    ) -> None:  # fmt: skip
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, str(SCRIPTED_POP), "--port", str(self.port), "--name", name,
                "--models", models, "--delay-ms", str(delay_ms),
                "--pace-ms", str(pace_ms)]  # fmt: skip
        if store is not None:
            args += ["--store", str(store)]
        self.log = workdir / f"pop-{name}-{self.port}.log"
        self.proc = start_logged(args, self.log)
        wait_for_http(f"{self.url}/healthz", self.proc, self.log, timeout=60)

    def control(self, **changes: Any) -> None:
        httpx.post(f"{self.url}/control", json=changes, timeout=10).raise_for_status()

    def kill(self) -> None:
        """SIGKILL: no goodbye, its sockets closed by the kernel."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing answers (a hung host)."""
        os.kill(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def pops(workdir: Path) -> Iterator[Any]:
    """A factory of PopProcess; all of them stopped at the end."""
    started: list[PopProcess] = []

    def make(name: str, **options: Any) -> PopProcess:
        pop = PopProcess(workdir, name, **options)
        started.append(pop)
        return pop

    try:
        yield make
    finally:
        for pop in started:
            pop.stop()


def pops_toml(replicas: dict[str, list[str]], settings: str = FAST_PROBES) -> str:
    lines = [settings]
    for name, urls in replicas.items():
        lines += [f"[pops.{name}]", "replicas = [" + ", ".join(f'"{u}"' for u in urls) + "]"]
    return "\n".join(lines) + "\n"


@contextmanager
def frontdoor_thread(config_text: str) -> Iterator[tuple[str, FrontDoor]]:
    """The front door on a loopback port, in this process: its state can be inspected."""
    door = FrontDoor(parse_config(config_text))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(door.app(), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the front door did not start")
        time.sleep(0.02)
    try:
        yield url, door
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def frontdoor_process(workdir: Path, config_text: str) -> Iterator[str]:
    """`milliwatt frontdoor --pops FILE` as its own process."""
    config = workdir / "pops.toml"
    config.write_text(config_text)
    port = free_port()
    log = workdir / "frontdoor.log"
    args = [sys.executable, "-m", "milliwatt.cli", "frontdoor", "--pops", str(config),
            "--port", str(port)]  # fmt: skip
    proc = start_logged(args, log, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", proc, log, timeout=60)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(condition: Any, timeout: float = 10.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{message} not met within {timeout} s")


def chat(model: str = "milliwatt", content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}
