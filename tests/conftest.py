"""Fixtures shared by the whole suite: the test corpora, the bundled model, a running server."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"


@pytest.fixture(scope="session")
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"test corpora not found at {CORPORA}")
    return CORPORA


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL storage URL into a fresh schema (skips when no server answers)."""
    from tests.storage_backends import fresh_schema

    with fresh_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest) -> str | None:
    """Each backend in turn, as `[storage] url` selects it: None (SQLite) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def bundled_model_path() -> Path:
    from milliwatt.models.loader import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="session")
def bundled_model(bundled_model_path: Path):  # type: ignore[no-untyped-def]
    from milliwatt.models.llamacpp import LlamaCppModel

    # a loaded machine can be slow; the tests check behaviour, not speed
    model = LlamaCppModel(bundled_model_path, name="smollm2-135m", timeout_seconds=900)
    yield model
    model.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def trickled_headers_answer(port: int, start: bytes) -> bytes:
    """Sends `start`, then one header value 1 KB at a time (up to 40 KB, never finished)
    until the server answers; returns the first bytes of its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(start)
        for _ in range(40):
            if select.select([sock], [], [], 0.01)[0]:
                break  # the server has answered
            sock.sendall(b"a" * 1024)
        return sock.recv(65536)


def start_logged(args: list[str], log: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    """Start a server whose output goes to a file (a pipe nobody reads would block it)."""
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]


def wait_for_http(
    url: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 90.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class Server:
    """`milliwatt serve` in a subprocess on a loopback port, with its own data directory."""

    def __init__(self, workdir: Path, config: str = "") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "milliwatt.toml").write_text(config)
        self.env = {
            **os.environ,
            "MILLIWATT_DATA_DIR": str(workdir / "data"),
            "MILLIWATT_CONFIG": str(workdir / "milliwatt.toml"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.log = self.workdir / f"serve-{self.port}.log"
        self.proc = start_logged(
            [sys.executable, "-m", "milliwatt.cli", "serve", "--port", str(self.port)],
            self.log,
            cwd=self.workdir,
            env=self.env,
        )
        wait_for_http(f"{self.url}/healthz", self.proc, self.log)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[type[Server]]:
    started: list[Server] = []

    def make(config: str = "") -> Server:
        server = Server(tmp_path, config)
        started.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in started:
        server.stop()
