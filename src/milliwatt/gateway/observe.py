"""What the API tells telemetry about an answered request: agent, route, tier, cost."""

from __future__ import annotations

from milliwatt.agent.runner import Agent, RunResult
from milliwatt.telemetry.http import note_steps
from milliwatt.telemetry.records import current_request, denials_of


def note_result(agent: Agent, result: RunResult, *, streamed: bool, session: str | None) -> None:
    record = current_request.get()
    if record is None:
        return
    ledger = result.ledger
    names = [m.name for m in agent.models]
    record.agent = agent.name
    record.route = "refused" if result.stop == "budget" else result.route
    record.model = result.model
    record.tier = names.index(result.model) if result.model in names else None
    record.stop = result.stop
    record.prompt_tokens = ledger.prompt_tokens
    record.completion_tokens = ledger.completion_tokens
    record.model_calls = ledger.model_calls
    record.joules_est = ledger.joules_est
    record.tools = [{"name": t.name, "ok": t.ok} for t in result.tools_called]
    record.denials = denials_of(result.stop, ((t.ok, t.result) for t in result.tools_called))
    record.streamed = streamed
    record.session = session
    note_steps(ledger.entries)
