"""A real Redis server for the limiter tests: the one on 127.0.0.1:6379 when it answers,
else one started here from Debian's `redis-server`; skipped, saying why, only when neither."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import free_port

redis = pytest.importorskip("redis", reason="redis-py is not installed (the test extra has it)")


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    default = "redis://127.0.0.1:6379/0"
    if _answers(default):
        yield default
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "no Redis on 127.0.0.1:6379 and no redis-server to start (apt-get install redis-server)"
        )
    port = free_port()
    folder: Path = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _answers(url):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own: tests never see each other's counters."""
    return f"mwtest:{uuid.uuid4().hex}:"
