"""Rule 10003 of milliwatt-api.conf: a loopback client naming the server by its loopback
address is not a scanner (CRS 920350), and nobody else gets that pass."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from milliwatt.shield.auditlog import read_records
from milliwatt.shield.http import WafMiddleware, api_exclusions, load_waf
from milliwatt.shield.waf import WAF

pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def waf() -> WAF:
    return load_waf(extra_rules=api_exclusions())  # the packaged CRS, as `milliwatt serve` runs


async def matched_rules(waf: WAF, audit: Path, client: str, host: str) -> list[int]:
    """The rules the audit log names for one GET with this peer address and Host."""
    transport = httpx.ASGITransport(app=WafMiddleware(ok, waf, audit), client=(client, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as http:
        response = await http.get("/healthz", headers={"accept": "*/*", "user-agent": "curl/8"})
    assert response.status_code == 200  # a warning alone does not block
    records = list(read_records(audit)) if audit.exists() else []
    return [match["id"] for record in records for match in record["matched_rules"]]


@pytest.mark.parametrize(
    ("client", "host", "scored"),
    [
        ("127.0.0.1", "127.0.0.1:8080", False),
        ("::1", "[::1]:8080", False),
        ("127.0.0.1", "localhost:8080", False),  # a name, not an address: 920350 never fired
        ("203.0.113.9", "127.0.0.1:8080", True),  # a remote peer cannot claim loopback
        ("127.0.0.1", "10.1.2.3:8080", True),  # another numeric host is still scored
        ("127.0.0.1", "127.0.0.1.evil.example", False),  # a name again
    ],
)
async def test_numeric_host_is_scored_unless_peer_and_host_are_loopback(
    waf: WAF, tmp_path: Path, client: str, host: str, scored: bool
) -> None:
    rules = await matched_rules(waf, tmp_path / "audit.jsonl", client, host)
    assert (920350 in rules) is scored
