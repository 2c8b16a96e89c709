"""Fitting a conversation into the model's context window.

The instructions (system message) and the newest turns are kept verbatim. Older turns are
replaced by one short note that lists, newest first, what the user asked in them (the first
line of each message, cut to 120 characters), as many as fit in an eighth of the window.
Nothing is deleted from the store: compaction shapes only the prompt. It costs no tokens
of generation, so it is predictable on a 135M model that would summarise poorly.
"""

from __future__ import annotations

from collections.abc import Sequence

from milliwatt.models.base import ContextOverflowError, Message, Model, ToolSpec

_NOTE_HEADER = "Earlier in this conversation (compacted), the user asked:"


def fit_to_context(
    messages: list[Message], model: Model, tools: Sequence[ToolSpec], reserve: int
) -> list[Message]:
    """Return messages that fit in the context with `reserve` tokens left for the reply."""
    budget = model.context_length - reserve
    if model.count_tokens(messages, tools) <= budget:
        return messages
    head = messages[:1] if messages and messages[0].role == "system" else []
    turns = _turns(messages[len(head) :])
    latest = turns.pop()  # the turn being answered is never dropped
    fixed = model.count_tokens([*head, *latest], tools)
    if fixed > budget:
        raise ContextOverflowError(fixed + reserve, model.context_length)
    kept: list[list[Message]] = []
    used = fixed
    note_budget = max(budget // 8, 0)
    while turns:
        cost = model.count_tokens(turns[-1])
        if used + cost + note_budget > budget:
            break
        kept.insert(0, turns.pop())
        used += cost
    note = _note(turns, model, min(note_budget, budget - used))
    return [*head, *note, *(m for turn in kept for m in turn), *latest]


def _turns(messages: Sequence[Message]) -> list[list[Message]]:
    """Group messages into turns, each starting at a user message, so that a tool call is
    never separated from its result."""
    turns: list[list[Message]] = []
    for m in messages:
        if m.role == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return turns


def _note(dropped: list[list[Message]], model: Model, budget: int) -> list[Message]:
    if not dropped:
        return []
    asked = [
        turn[0].content.strip().splitlines()[0][:120]
        for turn in reversed(dropped)
        if turn[0].role == "user" and turn[0].content.strip()
    ]
    lines: list[str] = []
    for line in asked:
        candidate = Message("system", "\n- ".join([_NOTE_HEADER, *lines, line]))
        if model.count_tokens([candidate]) > budget:
            break
        lines.append(line)
    if not lines:
        return []
    return [Message("system", "\n- ".join([_NOTE_HEADER, *lines]))]
