"""Regular expressions with PCRE meaning and no unbounded backtracking.

Each pattern is compiled with RE2 (linear time) in Latin-1 mode, so it runs over the same bytes
ModSecurity's PCRE sees; patterns RE2 cannot express (lookarounds, backreferences) go to the
`regex` module with a per-search time limit. One RE2 set of all patterns tells, in one pass over
a value, exactly which of them match it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import re2
import regex

if TYPE_CHECKING:
    from milliwatt.shield.waf.phrases import PhraseScreen

log = logging.getLogger(__name__)

# Hyperscan (for @pm phrase sets) ships x86-64 wheels only; elsewhere RE2 runs them
hyperscan: ModuleType | None
try:
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    hyperscan = None

FALLBACK_TIMEOUT_S = 0.05  # per search: a hostile value cannot stall a worker
_ASCII_LOWER = {c: c + 32 for c in range(65, 91)}


def ascii_lower(text: str) -> str:
    """ASCII-only lower case: Hyperscan's caseless matching folds nothing else."""
    return text.translate(_ASCII_LOWER)


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


# RE2 builds a set's DFA lazily and throws its states away when they outgrow the budget it
# was given; then every value costs states built anew. Measured on the CRS regression mix:
# paranoia 1 (189 patterns) at 64 MB took 108 us per value (median), at 256 MB 8 us;
# paranoia 4 (320 patterns) at 256 MB 800 us, at 512 MB 12 us. The budget is a ceiling, taken
# as states are built: after the mix the process had grown by about 130 MB (paranoia 1) and
# 350 MB (paranoia 4).
SET_MEMORY_PER_PATTERN = 1_700_000  # bytes
_UNANCHORED = re2._Anchor.UNANCHORED
_NO_MATCH = (-1, -1)


def _compile_re2(pattern: bytes, capture: bool) -> Any:
    opts = _re2_options()
    opts.never_capture = not capture  # without groups RE2 can answer from its DFA alone
    compiled = re2._re2.RE2(pattern, opts)
    if not compiled.ok():
        raise re2.error(compiled.error())
    return compiled


# patterns without groups that match any value whole: `.` matches newlines, `$` only the end
_WHOLE_VALUE = frozenset({"^.*$", ".*", "^.*", ".*$"})


class Regex:
    """A compiled pattern; `search` takes and returns latin-1 `str` (one char per byte)."""

    __slots__ = ("_groups", "_re2", "_regex", "engine", "flagged", "set_id", "source", "whole")

    def __init__(self, pattern: str, *, caseless: bool = False) -> None:
        self.source = to_bytes_pattern(pattern)
        self.set_id: int | None = None  # index in the WAF's PatternSet, when it holds this one
        self._re2: Any = None
        self._groups: Any = None
        self._regex: Any = None
        flagged = self.flagged = ("(?i)" if caseless else "") + self.source
        # `^.*$` (CRS reads every header name so): the whole value, with no regex run
        self.whole = self.source in _WHOLE_VALUE
        try:
            raw = flagged.encode("latin-1")
            self._re2 = _compile_re2(raw, capture=False)
            self._groups = _compile_re2(raw, capture=True)
            self.engine = "re2"
        except re2.error:
            try:
                self._regex = regex.compile(flagged, regex.S | regex.V0)
            except regex.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
            self.engine = "regex"

    def search(self, value: str) -> tuple[str, ...] | None:
        """The whole match and its groups ("" for groups that took no part), or None."""
        if self.whole:
            return (value,)
        if self._groups is not None:
            data = value.encode("latin-1")
            spans = self._groups.Match(_UNANCHORED, data, 0, len(data))
            if spans[0] == _NO_MATCH:
                return None
            return tuple("" if sp == _NO_MATCH else value[sp[0] : sp[1]] for sp in spans)
        try:
            m = self._regex.search(value, timeout=FALLBACK_TIMEOUT_S)
        except TimeoutError:
            log.warning("regex over %d bytes hit its time limit: %.60s", len(value), self.source)
            return None
        if m is None:
            return None
        return tuple(g or "" for g in (m.group(0), *m.groups()))

    def matches(self, value: str) -> bool:
        if self.whole:
            return True
        if self._re2 is not None:
            data = value.encode("latin-1")
            whole: tuple[int, int] = self._re2.Match(_UNANCHORED, data, 0, len(data))[0]
            return whole != _NO_MATCH
        try:
            return self._regex.search(value, timeout=FALLBACK_TIMEOUT_S) is not None
        except TimeoutError:
            log.warning("regex over %d bytes hit its time limit: %.60s", len(value), self.source)
            return False


