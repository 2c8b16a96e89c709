"""Credentials by reference: configuration names a secret, the value never enters a prompt.

A reference is `env:NAME` (an environment variable), `file:NAME` (a key of the secrets
file) or a bare `NAME` (the environment first, then the file). The secrets file is TOML of
string values, `<data_dir>/secrets.toml` unless MILLIWATT_SECRETS_FILE names another; it is
refused unless it is a regular file of this user that nobody else may read (mode 0600 or
stricter), as ssh does with private keys.

Every value resolved is handed to `shield.redaction`, so it is masked wherever it might
later appear: an answer, a tool argument, a log line.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path

from milliwatt.shield.redaction import remember_secret

FILE_ENV = "MILLIWATT_SECRETS_FILE"


class SecretError(ValueError):
    """A secret is missing or its file is unsafe; the message names it, never its value."""


def secrets_file(data_dir: Path) -> Path:
    named = os.environ.get(FILE_ENV)
    return Path(named) if named else data_dir / "secrets.toml"


def load_secrets_file(path: Path) -> dict[str, str]:
    """The file's secrets, after checking that only this user can read it."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise SecretError(f"secrets file {path} is not a regular file")
    if info.st_uid != os.geteuid():
        raise SecretError(f"secrets file {path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o077:
        mode = oct(stat.S_IMODE(info.st_mode))[2:]
        raise SecretError(
            f"secrets file {path} may be read by others (mode {mode}); run: chmod 600 {path}"
        )
    with path.open("rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise SecretError(f"secrets file {path} is not valid TOML: {exc}") from None
    wrong = [key for key, value in data.items() if not isinstance(value, str)]
    if wrong:
        raise SecretError(f"secrets file {path}: values must be strings: {', '.join(wrong)}")
    return data


class Secrets:
    """Resolves secret references for tools; values go to redaction as they are read."""

    def __init__(self, file: Path | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.file = file
        self._environ = os.environ if environ is None else environ
        self._loaded: dict[str, str] | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> Secrets:
        return cls(secrets_file(data_dir))

    def get(self, reference: str) -> str:
        kind, _, name = reference.rpartition(":")
        if kind not in ("", "env", "file") or not name:
            raise SecretError(f"secret reference {reference!r}: use env:NAME, file:NAME or NAME")
        value = None
        if kind in ("", "env"):
            value = self._environ.get(name)
        if value is None and kind in ("", "file"):
            value = self._file_values().get(name)
        if not value:
            where = {"env": "the environment", "file": f"{self.file}"}.get(
                kind, f"the environment or {self.file}"
            )
            raise SecretError(f"secret {name!r} is not set in {where}")
        remember_secret(value)
        return value

    def _file_values(self) -> dict[str, str]:
        if self._loaded is None:
            exists = self.file is not None and self.file.exists()
            self._loaded = load_secrets_file(self.file) if exists and self.file else {}
        return self._loaded
