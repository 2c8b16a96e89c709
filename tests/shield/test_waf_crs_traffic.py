"""The OWASP CRS at paranoia 1, as `milliwatt serve` loads it, on real traffic: the proxy
stops real attacks before a real upstream, and benign chat requests pass."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from waf_loopback import Upstream, proxy_thread

from milliwatt.shield.http import api_exclusions, load_waf
from milliwatt.shield.proxy import ProxySettings
from milliwatt.shield.waf import WAF

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO / ".." / "shared" / "corpora"


@pytest.fixture(scope="module")
def waf() -> WAF:
    if not (CORPORA / "crs" / "rules").is_dir():
        pytest.skip(f"CRS rules not found under {CORPORA / 'crs'}")
    return load_waf(crs_dir=CORPORA / "crs" / "rules", paranoia=1, extra_rules=api_exclusions())


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream.running() as server:
        yield server


@pytest.fixture(scope="module")
def proxy_url(
    waf: WAF, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    audit = tmp_path_factory.mktemp("crs") / "audit.jsonl"
    settings = ProxySettings(upstream=upstream.url, audit_log=str(audit))
    with proxy_thread(waf, settings) as proxy:
        yield f"http://127.0.0.1:{proxy.port}"


ATTACKS = [
    ("GET", "/products?id=1' UNION SELECT username, password FROM users--", None),
    ("GET", "/search?q=<script>alert(document.cookie)</script>", None),
    ("GET", "/download?file=../../../../etc/passwd", None),
    ("POST", "/ping", b"host=127.0.0.1;cat /etc/passwd"),
    ("GET", "/v1/chat/completions?debug=1 UNION SELECT password FROM users", None),
    ("POST", "/v1/chat/completions", b'{"model": "x\' UNION SELECT password FROM users--"}'),
]


@pytest.mark.parametrize(("method", "target", "body"), ATTACKS)
def test_attacks_are_stopped_before_the_upstream(
    proxy_url: str, upstream: Upstream, method: str, target: str, body: bytes | None
) -> None:
    upstream.seen.clear()
    headers = {"User-Agent": "Mozilla/5.0", "Accept": "*/*"}
    if body is not None:
        kind = "application/json" if body.startswith(b"{") else "application/x-www-form-urlencoded"
        headers["Content-Type"] = kind
    r = httpx.request(method, proxy_url + target, content=body, headers=headers)
    assert r.status_code == 403, r.text
    assert r.json()["request_id"] == r.headers["x-request-id"]
    assert upstream.seen == []


def test_benign_requests_pass_to_the_upstream(proxy_url: str, upstream: Upstream) -> None:
    upstream.seen.clear()
    headers = {"User-Agent": "Mozilla/5.0", "Accept": "*/*"}
    with httpx.Client(base_url=proxy_url, headers=headers) as client:
        assert client.get("/products?id=42&sort=price").status_code == 200
        assert (
            client.post("/comments", data={"text": "Select the best option, please."}).status_code
            == 200
        )
        chat = {
            "model": "m",
            "messages": [{"role": "user", "content": "How do I rm -rf /tmp/x; safely?"}],
        }
        assert client.post("/v1/chat/completions", json=chat).status_code == 200
    assert len(upstream.seen) == 3


def _false_positive_bench() -> ModuleType:
    path = REPO / "bench" / "waf_false_positives.py"
    spec = importlib.util.spec_from_file_location("waf_false_positives", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_benign_chat_traffic_is_rarely_blocked(waf: WAF) -> None:
    """Every 8th prompt of BIPIA, BFCL and GSM8K (~445): within 0.1% means none blocked.
    The full set runs in bench/waf_false_positives.py."""
    bench = _false_positive_bench()
    requests = bench.benign_requests(CORPORA, every=8)
    assert len(requests) > 400
    statuses = asyncio.run(bench.run_through_waf(requests, waf, None))
    blocked = [r.source for r, s in zip(requests, statuses, strict=True) if s != 200]
    assert len(blocked) <= len(requests) // 1000, blocked
