"""Watching a reply while it streams: stop sequences, loops and empty runs.

Small models fall into loops (the same sentence again and again, "ha ha ha ..." to the token
limit) or emit only whitespace. Waiting for the token limit costs seconds and gives the user
the loop; the guard sees the text as it comes and says when to stop, keeping only what came
before the repetition. Text is shown as it comes, but what may be a repetition or the start
of a stop sequence is held until it is told apart, so neither is ever shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

Stopped = Literal["stop sequence", "loop", "empty"]

# a sentence ends at . ! ? or a line break, with any closing quotes or brackets after it
_SENTENCE_END = re.compile(r"[.!?\n]+[\"'”’)\]]*(?=\s)|\n")
MIN_REPEAT_CHARS = 16  # a sentence this long seen twice is a loop; shorter ones thrice
MAX_PERIOD = 60  # the longest repeating block looked for inside a sentence
MIN_PERIODIC_CHARS = 40  # repeated blocks must cover this much before it counts as a loop
MIN_HELD_REPEAT = 4  # "ll" in "hill" is shown; "la la" waits to see whether it goes on
EMPTY_CHUNKS = 24  # this many chunks of nothing but whitespace: an empty reply


class StreamGuard:
    """Fed the reply's text chunks; releases the part that may be shown and says when to stop.

    After `stopped` is set, `text` is the reply to keep: everything before the stop
    sequence, or before the first repetition of a loop. Text is shown as it comes, except
    what may still turn out to be a repetition (a sentence that so far matches one already
    seen, a block repeated at the end) or the start of a stop sequence: that waits until
    it is told apart. A loop is therefore never shown, and the first token of an ordinary
    reply is shown at once.
    """

    def __init__(self, stop: Sequence[str] = ()) -> None:
        self.stop_sequences = tuple(s for s in stop if s)
        self.stopped: Stopped | None = None
        self.chunks = 0
        self._released = ""  # shown to the user
        self._head = ""  # the shown start of the sentence being written
        self._pending = ""  # received, not yet shown: the rest of that sentence
        self._seen: dict[str, int] = {}  # normalised sentences and how often they came

    @property
    def text(self) -> str:
        kept = self._released + ("" if self.stopped == "loop" else self._pending)
        return kept.rstrip() if self.stopped else kept

    def feed(self, chunk: str) -> str:
        """Take a chunk; return the text that may be shown now ("" while holding back)."""
        if self.stopped is not None or not chunk:
            return ""
        self.chunks += 1
        self._pending += chunk
        if self._cut_at_stop_sequence():  # what came before it is the reply's end
            rest, self._pending = self._pending, ""
            self._released += rest
            return rest
        if not (self._released + self._pending).strip():
            if self.chunks >= EMPTY_CHUNKS:
                self.stopped = "empty"
            return ""
        return self._release()

    def finish(self) -> str:
        """The stream ended: the text still held back. A reply cut by the token limit keeps
        what was shown of its last sentence (it streamed already)."""
        if self.stopped == "loop":
            return ""
        rest, self._pending = self._pending, ""
        self._released += rest
        return rest

    def _cut_at_stop_sequence(self) -> bool:
        for stop in self.stop_sequences:
            at = self._pending.find(stop)
            if at >= 0:
                self._pending = self._pending[:at].rstrip()
                self.stopped = "stop sequence"
                return True
        return False

    def _release(self) -> str:
        out: list[str] = []
        while True:  # each sentence that has ended: a repeat ends the reply before it
            current = self._head + self._pending
            end = _SENTENCE_END.search(current, 0, len(self._head) + self._safe())
            if end is None:
                break
            sentence = current[: end.end()]
            if self._repeats(sentence):
                self.stopped = "loop"
                return "".join(out)
            unshown = sentence[len(self._head) :]
            self._released += unshown
            out.append(unshown)
            self._head, self._pending = "", current[end.end() :]
        if (cut := periodic_tail(current)) is not None:
            kept = self._pending[: max(0, cut - len(self._head))].rstrip()
            self.stopped = "loop"
            self._pending = ""
            self._released += kept
            out.append(kept)
            return "".join(out)
        shown = self._showable(current)
        if shown > 0:
            free, self._pending = self._pending[:shown], self._pending[shown:]
            self._released += free
            self._head += free
            out.append(free)
        return "".join(out)

    def _showable(self, current: str) -> int:
        """How much of the held part of the sentence in progress may be shown now."""
        key = _key(current)
        if not key or any(seen.startswith(key) for seen in self._seen):
            return 0  # it may yet be a sentence said before (or has no word yet)
        hold_from = repetition_start(current) - len(self._head)
        return max(0, min(self._safe(), hold_from))

    def _safe(self) -> int:
        """How much of the held text cannot be the start of a stop sequence."""
        for stop in self.stop_sequences:
            for size in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:size]):
                    return len(self._pending) - size
        return len(self._pending)

    def _repeats(self, sentence: str) -> bool:
        key = _key(sentence)
        if not key:
            return False
        count = self._seen.get(key, 0) + 1
        self._seen[key] = count
        return count >= (2 if len(key) >= MIN_REPEAT_CHARS else 3)


def _key(text: str) -> str:
    """A sentence as compared for repeats: lower case, words only."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def repetition_start(text: str) -> int:
    """Where a block seen at least twice in a row at the end of `text` begins (len(text)
    when none): from there the text may be the start of a loop."""
    start = len(text)
    for period in range(1, min(MAX_PERIOD, len(text) // 2) + 1):
        block = text[-period:]
        if block.strip() and text.endswith(block * 2):
            copies = 2
            while text.endswith(block * (copies + 1)):
                copies += 1
            if copies * period >= MIN_HELD_REPEAT:
                start = min(start, len(text) - copies * period)
    return start


def periodic_tail(text: str) -> int | None:
    """Where a block repeated to the end of `text` starts its second copy, if the repeats
    cover at least MIN_PERIODIC_CHARS ("ha ha ha ha ...", "1, 2, 1, 2, ..."); else None."""
    for period in range(1, MAX_PERIOD + 1):
        block = text[-period:]
        if len(text) < 2 * period or not block.strip():
            continue
        copies = 1
        while text.endswith(block * (copies + 1)):
            copies += 1
        if copies >= 3 and copies * period >= MIN_PERIODIC_CHARS:
            return len(text) - (copies - 1) * period
    return None
