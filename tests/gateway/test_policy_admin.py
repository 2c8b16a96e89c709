"""An agent's information-flow policy changed by an operator through the real server on
loopback: the next request runs under it, without a restart; codes count once; a bad policy
changes nothing; every change is on the audit trail."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest
from tests.gateway.access_server import AccessServer

from milliwatt.access.admin import Admin, trail_path
from milliwatt.access.keys import KeyStore
from milliwatt.access.operators import OperatorStore
from milliwatt.agent.runtime import Runtime
from milliwatt.config import AgentConfig, PolicyConfig, ToolSelectionConfig
from milliwatt.models.base import Message, ModelResponse, ToolCall, ToolSpec
from milliwatt.models.fake import FakeModel
from milliwatt.shield.audit_trail import read_trail, verify


def reads_then_writes(
    messages: Sequence[Message], tools: Sequence[ToolSpec]
) -> ModelResponse | str:
    """Reads inbox.txt (untrusted content), then writes notes/out.txt (a guarded call)."""
    results = [m for m in messages if m.role == "tool"]
    if not results:
        return ModelResponse(
            "fake", tool_calls=[ToolCall("c1", "files.read", {"path": "inbox.txt"})]
        )
    if len(results) == 1:
        arguments = {"path": "notes/out.txt", "content": "summary"}
        return ModelResponse("fake", tool_calls=[ToolCall("c2", "files.write", arguments)])
    return "DONE " + results[-1].content


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AccessServer]:
    served = AccessServer(tmp_path)
    agent = AgentConfig(
        name="helper", models=["fake"], tools=["files.*"],
        tool_selection=ToolSelectionConfig(enabled=False), policy=PolicyConfig(on_untrusted="deny"),
    )  # fmt: skip
    served.settings = served.settings.model_copy(update={"agents": [agent]})
    served.runtime.close()
    served.runtime = Runtime(served.settings)
    served.runtime.provide_model("fake", FakeModel(reads_then_writes))
    workspace = served.data_dir / "workspace" / "helper"
    workspace.mkdir(parents=True)
    (workspace / "inbox.txt").write_text("Lunch moved to noon on Friday.")
    yield served
    if hasattr(served, "server"):
        served.stop()


def _operator(data_dir: Path, name: str) -> pyotp.TOTP:
    operators = OperatorStore(data_dir)
    totp = pyotp.TOTP(parse_qs(urlparse(operators.enroll(name)).query)["secret"][0])
    operators.confirm(name, totp.at(time.time() - 30))
    operators.close()
    return totp


def _chat(server: AccessServer, key: str) -> str:
    body = {"model": "helper", "messages": [{"role": "user", "content": "Summarise my inbox"}]}
    reply = httpx.post(
        f"{server.url}/v1/chat/completions", json=body,
        headers={"Authorization": f"Bearer {key}"}, timeout=60,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    return str(reply.json()["choices"][0]["message"]["content"])


def test_an_operator_changes_a_policy_on_a_running_server(server: AccessServer) -> None:
    keys = KeyStore(server.data_dir)
    user, _ = keys.create("acme", agents=("helper",))
    admin_key, _ = keys.create("ops", admin=True)
    ada, bob = _operator(server.data_dir, "ada"), _operator(server.data_dir, "bob")
    server.start()
    written = server.data_dir / "workspace" / "helper" / "notes" / "out.txt"
    url = f"{server.url}/admin/agents/helper/policy"
    auth = {"Authorization": f"Bearer {admin_key}"}

    assert "denied by policy" in _chat(server, user) and not written.exists()
    shown = httpx.get(url, headers=auth).json()
    assert shown["overridden"] is False and shown["policy"]["write_paths"] == []

    # no code: refused, nothing stored
    allow = {"write_paths": ["notes/*"], "on_untrusted": "deny"}  # a glob passes the WAF
    assert httpx.put(url, json=allow, headers=auth).status_code == 401
    code = ada.now()
    mfa = auth | {"X-Milliwatt-Operator": "ada", "X-Milliwatt-Otp": code}
    changed = httpx.put(url, json=allow, headers=mfa)
    assert changed.status_code == 200, changed.text
    assert changed.json()["overridden"] is True
    assert changed.json()["policy"]["write_paths"] == ["notes/*"]
    # the very next request runs under the new policy: the write happens
    assert "denied by policy" not in _chat(server, user)
    assert written.read_text() == "summary"
    written.unlink()

    # the same code again: refused, and the policy stays as it was
    replay = httpx.delete(url, headers=mfa)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "invalid_otp"
    assert httpx.get(url, headers=auth).json()["overridden"] is True

    # a bad policy is a 400 naming what is wrong, before any code is spent; nothing changes
    bob_code = bob.now()
    bob_mfa = auth | {"X-Milliwatt-Operator": "bob", "X-Milliwatt-Otp": bob_code}
    for bad, words in [
        ({"write_paths": "notes/out.txt"}, "write_paths"),
        ({"sendto": ["a@example.org"]}, "sendto"),
        ({"on_untrusted": "maybe"}, "on_untrusted"),
        ({"spend_max": -1}, "spend_max"),
    ]:
        refused = httpx.put(url, json=bad, headers=bob_mfa)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_policy"
        assert words in refused.json()["error"]["message"]
    typed = bob_mfa | {"Content-Type": "application/json"}
    not_object = httpx.put(url, content=b'["write_paths"]', headers=typed)
    assert not_object.status_code == 400 and "JSON object" in not_object.json()["error"]["message"]
    assert httpx.get(url, headers=auth).json()["policy"]["write_paths"] == ["notes/*"]

    # an unknown agent is a 404
    unknown = httpx.put(f"{server.url}/admin/agents/nobody/policy", json=allow, headers=bob_mfa)
    assert unknown.status_code == 404 and "unknown agent" in unknown.json()["error"]["message"]

    # reset by another operator: back to the configured policy on the next request
    reset = httpx.delete(url, headers=bob_mfa)
    assert reset.status_code == 200 and reset.json()["overridden"] is False
    assert "denied by policy" in _chat(server, user) and not written.exists()

    # the command line's path (the same store) reaches the running server too
    admin = Admin.open(server.data_dir)
    admin.set_policy("ada", ada.at(time.time() + 30), "helper", PolicyConfig(write_paths=["*"]))
    admin.close()
    assert "denied by policy" not in _chat(server, user) and written.exists()

    trail = list(read_trail(trail_path(server.data_dir)))
    actions = [r["fields"] for r in trail if r["event"] == "admin.action"]
    assert [(a["action"], a["operator"], a["via"]) for a in actions] == [
        ("policy.set", "ada", "api"), ("policy.reset", "bob", "api"), ("policy.set", "ada", "cli"),
    ]  # fmt: skip
    assert actions[0]["agent"] == "helper" and actions[0]["policy"]["write_paths"] == ["notes/*"]
    refusals = [r["fields"] for r in trail if r["event"] == "admin.refused"]
    assert [r["action"] for r in refusals] == ["policy.reset"]  # the replayed code
    assert verify(trail_path(server.data_dir)).ok
    stored = json.loads((server.data_dir / "policy-overrides.json").read_text())
    assert stored["helper"]["write_paths"] == ["*"]
    assert (server.data_dir / "policy-overrides.json").stat().st_mode & 0o777 == 0o600
