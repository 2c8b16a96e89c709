"""Keys, tenants, limits and the admin API through the real server on loopback: what another
tenant, an unknown key, a revoked key, a greedy key or an attacker gets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import openai
import pyotp
import pytest
from tests.gateway.access_server import AccessServer

from milliwatt.access.admin import trail_path
from milliwatt.access.keys import KeyStore
from milliwatt.access.limits import Limits
from milliwatt.access.operators import OperatorStore
from milliwatt.knowledge import CollectionKey, open_knowledge_base
from milliwatt.shield.audit_trail import read_trail, verify


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AccessServer]:
    served = AccessServer(tmp_path)
    served.keys = KeyStore(served.data_dir)  # type: ignore[attr-defined]
    yield served
    if hasattr(served, "server"):
        served.stop()


def _key(server: AccessServer, tenant: str, **kwargs: object) -> str:
    key, _ = server.keys.create(tenant, **kwargs)  # type: ignore[attr-defined]
    return key


def _chat(server: AccessServer, key: str, text: str, **extra: object) -> httpx.Response:
    body = {"model": "helper", "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(
        f"{server.url}/v1/chat/completions", json=body,
        headers={"Authorization": f"Bearer {key}"}, timeout=60,
    )  # fmt: skip


def _answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def _events(server: AccessServer, name: str) -> list[dict[str, object]]:
    return [r for r in read_trail(trail_path(server.data_dir)) if r["event"] == name]


def _eventually(server: AccessServer, name: str) -> list[dict[str, object]]:
    """The events, once there: the WAF writes its record after the answer has gone."""
    deadline = time.monotonic() + 10
    while not (found := _events(server, name)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_every_path_but_the_public_ones_needs_a_key(server: AccessServer) -> None:
    key = _key(server, "acme", agents=("helper",))
    server.start()
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    missing = httpx.get(f"{server.url}/v1/models")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for presented, code, words in [
        ("mw_nope", "invalid_api_key", "malformed"),
        ("sk-" + "a" * 40, "invalid_api_key", "not a milliwatt key"),
        ("mw_abcdefghij_" + "A" * 43, "invalid_api_key", "not known"),
        ("mw_" + "a" * 5000, "invalid_api_key", "far too long"),
    ]:
        refused = httpx.get(
            f"{server.url}/v1/models", headers={"Authorization": f"Bearer {presented}"}
        )
        assert refused.status_code == 401
        assert (
            refused.json()["error"]["code"] == code and words in refused.json()["error"]["message"]
        )
    # the OpenAI SDK's api_key is the bearer key, unchanged
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    assert [m.id for m in client.models.list()] == ["helper"]  # only the agents it may use
    with pytest.raises(openai.PermissionDeniedError, match="may not use the model 'other'"):
        client.chat.completions.create(model="other", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="mw_x", max_retries=0).models.list()
    used = _events(server, "key.used")
    assert used and used[-1]["fields"]["tenant"] == "acme"  # type: ignore[index]
    assert _events(server, "key.refused")


def test_tenants_never_see_each_other(server: AccessServer, tmp_path: Path) -> None:
    a, b = _key(server, "tenant-a"), _key(server, "tenant-b")
    doc = tmp_path / "handbook.md"
    doc.write_text("# Vacation\n\nThe vacation allowance at tenant A is 31 days a year.\n")
    kb = open_knowledge_base(server.data_dir)
    kb.ingest([doc], CollectionKey("tenant-a", "helper", "handbook"))
    server.start()

    # sessions: the same user name in two tenants is two conversations
    assert _answer(_chat(server, a, "hello from A", user="ada")) == "ECHO []"
    assert _answer(_chat(server, b, "hello from B", user="ada")) == "ECHO []"
    assert "hello from A" in _answer(_chat(server, a, "again", user="ada"))
    assert "hello from A" not in _answer(_chat(server, b, "again", user="ada"))
    names = {i.name for i in server.runtime.store.list()}
    assert {"tenant-a:ada", "tenant-b:ada"} <= names and "ada" not in names
    # a user name that spells another tenant's prefix stays in its own tenant
    assert "hello from A" not in _answer(_chat(server, b, "hi", user="tenant-a:ada"))
    # the stored conversations: each tenant lists and reads only its own, by its own names
    for key, words in ((a, "hello from A"), (b, "hello from B")):
        auth = {"authorization": f"Bearer {key}"}
        listed = httpx.get(f"{server.url}/v1/sessions", headers=auth).json()["data"]
        assert {s["id"] for s in listed} <= {"ada", "tenant-a:ada"}
        read = json.dumps(httpx.get(f"{server.url}/v1/sessions/ada", headers=auth).json())
        assert words in read
        assert ("hello from A" in read) is (key == a)

    # memories
    _answer(_chat(server, a, 'CALL remember {"fact": "my locker code is 4711"}', user="ada"))
    assert "4711" in _answer(_chat(server, a, 'CALL recall {"query": "locker code"}', user="ada"))
    assert "4711" not in _answer(
        _chat(server, b, 'CALL recall {"query": "locker code"}', user="ada")
    )
    # nor without a session: each tenant's anonymous caller is its own
    assert "4711" not in _answer(_chat(server, b, 'CALL recall {"query": "locker code"}'))

    # calendars
    meeting = {"title": "board meeting", "start": "2031-05-05T10:00", "duration_minutes": 60}
    booking = f"CALL calendar.book {json.dumps(meeting)}"
    booked = _answer(_chat(server, a, booking, user="ada"))
    event_id = json.loads(booked.removeprefix("RESULT "))["id"]
    window = '{"start": "2031-05-05T00:00", "end": "2031-05-06T00:00"}'
    assert "board meeting" in _answer(
        _chat(server, a, f"CALL calendar.free_busy {window}", user="ada")
    )
    assert "board meeting" not in _answer(
        _chat(server, b, f"CALL calendar.free_busy {window}", user="ada")
    )
    cancel = _answer(
        _chat(server, b, f'CALL calendar.cancel {{"event_id": "{event_id}"}}', user="ada")
    )
    assert "no event with id" in cancel
    assert "board meeting" in _answer(
        _chat(server, a, f"CALL calendar.free_busy {window}", user="ada")
    )

    # knowledge collections
    search = 'CALL knowledge.search {"query": "vacation allowance", "collection": "handbook"}'
    assert "31 days" in _answer(_chat(server, a, search))
    assert "31 days" not in _answer(_chat(server, b, search))
    assert "31 days" not in _answer(
        _chat(server, b, 'CALL knowledge.search {"query": "vacation allowance"}')
    )

    # the audit trail and the operator's views
    for path in ("/admin/audit", "/admin/keys", "/console", "/console/api/feed", "/metrics"):
        refused = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {b}"})
        assert refused.status_code == 403, path
        assert refused.json()["error"]["code"] == "operator_key_required"


def test_a_greedy_key_gets_429_with_openai_headers(server: AccessServer) -> None:
    key = _key(server, "acme", limits=Limits(rpm=2, burst=2))
    server.start()
    first = _chat(server, key, "one")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert _chat(server, key, "two").status_code == 200
    refused = _chat(server, key, "three")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert _events(server, "ratelimit.refused")
    # the SDK reads it as a RateLimitError
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="helper", messages=[{"role": "user", "content": "x"}])


def test_a_spent_token_budget_refuses_before_work(server: AccessServer) -> None:
    key = _key(server, "acme", limits=Limits(tokens_per_day=30))
    server.start()
    assert _chat(server, key, "SLOW 40").status_code == 200  # 40+ tokens: over the day's 30
    calls = len(server.model.calls)
    refused = _chat(server, key, "SLOW 2")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"
    assert "tokens per day" in refused.json()["error"]["message"]
    assert len(server.model.calls) == calls  # refused before the model was asked
    assert _events(server, "budget.refused")


def test_a_key_revoked_during_a_stream_ends_it_unstored(server: AccessServer) -> None:
    key = _key(server, "acme")
    server.start()
    body = {"model": "helper", "stream": True, "user": "sam",
            "messages": [{"role": "user", "content": "SLOW 200"}]}  # fmt: skip
    chunks: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=headers,
                      timeout=60) as response:  # fmt: skip
        assert response.status_code == 200
        for line in response.iter_lines():
            chunks.append(line)
            if len(chunks) == 6:
                server.keys.revoke(key[3:13])  # type: ignore[attr-defined]
    events = [json.loads(c[6:]) for c in chunks if c.startswith("data: {")]
    errors = [e["error"] for e in events if "error" in e]
    assert errors and errors[0]["code"] == "revoked_api_key"
    assert [c for c in chunks if c][-1] == "data: [DONE]"
    assert sum(1 for e in events if "choices" in e) < 200  # cut short, not finished
    assert server.runtime.store.history("acme:sam") == []  # nothing half-written
    assert _chat(server, key, "hi").status_code == 401


def test_admin_api_needs_an_operator_code_once(server: AccessServer) -> None:
    operators = OperatorStore(server.data_dir)
    uri = operators.enroll("ada")
    totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    operators.confirm("ada", totp.at(time.time() - 30))
    admin = _key(server, "ops", admin=True)
    plain = _key(server, "acme")
    server.start()
    auth = {"Authorization": f"Bearer {admin}"}
    new = {"tenant": "beta", "agents": ["helper"], "limits": {"rpm": 5}}
    no_code = httpx.post(f"{server.url}/admin/keys", json=new, headers=auth)
    assert no_code.status_code == 401 and no_code.json()["error"]["code"] == "mfa_required"
    code = totp.now()
    mfa = auth | {"X-Milliwatt-Operator": "ada", "X-Milliwatt-Otp": code}
    created = httpx.post(f"{server.url}/admin/keys", json=new, headers=mfa)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["tenant"] == "beta" and made["limits"] == {"rpm": 5}
    assert _answer(_chat(server, made["key"], "hi")).startswith("ECHO")
    replay = httpx.post(f"{server.url}/admin/keys", json=new, headers=mfa)
    assert replay.status_code == 401 and "used already" in replay.json()["error"]["message"]
    # a plain key cannot reach the admin API even with a good code
    forbidden = httpx.get(
        f"{server.url}/admin/audit", headers=mfa | {"Authorization": f"Bearer {plain}"}
    )
    assert forbidden.status_code == 403
    # bad input: a clear 400, nothing stored
    before = len(server.keys.list())  # type: ignore[attr-defined]
    time.sleep(max(0.0, 30.5 - time.time() % 30))  # the next step: a fresh code
    bad = httpx.post(
        f"{server.url}/admin/keys", json={"tenant": "Not A Tenant"},
        headers=auth | {"X-Milliwatt-Operator": "ada", "X-Milliwatt-Otp": totp.now()},
    )  # fmt: skip
    assert bad.status_code == 400 and "invalid tenant" in bad.json()["error"]["message"]
    assert len(server.keys.list()) == before  # type: ignore[attr-defined]
    events = [r["event"] for r in read_trail(trail_path(server.data_dir))]
    assert "key.created" in events and "admin.refused" in events
    assert verify(trail_path(server.data_dir)).ok


def test_waf_blocks_reach_the_audit_trail(server: AccessServer) -> None:
    key = _key(server, "acme")
    server.start()
    attack = httpx.get(
        f"{server.url}/v1/models", params={"q": "<script>alert(document.cookie)</script>"},
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    assert attack.status_code == 403
    blocked = _eventually(server, "waf.blocked")
    assert blocked and blocked[-1]["fields"]["status"] == 403  # type: ignore[index]


def test_without_keys_only_loopback_operators_and_local_sessions(server: AccessServer) -> None:
    server.start()
    assert httpx.get(f"{server.url}/v1/models").status_code == 200  # the local machine
    assert _answer(_chat(server, "unused", "hello", user="ada")) == "ECHO []"  # ignored
    assert "ada" in {i.name for i in server.runtime.store.list()}  # unprefixed, as before
    # once a key exists (found within a second), the same requests need one
    _key(server, "acme")
    time.sleep(1.1)
    assert httpx.get(f"{server.url}/v1/models").status_code == 401


def test_egress_blocks_of_the_server_process_reach_the_trail(server: AccessServer) -> None:
    from milliwatt.shield.egress import EgressPolicy, GuardedClient
    from milliwatt.shield.egress.errors import EgressBlocked

    server.start()
    with GuardedClient(EgressPolicy()) as client, pytest.raises(EgressBlocked):
        client.get("http://127.0.0.1:9/metadata")  # loopback: refused by the default policy
    blocked = _events(server, "egress.blocked")
    assert blocked and "127.0.0.1" in str(blocked[-1]["fields"])


def test_nodes_sharing_a_database_share_keys_and_revocations(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two servers with their own data directories and one `[storage] url`: a key made
    elsewhere (the command line of a third machine) works on both, and its revocation
    holds on both at the next request."""
    nodes = [AccessServer(tmp_path / name, postgres_url).start() for name in ("a", "b")]
    try:
        (tmp_path / "cli").mkdir()
        keys = KeyStore(tmp_path / "cli", postgres_url)
        key, info = keys.create("acme")
        assert [_answer(_chat(node, key, "hi")) for node in nodes] == ["ECHO []"] * 2
        forged = key[:14] + ("B" if key[14] != "B" else "C") + key[15:]
        assert [_chat(node, forged, "hi").status_code for node in nodes] == [401, 401]
        keys.revoke(info.id)
        for node in nodes:
            refused = _chat(node, key, "hi")
            assert refused.status_code == 401 and "revoked" in refused.text
        assert not any((tmp_path / name / "data" / "access.db").exists() for name in "ab")
    finally:
        for node in nodes:
            node.stop()
