"""The everyday prompt set: does the default agent give an answer to ordinary requests?

Rows are JSON lines {id, category, split, prompt, ...}; `split` is "tuning" (thresholds are
set on it) or "held_out" (reported, never tuned on). A row passes when the turn ended with an
answer (no step or budget stop), the answer is non-empty and not a refusal to answer, and it
stayed within the token and time bounds. Rows with `"tools": "none"` must call no tool; rows
with `"route": "tool"` must be answered by `tool` through the router, and contain each of
`contains` ("{days_to:MM-DD}" stands for the days from today to that date's next occurrence).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from milliwatt.agent.cascade import NO_ANSWER

Split = Literal["tuning", "held_out"]
SPLITS: tuple[Split, ...] = ("tuning", "held_out")
MAX_COMPLETION_TOKENS = 200  # over all model calls of the turn
MAX_SECONDS = 30.0  # one llama.cpp thread on a shared CPU
# how the agent says it gave up; an answer containing one is not an answer
GIVE_UP = (NO_ANSWER.lower(), "cannot answer this reliably", "without a final answer")
_DAYS_TO = re.compile(r"\{days_to:(\d{2})-(\d{2})\}")


class EverydayError(ValueError):
    """A line of the prompt set is not a valid row; the message names the line."""


@dataclass(frozen=True)
class Row:
    id: str
    category: str
    split: Split
    prompt: str
    route: str | None = None  # "tool": the router must answer
    tool: str | None = None
    contains: tuple[str, ...] = ()
    no_tools: bool = False


@dataclass(frozen=True)
class Turn:
    """What the agent did with one prompt."""

    answer: str
    stop: str
    route: str
    tools: tuple[str, ...]
    completion_tokens: int
    seconds: float


@dataclass
class Verdict:
    row: Row
    turn: Turn
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.row.id,
            "category": self.row.category,
            "split": self.row.split,
            "prompt": self.row.prompt,
            "answer": self.turn.answer,
            "stop": self.turn.stop,
            "route": self.turn.route,
            "tools": list(self.turn.tools),
            "completion_tokens": self.turn.completion_tokens,
            "seconds": round(self.turn.seconds, 2),
            "passed": self.passed,
            "failures": self.failures,
        }


def default_prompts() -> Path:
    return Path(str(resources.files("milliwatt.evals") / "everyday.jsonl"))


def load_rows(path: Path) -> list[Row]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            split = data["split"]
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            rows.append(
                Row(
                    id=str(data["id"]),
                    category=str(data["category"]),
                    split=split,
                    prompt=str(data["prompt"]),
                    route=data.get("route"),
                    tool=data.get("tool"),
                    contains=tuple(str(c) for c in data.get("contains", ())),
                    no_tools=data.get("tools") == "none",
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise EverydayError(f"{path}:{number}: {exc}") from None
    return rows


def expected_text(pattern: str, today: date) -> str:
    """Fill "{days_to:MM-DD}" with the days from today to that day's next occurrence."""

    def days(m: re.Match[str]) -> str:
        month, day = int(m.group(1)), int(m.group(2))
        target = date(today.year, month, day)
        if target < today:
            target = date(today.year + 1, month, day)
        return str((target - today).days)

    return _DAYS_TO.sub(days, pattern)


def check(
    row: Row,
    turn: Turn,
    *,
    today: date,
    max_tokens: int = MAX_COMPLETION_TOKENS,
    max_seconds: float = MAX_SECONDS,
) -> Verdict:
    verdict = Verdict(row, turn)
    fail = verdict.failures.append
    if turn.stop != "answer":
        fail(f"stopped: {turn.stop}")
    if not turn.answer.strip():
        fail("empty answer")
    if any(phrase in turn.answer.lower() for phrase in GIVE_UP):
        fail("no real answer")
    if turn.completion_tokens > max_tokens:
        fail(f"{turn.completion_tokens} tokens > {max_tokens}")
    if turn.seconds > max_seconds:
        fail(f"{turn.seconds:.1f} s > {max_seconds:g} s")
    if row.no_tools and turn.tools:
        fail(f"called {', '.join(turn.tools)}")
    if row.route == "tool" and (turn.route != "tool" or row.tool not in turn.tools):
        fail(f"not answered by {row.tool} (route {turn.route}, tools {list(turn.tools)})")
    for wanted in row.contains:
        text = expected_text(wanted, today)
        if text.lower() not in turn.answer.lower():
            fail(f"answer lacks {text!r}")
    return verdict


def summary(verdicts: list[Verdict]) -> dict[str, Any]:
    """Pass rate overall, per split and per category, and how many turns hit the step limit."""

    def rate(chosen: list[Verdict]) -> float:
        return round(sum(v.passed for v in chosen) / len(chosen), 4) if chosen else 0.0

    splits = {s: [v for v in verdicts if v.row.split == s] for s in SPLITS}
    categories = sorted({v.row.category for v in verdicts})
    return {
        "rows": len(verdicts),
        "passed": sum(v.passed for v in verdicts),
        "pass_rate": rate(verdicts),
        **{f"{s}_rows": len(chosen) for s, chosen in splits.items() if chosen},
        **{f"{s}_pass_rate": rate(chosen) for s, chosen in splits.items() if chosen},
        "step_stops": sum(v.turn.stop == "steps" for v in verdicts),
        "empty_answers": sum(not v.turn.answer.strip() for v in verdicts),
        "completion_tokens": sum(v.turn.completion_tokens for v in verdicts),
        "seconds": round(sum(v.turn.seconds for v in verdicts), 1),
        "categories": {c: rate([v for v in verdicts if v.row.category == c]) for c in categories},
    }
