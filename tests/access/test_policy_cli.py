"""`milliwatt admin policy` as an operator types it: a code for each change, used once; a bad
policy or an unknown agent changes nothing; the runtime sees the change; the trail holds it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.access.test_cli import _operator, data_dir, mw

from milliwatt.access.admin import trail_path
from milliwatt.access.policies import PolicyOverrides, parse_policy
from milliwatt.agent.runtime import Runtime
from milliwatt.config import load_settings
from milliwatt.models.fake import FakeModel
from milliwatt.shield.audit_trail import read_trail, verify

__all__ = ["data_dir"]  # the fixture, used by name


def _shown(agent: str = "milliwatt") -> dict[str, object]:
    code, out = mw("admin", "policy", "show", agent)
    assert code == 0, out
    return dict(json.loads(out[out.index("{") :]))


def test_policy_set_and_reset_need_a_fresh_code(data_dir: Path, tmp_path: Path) -> None:
    assert _shown()["send_to"] == []  # read-only: no code, no operator needed
    code, out = mw("admin", "policy", "show", "nobody")
    assert code == 1 and "unknown agent: 'nobody'" in out
    code, out = mw(
        "admin", "policy", "set", "milliwatt", "--json", '{"send_to": ["*@example.org"]}'
    )
    assert code == 1 and "no operator is enrolled" in out

    totp = _operator()
    good = totp.now()
    for bad, words in [
        ('{"send_to": "bob@example.org"}', "send_to"),
        ('{"send_too": []}', "send_too"),
        ('{"execute": "sometimes"}', "execute"),
        ('{"send_to": [', "not valid JSON"),
        ('["send_to"]', "JSON object"),
    ]:
        code, out = mw(
            "admin",
            "policy",
            "set",
            "milliwatt",
            "--json",
            bad,
            "--operator",
            "ada",
            "--code",
            good,
        )
        assert code == 1 and words in out, out
    code, out = mw(
        "admin", "policy", "set", "nobody", "--json", "{}", "--operator", "ada", "--code", good
    )
    assert code == 1 and "unknown agent" in out
    assert not PolicyOverrides(data_dir).all()  # nothing stored

    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"send_to": ["*@example.org"], "fetch_domains": ["*.example.org"]})
    )
    code, out = mw(
        "admin",
        "policy",
        "set",
        "milliwatt",
        "--file",
        str(policy),
        "--operator",
        "ada",
        "--code",
        good,
    )
    assert code == 0 and "set by an operator" in out, out
    assert _shown()["send_to"] == ["*@example.org"]
    # the runtime builds the agent under the stored override
    settings = load_settings()
    runtime = Runtime(settings)
    for model in settings.agent("milliwatt").models:
        runtime.provide_model(model, FakeModel(lambda messages, tools: "ok"))
    runtime.policy_override = PolicyOverrides(data_dir).get
    try:
        assert runtime.agent("milliwatt").cascade.policy.config.fetch_domains == ["*.example.org"]
    finally:
        runtime.close()

    code, out = mw("admin", "policy", "reset", "milliwatt", "--operator", "ada", "--code", good)
    assert code == 1 and "used already" in out  # the same code twice
    assert _shown()["send_to"] == ["*@example.org"]
    code, out = mw(
        "admin",
        "policy",
        "reset",
        "milliwatt",
        "--operator",
        "ada",
        "--code",
        totp.at(time.time() + 30),
    )
    assert code == 0 and "from milliwatt.toml" in out
    assert _shown()["send_to"] == []

    trail = list(read_trail(trail_path(data_dir)))
    actions = [
        r["fields"]
        for r in trail
        if r["event"] == "admin.action" and r["fields"]["action"].startswith("policy.")
    ]
    assert [(a["action"], a["agent"]) for a in actions] == [
        ("policy.set", "milliwatt"), ("policy.reset", "milliwatt"),
    ]  # fmt: skip
    assert actions[0]["policy"]["send_to"] == ["*@example.org"] and actions[0]["via"] == "cli"
    assert verify(trail_path(data_dir)).ok


@pytest.mark.parametrize("args", [["--json", "{}", "--file", "x.json"], []])
def test_set_takes_the_policy_once(data_dir: Path, args: list[str]) -> None:
    code, out = mw("admin", "policy", "set", "milliwatt", *args, "--operator", "ada", "--code", "1")
    assert code == 1 and "give the policy once" in out


def test_a_damaged_overrides_file_is_named_and_kept(data_dir: Path) -> None:
    overrides = PolicyOverrides(data_dir)
    overrides.path.write_text('{"milliwatt": {"send_to": 5}}')
    with pytest.raises(ValueError, match=r"policy-overrides\.json: not valid policy overrides"):
        overrides.get("milliwatt")
    with pytest.raises(ValueError, match="send_to"):
        overrides.set("milliwatt", parse_policy({}))
    assert overrides.path.read_text() == '{"milliwatt": {"send_to": 5}}'  # not overwritten
