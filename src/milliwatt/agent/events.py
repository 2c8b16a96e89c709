"""What a run yields: text as it is generated, each tool call, and last the RunResult."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from milliwatt.telemetry.ledger import Ledger

Route = Literal["tool", "model"]
Stop = Literal["answer", "budget", "steps"]


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCalled:
    name: str
    arguments: dict[str, Any]
    result: str
    ok: bool


@dataclass
class PolicyDenied:
    """A tool call the information-flow policy refused; the model is told, the call never ran."""

    name: str
    arguments: dict[str, Any]
    reason: str
    by: str  # "policy" or "approval"


@dataclass
class Quarantined:
    """Untrusted content the injection detector held back: the model saw a placeholder."""

    source: str
    notice: str


@dataclass(kw_only=True)  # built by keyword: eight fields are too many to read by position
class RunResult:
    answer: str
    route: Route
    model: str | None
    session: str | None
    stop: Stop = "answer"
    tools_called: list[ToolCalled] = field(default_factory=list)
    ledger: Ledger = field(default_factory=lambda: Ledger(0.0))
    notices: list[str] = field(default_factory=list)  # denials and quarantines, for the user

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "route": self.route,
            "model": self.model,
            "tools_called": [
                {"name": t.name, "arguments": t.arguments, "result": t.result, "ok": t.ok}
                for t in self.tools_called
            ],
            "usage": {
                "prompt_tokens": self.ledger.prompt_tokens,
                "completion_tokens": self.ledger.completion_tokens,
            },
            "cost": {
                "ms": round(self.ledger.ms, 3),
                "joules_est": round(self.ledger.joules_est, 6),
            },
            "stop": self.stop,
            "session": self.session,
        } | ({"notices": self.notices} if self.notices else {})


RunEvent = TextDelta | ToolCalled | PolicyDenied | Quarantined | RunResult
