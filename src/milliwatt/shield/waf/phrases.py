"""One Hyperscan literal scan over a value -> which `@pm` phrase lists occur in it.

Every phrase of every `@pm`/`@pmFromFile` list goes into one caseless literal database (a
few thousand literals in CRS, compiled in milliseconds, a few hundred KB), each phrase
reporting the lists it belongs to. The WAF's pattern set asks it alongside the RE2 set, so a
value's cached answer names the `@rx` patterns and the phrase lists that match it, and an
`@pm` rule none of whose values holds one of its phrases is skipped like an `@rx` rule.
Putting the phrases into the RE2 set instead cost about 50 MB of DFA states.

The compiled database is kept on disk (`$MILLIWATT_WAF_CACHE`, else `~/.cache/milliwatt/waf`),
named by the hash of its phrases and the Hyperscan version, so a restart loads it instead of
compiling it again; an unreadable or stale file is compiled anew and replaced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from milliwatt.shield.waf.regexes import PhraseSet

log = logging.getLogger(__name__)
_FLAGS = "caseless,singlematch,literal"

try:  # x86-64 wheels only; without it each phrase list runs on its own
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    hyperscan = None  # type: ignore[assignment]


class PhraseScreen:
    """Phrase lists of the loaded rules, scanned together. `active` is False when Hyperscan
    is missing (those lists then run on their own, as before)."""

    def __init__(self, lists: Iterable[PhraseSet], first_id: int) -> None:
        """Lists are numbered from `first_id`, after the RE2 set's patterns: one answer's
        bit mask holds both."""
        self._db: Any = None
        self._local = threading.local()
        self.covered = 0
        unique = list(dict.fromkeys(lists))
        if hyperscan is None or not unique:
            return
        owners: dict[str, list[int]] = {}
        for index, phrases in enumerate(unique):
            phrases.set_id = first_id + index
            for phrase in phrases.phrases:
                owners.setdefault(phrase, []).append(phrases.set_id)
        bits = {p: sum(1 << i for i in set(ids)) for p, ids in owners.items()}
        self.covered = len(unique)
        if not owners:  # only empty lists: they never match, the empty answer says so
            return
        literals = list(owners)
        self._bits = [bits[p] for p in literals]
        self._db = _cached_database([p.encode("latin-1") for p in literals])

    @property
    def active(self) -> bool:
        return self.covered > 0

    def mask(self, data: bytes) -> int:
        """The bits of the phrase lists with a phrase in `data` (latin-1 bytes of the value)."""
        if self._db is None or not data:
            return 0
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._db)
        found = [0]  # the handler never stops the scan, so scan raises nothing to catch
        self._db.scan(data, match_event_handler=self._on_match, context=found, scratch=scratch)
        return found[0]

    def _on_match(self, phrase: int, start: int, end: int, flags: int, found: list[int]) -> None:
        found[0] |= self._bits[phrase]


def cache_dir() -> Path | None:
    """Where compiled databases are kept; None when there is no home to keep them in."""
    env = os.environ.get("MILLIWATT_WAF_CACHE")
    if env:
        return Path(env)
    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    except (RuntimeError, KeyError):  # a service user without a home directory
        return None
    return Path(base) / "milliwatt" / "waf"


def _cached_database(literals: list[bytes]) -> Any:
    version = getattr(hyperscan, "__version__", "")  # a new Hyperscan may compile differently
    digest = hashlib.sha256(f"{version}|{_FLAGS}".encode())
    for literal in literals:
        digest.update(len(literal).to_bytes(4, "big") + literal)
    folder = cache_dir()
    path = folder / f"phrases-{digest.hexdigest()[:32]}.hsdb" if folder else None
    try:
        if path is not None:
            return hyperscan.loadb(path.read_bytes(), hyperscan.HS_MODE_BLOCK)
    except FileNotFoundError:
        pass
    except (OSError, hyperscan.error) as exc:  # another platform's, or a torn file
        log.info("phrase database cache %s unusable (%s): compiling it", path, exc)
    db = hyperscan.Database()
    db.compile(
        expressions=literals,
        ids=list(range(len(literals))),
        elements=len(literals),
        flags=hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH,
        literal=True,
    )
    if path is None:
        return db
    try:  # written whole then renamed: a concurrent reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(hyperscan.dumpb(db))
        os.replace(partial, path)
    except OSError as exc:  # a read-only home: the next start compiles again
        log.info("phrase database not cached at %s: %s", path, exc)
    return db
