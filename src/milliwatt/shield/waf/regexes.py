"""Regular expressions with PCRE meaning and no unbounded backtracking.

Each pattern is compiled with RE2 (linear time) in Latin-1 mode, so it runs over the same bytes
ModSecurity's PCRE sees; patterns RE2 cannot express (lookarounds, backreferences) go to the
`regex` module with a per-search time limit. A Hyperscan database of all patterns, compiled in
prefilter mode, tells in one pass over a value which patterns can possibly match it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

import re2
import regex

log = logging.getLogger(__name__)

try:  # Hyperscan ships x86-64 wheels only; elsewhere every pattern runs in full
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    hyperscan = None

FALLBACK_TIMEOUT_S = 0.05  # per search: a hostile value cannot stall a worker


def _re2_options() -> Any:
    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1
    opts.log_errors = False
    opts.dot_nl = True  # ModSecurity compiles with PCRE_DOTALL
    opts.max_mem = 64 << 20  # some CRS patterns are large alternations
    return opts


_OPTIONS = _re2_options()


def to_bytes_pattern(pattern: str) -> str:
    """A pattern as written (UTF-8 text) -> one character per byte, matching how values are held."""
    return pattern.encode("utf-8", "surrogateescape").decode("latin-1")


class Regex:
    """A compiled pattern; `search` takes and returns latin-1 `str` (one char per byte)."""

    __slots__ = ("_re2", "_regex", "engine", "prefilter_id", "source")

    def __init__(self, pattern: str, *, caseless: bool = False) -> None:
        self.source = to_bytes_pattern(pattern)
        self.prefilter_id: int | None = None
        self._re2: Any = None
        self._regex: Any = None
        flagged = ("(?i)" if caseless else "") + self.source
        try:
            self._re2 = re2.compile(flagged.encode("latin-1"), _OPTIONS)
            self.engine = "re2"
        except re2.error:
            try:
                self._regex = regex.compile(flagged, regex.S | regex.V0)
            except regex.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
            self.engine = "regex"

    def search(self, value: str) -> tuple[str, ...] | None:
        """The whole match and its groups ("" for groups that took no part), or None."""
        if self._re2 is not None:
            m = self._re2.search(value.encode("latin-1"))
            if m is None:
                return None
            return tuple((g or b"").decode("latin-1") for g in (m.group(0), *m.groups()))
        try:
            m = self._regex.search(value, timeout=FALLBACK_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "regex search over %d bytes hit its time limit: %.60s", len(value), self.source
            )
            return None
        if m is None:
            return None
        return tuple(g or "" for g in (m.group(0), *m.groups()))

    def matches(self, value: str) -> bool:
        if self._re2 is not None:
            return self._re2.search(value.encode("latin-1")) is not None
        try:
            return self._regex.search(value, timeout=FALLBACK_TIMEOUT_S) is not None
        except TimeoutError:
            log.warning(
                "regex search over %d bytes hit its time limit: %.60s", len(value), self.source
            )
            return False


class Prefilter:
    """One Hyperscan pass over a value -> the ids of the patterns that may match it."""

    def __init__(self, patterns: Iterable[Regex]) -> None:
        self._db: Any = None
        self._local = threading.local()
        self.covered = 0
        if hyperscan is None:
            return
        flags = (
            hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_PREFILTER
        )
        accepted: list[tuple[bytes, Regex]] = []
        for rx in patterns:
            expr = rx.source.encode("latin-1")
            if rx.matches(""):
                continue  # matches everything: nothing to filter
            try:
                probe = hyperscan.Database()
                probe.compile(expressions=[expr], ids=[0], elements=1, flags=[flags])
            except hyperscan.error as exc:
                log.debug("no prefilter for %.60s: %s", rx.source, exc)
                continue
            accepted.append((expr, rx))
        if not accepted:
            return
        for number, (_, rx) in enumerate(accepted):
            rx.prefilter_id = number
        self._db = hyperscan.Database()
        self._db.compile(
            expressions=[e for e, _ in accepted],
            ids=list(range(len(accepted))),
            elements=len(accepted),
            flags=[flags] * len(accepted),
        )
        self.covered = len(accepted)

    @property
    def active(self) -> bool:
        return self._db is not None

    def candidates(self, value: str) -> set[int]:
        found: set[int] = set()
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._db)

        def on_match(pattern_id: int, start: int, end: int, flags: int, ctx: object) -> None:
            found.add(pattern_id)

        self._db.scan(value.encode("latin-1"), match_event_handler=on_match, scratch=scratch)
        return found


class PhraseSet:
    """@pm: does any phrase occur in the value, case-insensitively (Hyperscan literal set)."""

    def __init__(self, phrases: list[str]) -> None:
        self.phrases = sorted({to_bytes_pattern(p).lower() for p in phrases if p})
        self._db: Any = None
        self._local = threading.local()
        self._fallback: Any = None
        if not self.phrases:
            return
        if hyperscan is not None:
            self._db = hyperscan.Database()
            self._db.compile(
                expressions=[p.encode("latin-1") for p in self.phrases],
                ids=list(range(len(self.phrases))),
                elements=len(self.phrases),
                flags=hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH,
                literal=True,
            )
        else:  # pragma: no cover - depends on the platform
            alternation = "|".join(re2.escape(p) for p in self.phrases)
            self._fallback = Regex(alternation, caseless=True)

    def first_match(self, value: str) -> str | None:
        if not self.phrases:
            return None
        if self._db is None:
            m = self._fallback.search(value)
            return m[0] if m else None
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._db)
        hit: list[int] = []

        def on_match(pattern_id: int, start: int, end: int, flags: int, ctx: object) -> int:
            hit.append(end - len(self.phrases[pattern_id]))
            hit.append(pattern_id)
            return 1  # stop at the first phrase found

        try:
            self._db.scan(value.encode("latin-1"), match_event_handler=on_match, scratch=scratch)
        except hyperscan.error:
            pass  # raised when the callback stops the scan
        if not hit:
            return None
        start, pid = hit[0], hit[1]
        return value[start : start + len(self.phrases[pid])]
