"""One Hyperscan literal scan over a value -> which `@pm` phrase lists occur in it.

Every phrase of every `@pm`/`@pmFromFile` list goes into one caseless literal database (a
few thousand literals in CRS, compiled in milliseconds, a few hundred KB), each phrase
reporting the lists it belongs to. The WAF's pattern set asks it alongside the RE2 set, so a
value's cached answer names the `@rx` patterns and the phrase lists that match it, and an
`@pm` rule none of whose values holds one of its phrases is skipped like an `@rx` rule.
Putting the phrases into the RE2 set instead cost about 50 MB of DFA states.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

from milliwatt.shield.waf.regexes import PhraseSet

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
        db = hyperscan.Database()
        db.compile(
            expressions=[p.encode("latin-1") for p in literals],
            ids=list(range(len(literals))),
            elements=len(literals),
            flags=hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH,
            literal=True,
        )
        self._db = db

    @property
    def active(self) -> bool:
        return self.covered > 0

    def mask(self, data: bytes) -> int:
        """The bits of the phrase lists with a phrase in `data` (latin-1 bytes of the value)."""
        if self._db is None:
            return 0
        found = [0]
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._db)
        bits = self._bits

        def on_match(phrase: int, start: int, end: int, flags: int, ctx: object) -> None:
            found[0] |= bits[phrase]

        with contextlib.suppress(hyperscan.error):
            self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        return found[0]
