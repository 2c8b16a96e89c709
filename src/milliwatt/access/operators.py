"""Operators and their TOTP second factor (RFC 6238, by pyotp).

An operator is enrolled with a new secret (shown once, as an otpauth URI and a QR code) and
becomes active once a first code from the authenticator app confirms it. A code is accepted
within one 30-second step of the server's clock either way, and only once: the step of the
last accepted code is stored, and a code of that step or an earlier one is refused, also
when two processes check the same code at once (one conditional UPDATE). Failed codes are
counted per operator: past MAX_FAILURES within FAILURE_WINDOW, codes are refused unchecked
until the window has passed. The secrets are in the data directory's 0600 database, or in
the PostgreSQL database of `[storage] url` (access_db.py), where the same UPDATE makes a code
single-use across nodes: TOTP needs the secret itself, so unlike API keys it cannot be
stored as a hash.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyotp

from milliwatt.access.access_db import DATABASE_NAME, open_access_database
from milliwatt.errors import OtpError as OtpError
from milliwatt.errors import OtpLockedError

ISSUER = "milliwatt"
STEP = 30
ACCEPTED_DRIFT = 1  # steps either way (RFC 6238 section 5.2 suggests at most one)
SKEW_PROBE = 10  # steps searched only to tell "your clock is off" from "wrong code"
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0
_NAME_FORM = re.compile(r"[a-z][a-z0-9_.-]{0,31}\Z")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER NOT NULL DEFAULT -1,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS otp_failures (
    operator TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS otp_failures_by_operator ON otp_failures(operator, time);
"""


@dataclass(frozen=True)
class Operator:
    name: str
    active: bool
    created: float


def check_operator_name(name: str) -> str:
    if not _NAME_FORM.match(name):
        raise ValueError(
            f"invalid operator name {name[:40]!r}: 1-32 lower-case letters, digits, _ . or -"
        )
    return name


class OperatorStore:
    def __init__(self, data_dir: Path, storage_url: str | None = None) -> None:
        self.path = Path(data_dir) / DATABASE_NAME
        self._db = open_access_database(data_dir, storage_url, _SCHEMA)

    def enroll(self, name: str) -> str:
        """A new, not yet active operator; returns the otpauth:// URI (the secret within)."""
        check_operator_name(name)
        secret = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length
        added = self._db.write(
            ("INSERT INTO operators (name, secret, created) VALUES (?, ?, ?) "
             "ON CONFLICT (name) DO NOTHING", (name, secret, time.time())),
        )  # fmt: skip
        if not added:
            raise ValueError(f"an operator named {name!r} is already enrolled")
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)

    def confirm(self, name: str, code: str, now: float | None = None) -> None:
        """Activate an enrolled operator with a first code from their authenticator."""
        self._check(name, code, now, require_active=False)
        self._db.write(("UPDATE operators SET active = TRUE WHERE name = ?", (name,)))

    def verify(self, name: str, code: str, now: float | None = None) -> None:
        """Accept `code` for `name` once, or raise OtpError saying why not."""
        self._check(name, code, now, require_active=True)

    def _check(self, name: str, code: str, now: float | None, *, require_active: bool) -> None:
        now = time.time() if now is None else now
        rows = self._db.query(
            "SELECT secret, active, last_step FROM operators WHERE name = ?", (name,)
        )
        failures = self._db.query(
            'SELECT COUNT(*), MIN("time") FROM otp_failures WHERE operator = ? AND "time" > ?',
            (name, now - FAILURE_WINDOW),
        )[0]
        if not rows:
            raise OtpError(f"no operator named {name!r} is enrolled (`milliwatt admin enroll`)")
        secret, active, _last_step = rows[0]
        if require_active and not active:
            raise OtpError(f"operator {name!r} is not confirmed yet (`milliwatt admin confirm`)")
        if failures[0] >= MAX_FAILURES:
            wait = failures[1] + FAILURE_WINDOW - now
            raise OtpLockedError(
                f"too many wrong codes for operator {name!r}; try again in {wait:.0f} s"
            )
        code = code.strip().replace(" ", "")
        if not re.fullmatch(r"\d{6}", code):
            self._fail(name, now)
            raise OtpError("a TOTP code is 6 digits")
        step = self._matching_step(secret, code, now)
        if step is None:
            self._fail(name, now)
            raise OtpError(f"wrong code for operator {name!r}")
        current = int(now // STEP)
        if abs(step - current) > ACCEPTED_DRIFT:
            self._fail(name, now)
            raise OtpError(
                f"the code is for {abs(step - current) * STEP} s "
                f"{'ahead of' if step > current else 'behind'} this machine's clock, more than "
                f"one {STEP}-second step: check the clocks of both devices"
            )
        # one conditional UPDATE: of processes or nodes checking one code at once, one wins
        taken = self._db.write(
            ("UPDATE operators SET last_step = ? WHERE name = ? AND last_step < ?",
             (step, name, step)),
        )  # fmt: skip
        if not taken:
            self._fail(name, now)
            raise OtpError("this code was used already; wait for the next one")

    def _matching_step(self, secret: str, code: str, now: float) -> int | None:
        totp = pyotp.TOTP(secret)
        current = int(now // STEP)
        # nearest steps first: a code matching both a near and a far step is the near one's
        for offset in sorted(range(-SKEW_PROBE, SKEW_PROBE + 1), key=abs):
            if hmac.compare_digest(totp.at((current + offset) * STEP), code):
                return current + offset
        return None

    def _fail(self, name: str, now: float) -> None:
        self._db.write(
            ('INSERT INTO otp_failures (operator, "time") VALUES (?, ?)', (name, now)),
            ('DELETE FROM otp_failures WHERE "time" < ?', (now - FAILURE_WINDOW,)),
        )

    def list(self) -> list[Operator]:
        rows = self._db.query("SELECT name, active, created FROM operators ORDER BY created")
        return [Operator(r[0], bool(r[1]), r[2]) for r in rows]

    def any_active(self) -> bool:
        return any(o.active for o in self.list())

    def remove(self, name: str) -> None:
        if not self._db.write(("DELETE FROM operators WHERE name = ?", (name,))):
            raise ValueError(f"no operator named {name!r}")

    def close(self) -> None:
        self._db.close()
