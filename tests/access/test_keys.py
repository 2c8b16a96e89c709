"""API keys: shown once, stored as a hash, refused with a reason when malformed, unknown,
revoked or expired; on both backends `[storage] url` selects (SQLite, PostgreSQL)."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest

from milliwatt.access.keys import AuthError, KeyStore, parse_duration
from milliwatt.access.limits import Limits


def test_a_key_authenticates_as_its_tenant(tmp_path: Path, storage_url: str | None) -> None:
    store = KeyStore(tmp_path, storage_url)
    key, info = store.create("acme", agents=("helper",), limits=Limits(rpm=30))
    assert key.startswith(f"mw_{info.id}_") and len(key) == 57
    principal = store.authenticate(key)
    assert (principal.tenant, principal.key_id, principal.limits.rpm) == ("acme", info.id, 30)
    assert principal.may_use("helper") and not principal.may_use("other")
    assert principal.scope("ada") == "acme:ada"


def test_only_a_hash_is_stored(tmp_path: Path, storage_url: str | None) -> None:
    store = KeyStore(tmp_path, storage_url)
    key, _ = store.create("acme")
    store.close()
    secret = key[14:]  # after "mw_<id>_"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert secret.encode() not in raw and key.encode() not in raw
    if storage_url is None:
        rows = sqlite3.connect(tmp_path / "access.db").execute("SELECT * FROM keys").fetchall()
    else:
        import psycopg

        with psycopg.connect(storage_url) as conn:
            rows = conn.execute("SELECT * FROM keys").fetchall()
    assert len(rows) == 1 and all(secret not in str(value) for value in rows[0])


@pytest.mark.parametrize(
    ("presented", "message"),
    [
        ("sk-proj-abc", "not a milliwatt key"),
        ("mw_short", "malformed"),
        ("mw_abcdefghij_" + "A" * 42, "malformed"),
        ("mw_abcdefghij_" + "A" * 43, "not known"),
    ],
)
def test_bad_keys_are_named(
    tmp_path: Path, storage_url: str | None, presented: str, message: str
) -> None:
    with pytest.raises(AuthError, match=message):
        KeyStore(tmp_path, storage_url).authenticate(presented)


def test_a_wrong_secret_for_a_real_id_is_unknown(tmp_path: Path, storage_url: str | None) -> None:
    store = KeyStore(tmp_path, storage_url)
    key, _ = store.create("acme")
    forged = key[:14] + ("B" if key[14] != "B" else "C") + key[15:]
    with pytest.raises(AuthError, match="not known"):
        store.authenticate(forged)


def test_revoked_and_expired_keys_are_refused_in_every_process(
    tmp_path: Path, storage_url: str | None
) -> None:
    store, other = (
        KeyStore(tmp_path, storage_url),
        KeyStore(tmp_path, storage_url),
    )  # two servers on one data dir
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


def test_bad_input_is_refused_and_nothing_stored(tmp_path: Path, storage_url: str | None) -> None:
    store = KeyStore(tmp_path, storage_url)
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


def test_two_nodes_on_one_database_see_each_others_keys(tmp_path: Path, postgres_url: str) -> None:
    """Two nodes with their own data directories and one `[storage] url`: a key created on
    one authenticates on the other, and its revocation holds there at the next request."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    node_a, node_b = KeyStore(tmp_path / "a", postgres_url), KeyStore(tmp_path / "b", postgres_url)
    assert not node_b.has_keys()
    key, info = node_a.create("acme", limits=Limits(rpm=30))
    assert node_b.has_keys() and [k.id for k in node_b.list("acme")] == [info.id]
    assert node_b.authenticate(key).limits.rpm == 30
    node_b.set_tenant_limits("acme", Limits(rpm=5))
    assert node_a.authenticate(key).tenant_limits.rpm == 5
    node_b.revoke(info.id)
    with pytest.raises(AuthError, match="revoked"):
        node_a.authenticate(key)
    assert not (tmp_path / "a" / "access.db").exists()  # nothing of it in either data directory


def test_doctor_names_a_database_it_cannot_read_keys_from(tmp_path: Path) -> None:
    from milliwatt.access.status import access_report
    from milliwatt.config import AccessConfig

    with socket.socket() as closed:  # a port nothing listens on: refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    report = access_report(tmp_path, AccessConfig(), f"postgresql://postgres@127.0.0.1:{port}/x")
    assert report["auth"].startswith("error: keys and operators cannot be read")
    assert "unavailable" in report["auth"]
