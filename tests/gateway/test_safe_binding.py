"""Safe by default: without an API key `serve` answers on loopback only; any other address
needs a key or an explicit --no-auth, which it announces and `doctor` reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port
from tests.gateway.access_server import AccessServer

from milliwatt.access.keys import KeyStore
from milliwatt.access.status import access_report, no_auth_server
from milliwatt.config import AccessConfig
from milliwatt.gateway.access_setup import check_binding, is_loopback


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    env = os.environ | {"MILLIWATT_DATA_DIR": str(tmp_path / "data")}
    env.pop("MILLIWATT_CONFIG", None)
    run = subprocess.run(
        [sys.executable, "-m", "milliwatt.cli", "serve", "--host", "0.0.0.0",
         "--port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert "refusing to listen on 0.0.0.0 with no API key" in run.stderr
    assert "--no-auth" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("127.0.0.5", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False),
     ("example.org", False)],
)  # fmt: skip
def test_what_counts_as_loopback(host: str, local: bool) -> None:
    assert is_loopback(host) is local


def test_a_key_or_no_auth_lets_a_public_address_through(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"refusing to listen on 10\.1\.2\.3"):
        check_binding(tmp_path, "10.1.2.3", no_auth=False)
    check_binding(tmp_path, "10.1.2.3", no_auth=True)
    KeyStore(tmp_path).create("acme")
    check_binding(tmp_path, "10.1.2.3", no_auth=False)


def test_no_auth_is_reported_while_it_serves(tmp_path: Path) -> None:
    server = AccessServer(tmp_path)
    KeyStore(server.data_dir).create("acme")
    assert access_report(server.data_dir, AccessConfig())["auth"] == "API keys required"
    server.start(no_auth=True)
    try:
        # keys exist, but --no-auth serves without them; operator paths stay loopback-only
        assert httpx.get(f"{server.url}/v1/models").status_code == 200
        running = no_auth_server(server.data_dir)
        assert running is not None and running["pid"] == os.getpid()
        report = access_report(server.data_dir, AccessConfig())
        assert report["auth"].startswith("warning: OFF: `serve --no-auth`")
        assert report["keys"] == "1 active of 1 (tenants: acme)"
        assert report["audit_trail"].startswith("intact")
    finally:
        server.stop()


def test_serve_names_an_unreachable_redis_limiter(tmp_path: Path) -> None:
    from milliwatt.config import Settings
    from milliwatt.gateway.access_setup import build_limiter

    with pytest.raises(ValueError, match=r"the Redis limiter cannot reach redis://127\.0\.0\.1:"):
        build_limiter(
            Settings(
                data_dir=tmp_path,
                access={"limiter": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"},  # type: ignore[arg-type]
            ).access
        )
