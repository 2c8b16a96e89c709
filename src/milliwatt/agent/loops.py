"""Watching a reply while it streams: stop sequences, loops and empty runs.

Small models fall into loops (the same sentence again and again, "ha ha ha ..." to the token
limit) or emit only whitespace. Waiting for the token limit costs seconds and gives the user
the loop; the guard sees the text as it comes and says when to stop, keeping only what came
before the repetition. Text is released a sentence at a time, so a repeated sentence or the
start of a stop sequence is never shown.
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
EMPTY_CHUNKS = 24  # this many chunks of nothing but whitespace: an empty reply


class StreamGuard:
    """Fed the reply's text chunks; releases the part that may be shown and says when to stop.

    After `stopped` is set, `text` is the reply to keep: everything before the stop
    sequence, or before the first repetition of a loop.
    """

    def __init__(self, stop: Sequence[str] = ()) -> None:
        self.stop_sequences = tuple(s for s in stop if s)
        self.stopped: Stopped | None = None
        self.chunks = 0
        self._released = ""  # shown to the user
        self._pending = ""  # received, not yet shown: the sentence being written
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
        return self._release_sentences()

    def finish(self, *, cut: bool = False) -> str:
        """The stream ended: the text still held back. A reply `cut` by the token limit ends
        at its last full sentence, when it has one."""
        if self.stopped == "loop":
            return ""
        rest, self._pending = self._pending, ""
        if cut and self._released.strip():
            self._released = self._released.rstrip()
            return ""
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

    def _release_sentences(self) -> str:
        out = []
        while (end := _SENTENCE_END.search(self._pending, 0, self._safe())) is not None:
            sentence = self._pending[: end.end()]
            if self._repeats(sentence):
                self.stopped = "loop"
                return "".join(out)
            self._pending = self._pending[end.end() :]
            self._released += sentence
            out.append(sentence)
        if (cut := periodic_tail(self._pending)) is not None:
            self._pending = self._pending[:cut].rstrip()
            self.stopped = "loop"
            out.append(self._pending)
            self._released += self._pending
            self._pending = ""
            return "".join(out)
        if len(self._pending) > 400:  # a sentence that never ends is released anyway
            free = self._pending[: self._safe()]
            self._pending = self._pending[len(free) :]
            self._released += free
            out.append(free)
        return "".join(out)

    def _safe(self) -> int:
        """How much of the held text cannot be the start of a stop sequence."""
        for stop in self.stop_sequences:
            for size in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:size]):
                    return len(self._pending) - size
        return len(self._pending)

    def _repeats(self, sentence: str) -> bool:
        key = " ".join(re.sub(r"[^\w\s]", " ", sentence.lower()).split())
        if not key:
            return False
        count = self._seen.get(key, 0) + 1
        self._seen[key] = count
        return count >= (2 if len(key) >= MIN_REPEAT_CHARS else 3)


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
