"""WafMiddleware in front of a real ASGI app, with a small rule set whose verdicts are known."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from milliwatt.shield.auditlog import read_records
from milliwatt.shield.http import WafMiddleware, build_waf_middleware
from milliwatt.shield.waf import WAF

RULES = r"""
SecRule ARGS "@contains attack" \
    "id:1001,phase:2,deny,status:403,log,msg:'attack in args',logdata:'%{MATCHED_VAR}'"
SecRule REQUEST_HEADERS:User-Agent "@contains evilbot" \
    "id:1002,phase:1,deny,status:403,log,msg:'bad bot'"
SecRule ARGS "@contains suspicious" "id:1004,phase:2,pass,log,msg:'suspicious word'"
SecRule RESPONSE_HEADERS:X-Leak "@streq yes" \
    "id:1005,phase:3,deny,status:403,log,msg:'leaky header'"
SecRule RESPONSE_BODY "@contains SECRET-LEAK" "id:1003,phase:4,deny,status:403,log,msg:'leak'"
"""

pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


class EchoApp:
    """Answers with what it received; the response type and extra headers come from the query."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.seen.append((scope["path"], body))
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
        ctype = query.get("type", "text/plain").replace("%2F", "/").encode()
        headers = [(b"content-type", ctype)]
        if query.get("leak") == "header":
            headers.append((b"x-leak", b"yes"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        parts = [b"echo:", body, b"|", query.get("say", "").encode()]
        for part in parts:  # several body messages, as a streaming app sends them
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _client(middleware: WafMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://t")


@pytest.fixture()
def app() -> EchoApp:
    return EchoApp()


@pytest.fixture()
def audit(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "audit.jsonl"


async def test_benign_request_reaches_the_app_with_its_body(app: EchoApp, audit: Path) -> None:
    async with _client(WafMiddleware(app, WAF.from_text(RULES), audit)) as client:
        r = await client.post("/notes?x=1", content=b"hello=world")
    assert r.status_code == 200
    assert r.text == "echo:hello=world|"
    assert app.seen == [("/notes", b"hello=world")]
    assert not audit.exists() or list(read_records(audit)) == []


async def test_attack_in_query_is_blocked_before_the_app(app: EchoApp, audit: Path) -> None:
    async with _client(WafMiddleware(app, WAF.from_text(RULES), audit)) as client:
        r = await client.get("/search", params={"q": "an attack here"})
    assert r.status_code == 403
    assert app.seen == []
    request_id = r.json()["request_id"]
    assert r.headers["x-request-id"] == request_id
    (record,) = read_records(audit)
    assert record["request_id"] == request_id
    assert [m["id"] for m in record["matched_rules"]] == [1001]
    assert "attack" in record["matched_rules"][0]["data"]
    assert record["status"] == 403


async def test_attack_in_form_body_and_header_are_blocked(app: EchoApp, audit: Path) -> None:
    async with _client(WafMiddleware(app, WAF.from_text(RULES), audit)) as client:
        form = await client.post("/f", data={"comment": "attack"})
        bot = await client.get("/", headers={"User-Agent": "evilbot/1.0"})
    assert (form.status_code, bot.status_code) == (403, 403)
    assert app.seen == []
    assert [r["rule_id"] for r in read_records(audit)] == [1001, 1002]


async def test_detection_mode_passes_but_logs(app: EchoApp, audit: Path) -> None:
    waf = WAF.from_text("SecRuleEngine DetectionOnly\n" + RULES)
    async with _client(WafMiddleware(app, waf, audit)) as client:
        r = await client.get("/", params={"q": "attack"})
    assert r.status_code == 200
    (record,) = read_records(audit)
    assert record["action"] == "pass"
    assert [m["id"] for m in record["matched_rules"]] == [1001]


async def test_matched_pass_rule_is_logged_without_blocking(app: EchoApp, audit: Path) -> None:
    async with _client(WafMiddleware(app, WAF.from_text(RULES), audit)) as client:
        r = await client.get("/", params={"q": "suspicious"})
    assert r.status_code == 200
    (record,) = read_records(audit)
    assert record["action"] == "pass" and record["matched_rules"][0]["id"] == 1004


async def test_response_body_is_inspected_for_text_types_only(app: EchoApp, audit: Path) -> None:
    async with _client(WafMiddleware(app, WAF.from_text(RULES), audit)) as client:
        leak = await client.get("/", params={"say": "SECRET-LEAK"})
        binary = await client.get("/", params={"say": "SECRET-LEAK", "type": "image/png"})
    assert leak.status_code == 403
    assert "SECRET-LEAK" not in leak.text
    assert binary.status_code == 200 and binary.text == "echo:|SECRET-LEAK"
    assert [r["rule_id"] for r in read_records(audit)] == [1003]


async def test_response_headers_are_inspected(app: EchoApp, audit: Path) -> None:
    async with _client(WafMiddleware(app, WAF.from_text(RULES), audit)) as client:
        r = await client.get("/", params={"leak": "header", "type": "image/png"})
    assert r.status_code == 403
    assert "x-leak" not in r.headers


async def test_body_over_the_limit_is_refused(app: EchoApp, audit: Path) -> None:
    waf = WAF.from_text("SecRequestBodyLimit 64\n" + RULES)
    async with _client(WafMiddleware(app, waf, audit)) as client:
        small = await client.post("/", content=b"a" * 64)
        big = await client.post("/", content=b"a" * 65)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(5):
                yield b"b" * 20

        streamed = await client.post("/", content=chunks())
    assert small.status_code == 200
    assert big.status_code == 413 and streamed.status_code == 413
    assert "larger" in big.json()["error"]["message"]
    assert [r["status"] for r in read_records(audit)] == [413, 413]
    assert app.seen == [("/", b"a" * 64)]


async def test_unparseable_json_body_gets_400(app: EchoApp, audit: Path) -> None:
    async with _client(WafMiddleware(app, WAF.from_text(RULES), audit)) as client:
        r = await client.post("/", content=b'{"a": ', headers={"content-type": "application/json"})
        ok = await client.post("/", json={"a": [1, 2]})
    assert r.status_code == 400
    assert ok.status_code == 200
    assert app.seen == [("/", b'{"a":[1,2]}')]


async def test_other_scopes_pass_through(app: EchoApp) -> None:
    calls: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    await WafMiddleware(inner, WAF.from_text(RULES))({"type": "lifespan"}, receive, send)
    assert calls == ["lifespan"]


def test_build_from_plain_values_uses_settings(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "REQUEST-901-TEST.conf").write_text(RULES)
    mw = build_waf_middleware(
        EchoApp(), mode="detection", paranoia=2, crs_dir=rules, audit_log=tmp_path / "a.jsonl"
    )
    assert mw.waf.rule_count >= 5
    assert str(rules) in mw.waf.source
    assert mw.audit is not None and mw.audit.path == tmp_path / "a.jsonl"


def test_missing_crs_is_a_loud_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from milliwatt.shield.waf import engine

    monkeypatch.delenv("MILLIWATT_CRS_DIR", raising=False)
    monkeypatch.setattr(engine, "PACKAGED_CRS", tmp_path / "lost" / "rules")  # a broken install
    with caplog.at_level(logging.WARNING):
        mw = build_waf_middleware(EchoApp())
    assert mw.waf.source.startswith("baseline")
    assert any("CRS" in r.getMessage() and r.levelno >= logging.WARNING for r in caplog.records)


def test_bad_values_are_named() -> None:
    with pytest.raises(ValueError, match="paranoia"):
        build_waf_middleware(EchoApp(), paranoia=7)
    with pytest.raises(ValueError, match="mode"):
        build_waf_middleware(EchoApp(), mode="loud")  # type: ignore[arg-type]


def test_audit_records_are_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"kept": true}\n')
    mw = WafMiddleware(EchoApp(), WAF.from_text(RULES), path)
    assert mw.audit is not None
    mw.audit.write({"request_id": "x", "matched_rules": [{"data": "y" * 5000}]})
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"kept": True}
    assert len(json.loads(lines[1])["matched_rules"][0]["data"]) < 600


async def _websocket_echo(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": "echo:" + message.get("text", "")})
    await send({"type": "websocket.close", "code": 1000})


def test_websocket_handshake_is_inspected(audit: Path) -> None:
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    client = TestClient(WafMiddleware(_websocket_echo, WAF.from_text(RULES), audit))
    with client.websocket_connect("/ws?room=lobby") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "echo:hi"
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws?room=attack"):
        pass
    assert refused.value.code == 1008
    (record,) = read_records(audit)
    # query values are masked in the log (keys are sent there); the match says what tripped
    assert record["rule_id"] == 1001 and record["uri"] == "/ws?room=[redacted]"


async def test_ctl_audit_engine_decides_what_the_audit_log_keeps(app: EchoApp, audit: Path) -> None:
    quiet = r"""
SecRule REQUEST_URI "@beginsWith /quiet" "id:1,phase:1,pass,nolog,ctl:auditEngine=Off"
SecRule REQUEST_URI "@beginsWith /loud" "id:2,phase:1,pass,nolog,ctl:auditEngine=On"
"""
    async with _client(WafMiddleware(app, WAF.from_text(quiet + RULES), audit)) as client:
        await client.get("/quiet", params={"q": "suspicious"})  # matched, but logging is off
        await client.get("/loud")  # nothing matched a logging rule, but logging is on
        await client.get("/plain")  # nothing relevant: the default keeps nothing
    assert [r["uri"] for r in read_records(audit)] == ["/loud"]
