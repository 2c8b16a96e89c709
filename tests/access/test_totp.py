"""TOTP as operators meet it: the RFC 4226 / 6238 vectors, single use, one step of clock
skew, failed-code limits, and two processes racing with the same code; on both backends
`[storage] url` selects (SQLite, PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from milliwatt.access.operators import MAX_FAILURES, STEP, OperatorStore, OtpError

DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


@pytest.fixture(scope="module")
def vectors(corpora: Path) -> dict[str, object]:
    return json.loads((corpora / "otp" / "rfc6238_rfc4226_vectors.json").read_text())


def test_rfc6238_totp_vectors(vectors: dict) -> None:  # type: ignore[type-arg]
    assert len(vectors["totp"]) >= 18
    for v in vectors["totp"]:
        secret = vectors["keys_base32"][v["algo"]]
        totp = pyotp.TOTP(secret, digits=v["digits"], digest=DIGESTS[v["algo"]])
        assert totp.at(v["unix_time"]) == v["expected"], v


def test_rfc4226_hotp_vectors(vectors: dict) -> None:  # type: ignore[type-arg]
    assert len(vectors["hotp"]) == 10
    for v in vectors["hotp"]:
        hotp = pyotp.HOTP(vectors["keys_base32"][v["algo"]], digits=v["digits"])
        assert hotp.at(v["counter"]) == v["expected"], v


def _enrolled(
    tmp_path: Path, url: str | None, name: str = "ada"
) -> tuple[OperatorStore, pyotp.TOTP]:
    store = OperatorStore(tmp_path, url)
    uri = store.enroll(name)
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    totp = pyotp.TOTP(secret)
    store.confirm(name, totp.at(time.time() - STEP))  # the previous step's code
    return store, totp


def test_a_code_is_accepted_once(tmp_path: Path, storage_url: str | None) -> None:
    store, totp = _enrolled(tmp_path, storage_url)
    now = time.time()
    code = totp.at(now)
    store.verify("ada", code, now)
    with pytest.raises(OtpError, match="used already"):
        store.verify("ada", code, now)
    with pytest.raises(OtpError, match="used already"):  # nor an older step's code after it
        store.verify("ada", totp.at(now - STEP), now)


def test_one_step_of_skew_passes_two_do_not(tmp_path: Path, storage_url: str | None) -> None:
    store, totp = _enrolled(tmp_path, storage_url)
    now = time.time()
    store.verify("ada", totp.at(now + STEP), now)  # the phone is one step ahead
    with pytest.raises(OtpError, match="ahead of this machine's clock"):
        store.verify("ada", totp.at(now + 3 * STEP), now)
    (tmp_path / "b").mkdir()
    store2, totp2 = _enrolled(tmp_path / "b", storage_url, "bob")
    with pytest.raises(OtpError, match="behind this machine's clock"):
        store2.verify("bob", totp2.at(now - 2 * STEP), now)


def test_bad_codes_are_named_and_then_limited(tmp_path: Path, storage_url: str | None) -> None:
    store, totp = _enrolled(tmp_path, storage_url)
    with pytest.raises(OtpError, match="6 digits"):
        store.verify("ada", "12a456")
    with pytest.raises(OtpError, match="no operator named 'eve'"):
        store.verify("eve", "123456")
    right = totp.now()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(OtpError, match="wrong code"):
            store.verify("ada", wrong)
    with pytest.raises(OtpError, match="too many wrong codes"):
        store.verify("ada", right)  # even the right code, until the window passes


def test_an_unconfirmed_operator_cannot_act(tmp_path: Path, storage_url: str | None) -> None:
    store = OperatorStore(tmp_path, storage_url)
    uri = store.enroll("cy")
    totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    with pytest.raises(OtpError, match="not confirmed"):
        store.verify("cy", totp.now())
    with pytest.raises(ValueError, match="already enrolled"):
        store.enroll("cy")
    with pytest.raises(ValueError, match="invalid operator name"):
        store.enroll("Robert'); DROP")


def _race(
    folder: str,
    url: str | None,
    code: str,
    now: float,
    results: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    store = OperatorStore(Path(folder), url)  # its own process: with PostgreSQL, its own node
    try:
        store.verify("ada", code, now)
        results.put("accepted")
    except OtpError as exc:
        results.put(str(exc))
    finally:
        store.close()
        if url is not None:
            from milliwatt.storage.postgres import close_database

            close_database(url)


def test_two_processes_with_one_code_one_wins(tmp_path: Path, storage_url: str | None) -> None:
    _, totp = _enrolled(tmp_path, storage_url)
    now = time.time()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    # SQLite: four processes on one data directory; PostgreSQL: four nodes, each its own
    folders = [tmp_path if storage_url is None else tmp_path / f"node{i}" for i in range(4)]
    procs = []
    for folder in folders:
        folder.mkdir(exist_ok=True)
        args = (str(folder), storage_url, totp.at(now), now, results)
        procs.append(context.Process(target=_race, args=args))
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert outcomes.count("accepted") == 1, outcomes
    assert all("used already" in o for o in outcomes if o != "accepted"), outcomes
