"""Running the frugal workload: the whole agent (tools first) against the same model alone.

Both sides are costed the same way, by the agent's ledger: estimated joules are the CPU
seconds of each step times watts_per_core. The model-alone run may cover only a sample of
the rows (spread evenly over the workload), as a small model on a CPU takes seconds a row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from milliwatt.agent.runner import Agent
from milliwatt.evals.frugal import Outcome, Report, Route, Row, answer_matches, score
from milliwatt.models.base import GenerationSettings, Message, Model, ModelError
from milliwatt.telemetry.ledger import Ledger

T = TypeVar("T")


@dataclass(frozen=True)
class RowRun:
    """One row as answered by one side."""

    row: Row
    route: Route
    answer: str
    tokens: int
    ms: float
    joules_est: float
    correct: bool
    tool: str | None = None

    def as_json(self, run: str) -> dict[str, Any]:
        return {
            "run": run,
            "prompt": self.row.prompt,
            "expected_route": self.row.route,
            "route": self.route,
            "tool": self.tool,
            "answer": self.answer,
            "tokens": self.tokens,
            "ms": round(self.ms, 3),
            "joules_est": round(self.joules_est, 6),
            "correct": self.correct,
        }


@dataclass
class Side:
    """The totals of one side over the rows it answered."""

    runs: list[RowRun] = field(default_factory=list)

    def total(self, attribute: str, route: str | None = None) -> float:
        total: float = sum(getattr(r, attribute) for r in self.runs if route in (None, r.route))
        return total

    def per_answer(self, attribute: str, route: str | None = None) -> float:
        chosen = [r for r in self.runs if route in (None, r.route)]
        return self.total(attribute, route) / len(chosen) if chosen else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "rows": len(self.runs),
            "correct": sum(r.correct for r in self.runs),
            "tokens": int(self.total("tokens")),
            "ms": round(self.total("ms"), 1),
            "joules_est": round(self.total("joules_est"), 6),
            "joules_per_answer": round(self.per_answer("joules_est"), 6),
            "ms_per_answer": round(self.per_answer("ms"), 3),
        }


def is_correct(row: Row, route: str, answer: str) -> bool:
    """Tool rows need the expected answer; model rows need to reach the model."""
    if row.route == "model":
        return route == "model"
    return answer_matches(row.expected, answer)


def run_pipeline(
    agent: Agent, rows: Sequence[Row], on_row: Callable[[RowRun], None] | None = None
) -> tuple[Report, Side]:
    """Every row through the agent (router, then the model loop), scored and costed."""
    side = Side()
    queue = iter(rows)  # score() asks for the rows in order

    def answer(prompt: str) -> Outcome:
        row = next(queue)
        started = time.perf_counter()
        try:
            result = agent.run(prompt)
        except ModelError as exc:  # one failed answer must not end the evaluation
            ms = (time.perf_counter() - started) * 1000
            failed = RowRun(row, "model", f"error: {exc}", 0, ms, 0.0, False)
            side.runs.append(failed)
            if on_row is not None:
                on_row(failed)
            return Outcome("model", failed.answer)
        tool = result.tools_called[0].name if result.route == "tool" else None
        done = RowRun(
            row,
            result.route,
            result.answer,
            result.ledger.tokens,
            result.ledger.ms,
            result.ledger.joules_est,
            is_correct(row, result.route, result.answer),
            tool,
        )
        side.runs.append(done)
        if on_row is not None:
            on_row(done)
        return Outcome(result.route, result.answer, tool)

    report = score(rows, answer)
    return report, side


def run_routing_only(
    agent: Agent, rows: Sequence[Row], on_row: Callable[[RowRun], None] | None = None
) -> tuple[Report, Side]:
    """Only the router's part: rows it declines are counted as the model's, unanswered."""
    if agent.router is None:
        raise ValueError(f"agent {agent.name!r} has no router to score")
    router = agent.router
    side = Side()
    queue = iter(rows)

    def answer(prompt: str) -> Outcome:
        row = next(queue)
        ledger = Ledger(agent.watts_per_core)
        with ledger.step("router", "router"):
            found = router.resolve(prompt)
        route: Route = "model" if found is None else "tool"
        text, tool = ("", None) if found is None else (found.answer, found.tool)
        done = RowRun(
            row, route, text, 0, ledger.ms, ledger.joules_est, is_correct(row, route, text), tool
        )
        side.runs.append(done)
        if on_row is not None:
            on_row(done)
        return Outcome(route, text, tool)

    return score(rows, answer), side


def run_model_alone(
    model: Model,
    instructions: str,
    rows: Sequence[Row],
    *,
    watts_per_core: float,
    on_row: Callable[[RowRun], None] | None = None,
) -> Side:
    """The same rows answered by the model with no router and no tools."""
    side = Side()
    settings = GenerationSettings(max_tokens=model.max_tokens)
    for row in rows:
        ledger = Ledger(watts_per_core)
        prompt = [Message("system", instructions), Message("user", row.prompt)]
        try:
            with ledger.step("model", model.name) as step:
                response = model.complete(prompt, settings=settings)
                step.prompt_tokens = response.usage.prompt_tokens
                step.completion_tokens = response.usage.completion_tokens
                if not model.local:
                    step.joules_est = response.usage.total_tokens * model.joules_per_token
            text, failed = response.text, False
        except ModelError as exc:
            text, failed = f"error: {exc}", True
        right = not failed and is_correct(row, "model", text)
        done = RowRun(row, "model", text, ledger.tokens, ledger.ms, ledger.joules_est, right)
        side.runs.append(done)
        if on_row is not None:
            on_row(done)
    return side


def spread(rows: Sequence[T], count: int | None) -> list[T]:
    """`count` rows spread evenly over the workload (all rows when count is None)."""
    if count is None or count >= len(rows):
        return list(rows)
    if count <= 0:
        return []
    step = len(rows) / count
    return [rows[int(i * step)] for i in range(count)]


def totals(report: Report, pipeline: Side, alone: Side) -> dict[str, Any]:
    """The figures of both sides; energy ratios compare the same rows."""
    same_prompts = {r.row.prompt for r in alone.runs}
    same = Side([r for r in pipeline.runs if r.row.prompt in same_prompts])
    tool_rows = {r.row.prompt for r in alone.runs if r.row.route == "tool"}
    alone_tool = Side([r for r in alone.runs if r.row.prompt in tool_rows])
    figures: dict[str, Any] = {
        "total": report.rows,
        "tool_share": round(report.tool_answers / report.rows, 4) if report.rows else 0.0,
        "tool_precision": round(report.precision, 4),
        "tool_recall": round(report.recall, 4),
        "misroutes": len(report.missed) + len(report.intruded),
        "missed": len(report.missed),
        "intruded": len(report.intruded),
        "wrong_tool_answers": len(report.wrong_answers),
        "pipeline": pipeline.summary(),
        "pipeline_joules_per_tool_answer": round(pipeline.per_answer("joules_est", "tool"), 6),
        "llm_only": alone.summary(),
    }
    if alone.runs:
        figures["llm_only"]["tool_rows_right"] = sum(r.correct for r in alone_tool.runs)
        figures["llm_only"]["tool_rows"] = len(alone_tool.runs)
        figures["energy_ratio_same_rows"] = _ratio(
            alone.total("joules_est"), same.total("joules_est")
        )
        figures["energy_ratio_tool_answers"] = _ratio(
            alone_tool.per_answer("joules_est"), pipeline.per_answer("joules_est", "tool")
        )
    return figures


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 1) if denominator > 0 else None