class PatternSet:
    """One RE2 pass over a value -> exactly the ids of the patterns that match it.

    All RE2 patterns go into one RE2::Set (a single DFA over their union), so a value is
    scanned once for every `@rx` rule; a rule then only needs its own regex to read captures.
    """

    def __init__(self, patterns: Iterable[Regex], max_mem: int | None = None) -> None:
        """`max_mem`: bytes the DFA's states may take; by default SET_MEMORY_PER_PATTERN each."""
        self._set: Any = None
        self.covered = 0
        self.size = 0  # ids in use: the sentinel's and the patterns'
        self.phrases: PhraseScreen | None = None  # when the rules' @pm lists are screened too
        wanted = list(dict.fromkeys(r for r in patterns if r.engine == "re2" and r.set_id is None))
        opts = _re2_options()
        opts.never_capture = True
        if max_mem is None:
            max_mem = max(64 << 20, SET_MEMORY_PER_PATTERN * len(wanted))
        opts.max_mem = max_mem
        built = re2._re2.Set(_UNANCHORED, opts)
        # matches every value: when it is missing from an answer, the DFA ran out of memory
        self._sentinel: int = built.Add(b"")
        members: list[Regex] = []
        for rx in wanted:
            index = built.Add(rx.flagged.encode("latin-1"))
            if index < 0:
                continue
            rx.set_id = index
            members.append(rx)
        if not members or not built.Compile():
            for rx in members:
                rx.set_id = None
            return
        self._set = built
        self.covered = len(members)
        self.size = 1 + max(rx.set_id for rx in members if rx.set_id is not None)

    @property
    def active(self) -> bool:
        return self._set is not None

    def mask(self, value: str) -> int | None:
        """Bit n set when pattern (or phrase list) n matches; None when RE2 gave up (run each
        pattern instead). The sentinel's bit is left out."""
        data = value.encode("latin-1")
        found: list[int] = self._set.Match(data)
        if self._sentinel not in found:
            return None
        bits = 0
        for index in found:
            bits |= 1 << index
        bits &= ~(1 << self._sentinel)
        if self.phrases is not None:
            bits |= self.phrases.mask(data)
        return bits

    def matching(self, value: str) -> frozenset[int] | None:
        """Ids of the matching patterns and phrase lists; None when RE2 gave up."""
        bits = self.mask(value)
        if bits is None:
            return None
        return frozenset(i for i in range(bits.bit_length()) if bits >> i & 1)


class PhraseSet:
    """@pm: does any phrase occur in the value, case-insensitively (Hyperscan literal set)."""

    def __init__(self, phrases: list[str]) -> None:
        # ASCII-only folding, as ModSecurity's @pm and Hyperscan's caseless mode do
        self.phrases = sorted({ascii_lower(to_bytes_pattern(p)) for p in phrases if p})
        self.set_id: int | None = None  # this list's id in the WAF's PhraseScreen, if any
        self._db: Any = None  # compiled on first use: the WAF's phrase screen mostly answers
        self._lock = threading.Lock()
        self._local = threading.local()
        self._fallback: Any = None
        if self.phrases and hyperscan is None:
            # no Hyperscan on this platform: one RE2 alternation (ASCII-escaped bytes)
            alternation = "|".join("".join(f"\\x{ord(ch):02x}" for ch in p) for p in self.phrases)
            self._fallback = Regex(alternation, caseless=True)

    def _database(self) -> Any:
        assert hyperscan is not None  # else the RE2 fallback answers
        with self._lock:
            if self._db is None:
                db = hyperscan.Database()
                db.compile(
                    expressions=[p.encode("latin-1") for p in self.phrases],
                    ids=list(range(len(self.phrases))),
                    elements=len(self.phrases),
                    flags=hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH,
                    literal=True,
                )
                self._db = db
            return self._db

    def first_match(self, value: str) -> str | None:
        if not self.phrases:
            return None
        if self._fallback is not None:
            m = self._fallback.search(value)
            return m[0] if m else None
        assert hyperscan is not None  # else the RE2 fallback answered
        db = self._db if self._db is not None else self._database()
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(db)
        hit: list[int] = []

        def on_match(pattern_id: int, start: int, end: int, flags: int, ctx: object) -> int:
            hit.append(end - len(self.phrases[pattern_id]))
            hit.append(pattern_id)
            return 1  # stop at the first phrase found

        with contextlib.suppress(hyperscan.error):  # raised when the callback stops the scan
            db.scan(value.encode("latin-1"), match_event_handler=on_match, scratch=scratch)
        if not hit:
            return None
        start, pid = hit[0], hit[1]
        return value[start : start + len(self.phrases[pid])]
