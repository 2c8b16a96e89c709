"""API keys: shown once, stored as a hash, refused with a reason when malformed, unknown,
revoked or expired."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from milliwatt.access.keys import AuthError, KeyStore, parse_duration
from milliwatt.access.limits import Limits


def test_a_key_authenticates_as_its_tenant(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key, info = store.create("acme", agents=("helper",), limits=Limits(rpm=30))
    assert key.startswith(f"mw_{info.id}_") and len(key) == 57
    principal = store.authenticate(key)
    assert (principal.tenant, principal.key_id, principal.limits.rpm) == ("acme", info.id, 30)
    assert principal.may_use("helper") and not principal.may_use("other")
    assert principal.scope("ada") == "acme:ada"


def test_only_a_hash_is_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key, _ = store.create("acme")
    store.close()
    secret = key[14:]  # after "mw_<id>_"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert secret.encode() not in raw and key.encode() not in raw
    rows = sqlite3.connect(tmp_path / "access.db").execute("SELECT * FROM keys").fetchall()
    assert all(key not in map(str, row) for row in rows)


@pytest.mark.parametrize(
    ("presented", "message"),
    [
        ("sk-proj-abc", "not a milliwatt key"),
        ("mw_short", "malformed"),
        ("mw_abcdefghij_" + "A" * 42, "malformed"),
        ("mw_abcdefghij_" + "A" * 43, "not known"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, presented: str, message: str) -> None:
    with pytest.raises(AuthError, match=message):
        KeyStore(tmp_path).authenticate(presented)


def test_a_wrong_secret_for_a_real_id_is_unknown(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key, _ = store.create("acme")
    forged = key[:14] + ("B" if key[14] != "B" else "C") + key[15:]
    with pytest.raises(AuthError, match="not known"):
        store.authenticate(forged)


def test_revoked_and_expired_keys_are_refused_in_every_process(tmp_path: Path) -> None:
    store, other = KeyStore(tmp_path), KeyStore(tmp_path)  # two servers on one data dir
    key, info = store.create("acme")
    short, _ = store.create("acme", expires_in=60)
    other.authenticate(key)
    store.revoke(info.id)
    with pytest.raises(AuthError, match="revoked") as caught:
        other.authenticate(key)
    assert caught.value.code == "revoked_api_key"
    with pytest.raises(AuthError, match="expired"):
        other.authenticate(short, now=time.time() + 61)
    with pytest.raises(ValueError, match="already revoked"):
        store.revoke(info.id)
    with pytest.raises(ValueError, match="no key with id"):
        store.revoke("zzzzzzzzzz")
    assert store.has_keys()  # revoked keys still mean "keys are required"


def test_bad_input_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    with pytest.raises(ValueError, match="invalid tenant"):
        store.create("Acme Corp")
    with pytest.raises(ValueError, match="invalid agent name"):
        store.create("acme", agents=("a b",))
    with pytest.raises(ValueError, match="rpm must be a positive number"):
        Limits(rpm=0)
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("30 days")
    assert store.list() == [] and not store.has_keys()
    assert parse_duration("30d") == 30 * 86400
