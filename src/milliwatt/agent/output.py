"""What leaves the agent is scanned first: keys, tokens, card numbers and known secrets are
masked in the streamed text and in the answer (`shield.redaction`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator

from milliwatt.agent.events import RunEvent, RunResult, TextDelta
from milliwatt.shield.redaction import StreamRedactor, redact_output


def redacted(
    events: Generator[RunEvent, None, RunResult],
) -> Generator[RunEvent, None, RunResult]:
    """The same events, text redacted as it streams; a secret cut across pieces still is."""
    redactor = StreamRedactor()
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as done:
                tail = redactor.flush()
                if tail:
                    yield TextDelta(tail)
                return done.value  # type: ignore[no-any-return]
            if isinstance(event, TextDelta):
                safe = redactor.feed(event.text)
                if safe:
                    yield TextDelta(safe)
                continue
            tail = redactor.flush()  # text before a tool call goes out before it
            if tail:
                yield TextDelta(tail)
            yield event
    finally:
        events.close()


def redacted_result(result: RunResult) -> RunResult:
    return dataclasses.replace(result, answer=redact_output(result.answer))
