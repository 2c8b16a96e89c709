"""What transactions of one WAF share: transformed values and pattern-set answers."""

from __future__ import annotations

SHARED_VALUE_MAX = 4096  # characters: larger values are cached per transaction only
# Pattern-set answers are bit masks (bit n: pattern or phrase list n matches), so a union over
# values is an integer `|` and a rule's check one `&`.
UNKNOWN = -1  # a cache miss (None is a cached answer: "ask each pattern"); masks are >= 0
Mask = int


class SharedCaches:
    """Transformed values and pattern-set answers, shared by all transactions of a WAF (header
    values repeat across requests). Bounded by entries and characters: the transformed values
    are emptied with the screens computed from them; the pattern-set answers and the answers
    per raw value (`slotted`) each on their own bound. The answers per raw value are what a
    request asks first; the transformed values behind them are needed again only for a new
    value."""

    MAX_ENTRIES = 50_000
    MAX_CHARS = 8 << 20  # of values held: a client sending unique values cannot grow them

    def __init__(self) -> None:
        self.transformed: dict[tuple[str, str], str] = {}
        self.matched: dict[str, Mask | None] = {}
        # (raw value, transformations and stages) -> the patterns it matches so transformed
        self.screened: dict[tuple[str, str], Mask | None] = {}
        # per variable's screen families (screen.py): raw value -> the rules it may fire
        self.slotted: dict[str, dict[str, Mask]] = {}
        self.slotted_entries = 0
        self.slotted_chars = 0
        self.matched_chars = 0
        self.chars = 0  # of transformed and screened values

    def note_slotted(self, chars: int) -> None:
        self.slotted_entries += 1
        self.slotted_chars += chars

    def clear(self) -> None:
        self.transformed.clear()
        self.matched.clear()
        self.screened.clear()
        self.slotted.clear()
        self.slotted_entries = self.slotted_chars = 0
        self.matched_chars = self.chars = 0

    def make_room(self) -> None:
        if self.chars > self.MAX_CHARS or len(self.transformed) > self.MAX_ENTRIES:
            self.transformed.clear()
            self.screened.clear()
            self.chars = 0
        if len(self.screened) > self.MAX_ENTRIES:
            self.screened.clear()
        if self.slotted_chars > self.MAX_CHARS or self.slotted_entries > self.MAX_ENTRIES:
            self.slotted.clear()
            self.slotted_entries = self.slotted_chars = 0
        if self.matched_chars > self.MAX_CHARS or len(self.matched) > self.MAX_ENTRIES:
            self.matched.clear()
            self.matched_chars = 0
