"""`milliwatt keys`, `admin` and `audit` as an operator types them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from typer.testing import CliRunner

from milliwatt.cli import app
from milliwatt.config import private_data_dir

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(folder))
    monkeypatch.delenv("MILLIWATT_CONFIG", raising=False)
    monkeypatch.delenv("MILLIWATT_OPERATOR", raising=False)
    monkeypatch.chdir(tmp_path)
    return private_data_dir(folder)


def mw(*args: str) -> tuple[int, str]:
    """Exit status and output; an expected error (which `milliwatt` prints as one line on
    stderr, exit 1) shows as its message."""
    result = runner.invoke(app, list(args))
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        return 1, result.output + str(error)
    return result.exit_code, result.output


def _operator(name: str = "ada") -> pyotp.TOTP:
    code, out = mw("admin", "enroll", name)
    assert code == 0, out
    uri = next(line for line in out.splitlines() if line.startswith("otpauth://"))
    totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    code, out = mw("admin", "confirm", name, totp.at(time.time() - 30))
    assert code == 0 and "is active" in out
    return totp


def _next_code(totp: pyotp.TOTP) -> str:
    """A code of a step not used yet (each code works once)."""
    time.sleep(max(0.0, 30.05 - time.time() % 30))
    return totp.now()


def test_keys_need_an_enrolled_operator_and_a_fresh_code(data_dir: Path) -> None:
    code, out = mw("keys", "create", "--tenant", "acme")
    assert code == 1 and "no operator is enrolled" in out
    totp = _operator()
    code, out = mw("keys", "create", "--tenant", "acme", "--operator", "ada")
    assert code == 1 and "--code" in out  # no terminal to prompt on
    now = totp.now()
    code, out = mw(
        "keys", "create", "--tenant", "acme", "--rpm", "30", "--expires", "7d",
        "--operator", "ada", "--code", now, "--json",
    )  # fmt: skip
    assert code == 0, out
    made = json.loads(out.splitlines()[0])
    assert made["key"].startswith("mw_") and made["limits"] == {"rpm": 30}
    code, out = mw("keys", "create", "--tenant", "acme", "--operator", "ada", "--code", now)
    assert code == 1 and "used already" in out
    code, out = mw("keys", "list", "--json")
    listed = json.loads(out)
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    fresh = _next_code(totp)
    code, out = mw("keys", "revoke", made["id"], "--operator", "ada", "--code", fresh)
    assert code == 0 and f"revoked key {made['id']}" in out
    code, out = mw("keys", "list")
    assert "revoked" in out


def test_a_second_operator_needs_the_first_ones_code(data_dir: Path) -> None:
    totp = _operator("ada")
    code, out = mw("admin", "enroll", "bob")
    assert code == 1 and "--operator" in out
    code, out = mw("admin", "enroll", "bob", "--operator", "ada", "--code", totp.now())
    assert code == 0 and "otpauth://totp/milliwatt:bob?secret=" in out
    code, out = mw("admin", "operators")
    assert "ada\tactive" in out and "bob\tpending" in out


def test_audit_verify_and_tail_name_what_was_done(data_dir: Path) -> None:
    totp = _operator()
    mw(
        "keys",
        "limits",
        "--tenant",
        "acme",
        "--rpm",
        "100",
        "--operator",
        "ada",
        "--code",
        totp.now(),
    )
    code, out = mw("audit", "verify")
    assert code == 0 and "intact: 3 records" in out
    code, out = mw("audit", "tail", "--json", "-n", "1")
    last = json.loads(out)
    assert last["event"] == "admin.action" and last["fields"]["tenant"] == "acme"
    trail = data_dir / "audit-trail.jsonl"
    lines = trail.read_bytes().splitlines(keepends=True)
    trail.write_bytes(lines[0] + lines[2] + lines[1])  # two records swapped
    code, out = mw("audit", "verify")
    assert code == 1 and "line 3: record 2 comes after record 3" in out and "BROKEN" in out
    code, out = mw("audit", "export", "--out", str(data_dir / "copy.jsonl"), "--operator", "ada",
                   "--code", "000000")  # fmt: skip
    assert code == 1 and not (data_dir / "copy.jsonl").exists()


def test_keys_made_on_one_node_are_known_on_another(
    data_dir: Path, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLIWATT_STORAGE__URL", postgres_url)
    totp = _operator()
    code, out = mw(
        "keys", "create", "--tenant", "acme", "--operator", "ada", "--code", totp.now(), "--json"
    )  # fmt: skip
    assert code == 0, out
    made = json.loads(out.splitlines()[0])
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(tmp_path / "other-node"))
    code, out = mw("keys", "list", "--json")
    assert code == 0 and [k["id"] for k in json.loads(out)] == [made["id"]]
    code, out = mw("admin", "operators")
    assert "ada\tactive" in out
    assert not (data_dir / "access.db").exists()
