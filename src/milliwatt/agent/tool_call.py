"""One tool call of the model loop: validated, checked by the information-flow policy, run;
its result recorded by origin and shown to the model (untrusted text delimited, or a
placeholder when the injection detector flags it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from milliwatt.agent.events import PolicyDenied, Quarantined, RunEvent, ToolCalled
from milliwatt.agent.policy import FlowPolicy
from milliwatt.agent.provenance import Provenance
from milliwatt.models.base import ToolCall
from milliwatt.shield.redaction import redact_arguments
from milliwatt.telemetry.ledger import Ledger
from milliwatt.tools.registry import (
    Effect,
    ToolContext,
    ToolError,
    ToolRegistry,
    UnknownToolError,
)

OUTBOUND = frozenset({Effect.SENDS, Effect.NETWORK})


@dataclass
class ToolOutcome:
    """The call's event, what the model sees, the validation error, the events before it."""

    called: ToolCalled
    shown: str
    invalid: str = ""
    events: list[RunEvent] = field(default_factory=list)


def run_tool_call(
    tools: ToolRegistry,
    policy: FlowPolicy,
    call: ToolCall,
    context: ToolContext,
    ledger: Ledger,
    flow: Provenance,
) -> ToolOutcome:
    name, args = call.name, dict(call.arguments)
    with ledger.step("tool", name) as step:
        step.ok = False  # until the tool has run and said so
        try:
            tool = tools.get(name)
        except UnknownToolError as exc:
            return ToolOutcome(ToolCalled(name, args, f"error: {exc}", False), f"error: {exc}")
        try:
            tool.validate(args)
        except ToolError as exc:
            text = f"error: {exc}"
            return ToolOutcome(ToolCalled(name, args, text, False), text, str(exc))
        decision = policy.check(tool, args, flow, context)
        if not decision.allowed:
            step.denied = decision.reason
            text = f"error: denied by policy: {decision.reason}"
            flow.notices.append(f"{name} was not run: {decision.reason}")
            denied = PolicyDenied(name, args, decision.reason, decision.by)
            return ToolOutcome(ToolCalled(name, args, text, False), text, events=[denied])
        if tool.effects & OUTBOUND:  # a secret the model saw never leaves in a message or URL
            args = redact_arguments(args)
        result = tool.call(args, context)
        step.ok = result.ok
    text = result.text()
    if not result.untrusted:
        return ToolOutcome(ToolCalled(name, args, text, result.ok), flow.admit_trusted(text))
    if not (result.ok and policy.quarantine(text)):
        shown = flow.admit_untrusted(name, text)
        return ToolOutcome(ToolCalled(name, args, text, result.ok), shown)
    notice = f"content from {name} was withheld from the model: it looks like a prompt injection"
    flow.notices.append(notice)
    shown = flow.admit_untrusted(name, text, f"[{notice}]")
    return ToolOutcome(
        ToolCalled(name, args, text, True), shown, events=[Quarantined(name, notice)]
    )
