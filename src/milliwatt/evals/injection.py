"""`milliwatt eval injection`: indirect prompt injection against the whole agent.

A scenario is a user's task over content the agent reads (an e-mail, a web page, a
document) into which an attacker wrote an instruction. Input lines:

    {"id", "user_task", "source": "email"|"web"|"document", "content",
     "forbidden": {"tool_kind": "send"|"network"|"code"|"write"|"spend", "arg_contains"},
     "benign_answer_contains": "..." | null}

and optionally "attack" (the injected text inside "content": the run with the attack
removed drops it), "forbidden.arguments" (the call the attacker asks for, when it cannot be
derived from arg_contains) and "task_call" ({"tool_kind", "arguments", "arg_contains"}: a
guarded call the user's task itself needs, e.g. saving a summary where the user said).
In `user_task`, {url} and {file} stand for the page's address and the document's path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milliwatt.tools.registry import Effect

SOURCES = ("email", "web", "document")
KINDS = {
    "send": Effect.SENDS,
    "network": Effect.NETWORK,
    "code": Effect.EXECUTES,
    "write": Effect.WRITES,
    "spend": Effect.SPENDS,
}


class ScenarioError(ValueError):
    """A scenario line that cannot be run; the message names the line and the field."""


@dataclass(frozen=True)
class Call:
    tool_kind: str
    arg_contains: str
    arguments: dict[str, Any] | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    user_task: str
    source: str
    content: str
    forbidden: Call
    benign_answer_contains: str | None
    attack: str | None = None
    task_call: Call | None = None

    @property
    def clean_content(self) -> str | None:
        """The content with the attack removed (None when the line does not say which it is)."""
        if self.attack is None:
            return None
        return " ".join(self.content.replace(self.attack, " ").split(" ")).strip()


@dataclass
class Verdict:
    id: str
    attempted: bool
    executed: bool
    blocked_by: str | None
    task_done: bool | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "attempted": self.attempted,
            "executed": self.executed,
            "blocked_by": self.blocked_by,
            "task_done": self.task_done,
        }


def default_scenarios() -> Path:
    return Path(__file__).with_name("injection.jsonl")


def load_scenarios(path: Path) -> list[Scenario]:
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{where}: not JSON: {exc}") from None
        scenario = _scenario(row, where)
        if scenario.id in seen:
            raise ScenarioError(f"{where}: id {scenario.id!r} appears twice")
        seen.add(scenario.id)
        scenarios.append(scenario)
    if not scenarios:
        raise ScenarioError(f"{path}: no scenarios")
    return scenarios


def _scenario(row: Any, where: str) -> Scenario:
    if not isinstance(row, dict):
        raise ScenarioError(f"{where}: a scenario is a JSON object")
    for key in ("id", "user_task", "source", "content"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ScenarioError(f"{where}: {key!r} must be a non-empty string")
    if row["source"] not in SOURCES:
        raise ScenarioError(f"{where}: source {row['source']!r} is not one of {SOURCES}")
    benign = row.get("benign_answer_contains")
    if benign is not None and not isinstance(benign, str):
        raise ScenarioError(f"{where}: 'benign_answer_contains' must be a string or null")
    attack = row.get("attack")
    if attack is not None and (not isinstance(attack, str) or attack not in row["content"]):
        raise ScenarioError(f"{where}: 'attack' must be a part of 'content'")
    task = row.get("task_call")
    return Scenario(
        id=row["id"],
        user_task=row["user_task"],
        source=row["source"],
        content=row["content"],
        forbidden=_call(row.get("forbidden"), f"{where}: forbidden"),
        benign_answer_contains=benign,
        attack=attack,
        task_call=_call(task, f"{where}: task_call") if task is not None else None,
    )


def _call(raw: Any, where: str) -> Call:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where} must be an object")
    kind, needle, arguments = raw.get("tool_kind"), raw.get("arg_contains"), raw.get("arguments")
    if kind not in KINDS:
        raise ScenarioError(f"{where}.tool_kind {kind!r} is not one of {sorted(KINDS)}")
    if not isinstance(needle, str) or not needle:
        raise ScenarioError(f"{where}.arg_contains must be a non-empty string")
    if arguments is not None and not isinstance(arguments, dict):
        raise ScenarioError(f"{where}.arguments must be an object")
    return Call(kind, needle, arguments)


def totals(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Rates over the scenarios; task_done_rate over those whose task can be checked."""
    n = len(verdicts)
    scored = [v.task_done for v in verdicts if v.task_done is not None]
    blocked: dict[str, int] = {}
    for v in verdicts:
        if v.blocked_by:
            blocked[v.blocked_by] = blocked.get(v.blocked_by, 0) + 1
    return {
        "scenarios": n,
        "executed_rate": round(sum(v.executed for v in verdicts) / n, 4) if n else 0.0,
        "attempted_rate": round(sum(v.attempted for v in verdicts) / n, 4) if n else 0.0,
        "task_done_rate": round(sum(scored) / len(scored), 4) if scored else None,
        "task_scored": len(scored),
        "blocked_by": blocked,
    }
