"""The model loop over a cascade of models, smallest first.

Each reply of the current model is accepted, retried or escalated to the next model:
- a tool call whose arguments fail the tool's validation goes back to the same model once,
  with the error; a second invalid call escalates;
- an empty reply (a call cut off by the token limit) is asked again once without tools, then
  escalates;
- a reply is watched while it streams (agent/loops.py): at a stop sequence it ends, a loop is
  cut before its first repetition, and a run of nothing but whitespace counts as empty;
- a tool call identical to one already made in the turn is not run again: the model is asked
  for its answer, with no tools offered, from the result it has; so is the last step's call;
- a reply one of the escalation checks doubts (agent/escalation.py; by default, a mean token
  log-probability below the agent's confidence_threshold) escalates before any tool it asks
  for runs, and its text is held back meanwhile.
Budgets are checked before every model call, escalations included: an escalation the budget
does not allow is not made. With no model left, an invalid reply ends the run with a plain
statement that it cannot be answered; a doubtful answer from the last model stands.
Every tool call passes the information-flow policy first (agent/policy.py); untrusted
results reach the model delimited, or as a placeholder when the detector flags them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace

from milliwatt.agent.budgets import Spent, budget_breach
from milliwatt.agent.context import fit_to_context
from milliwatt.agent.escalation import EscalationCheck, default_checks
from milliwatt.agent.events import RunEvent, RunResult, Stop, TextDelta, ToolCalled
from milliwatt.agent.loops import StreamGuard
from milliwatt.agent.policy import FlowPolicy
from milliwatt.agent.provenance import Provenance
from milliwatt.agent.tool_call import run_tool_call
from milliwatt.agent.tool_selection import ToolSelector
from milliwatt.config import AgentConfig
from milliwatt.memory.sessions import TurnCost
from milliwatt.models.base import (
    DEFAULT_GENERATION,
    GenerationSettings,
    Message,
    Model,
    ModelResponse,
    ToolCall,
    ToolSpec,
    Usage,
)
from milliwatt.telemetry.ledger import Ledger
from milliwatt.tools.registry import ToolContext, ToolRegistry


@dataclass
class _Tier:
    """Where the current model stands: its place in the cascade and its one retry."""

    index: int
    retry_left: bool = True
    invalid: set[int] = field(default_factory=set)  # id()s of its failed exchanges


def cannot_answer(model: Model, reason: str, agent: str) -> str:
    return (
        f"I cannot answer this reliably: {model.name} {reason}, and agent {agent!r} has no "
        f"larger model to ask. List one after {model.name} in the agent's models to "
        "escalate such requests."
    )


NO_ANSWER = "I don't have an answer to that"


def no_answer(model: Model, reason: str) -> str:
    """A short, honest end to a turn the last model could not answer."""
    return f"{NO_ANSWER} ({model.name} {reason})."


def _call_key(call: ToolCall) -> str:
    return f"{call.name} {json.dumps(call.arguments, sort_keys=True, default=str)}"


class ModelCascade:
    def __init__(
        self,
        config: AgentConfig,
        models: Sequence[Model],
        tools: ToolRegistry,
        selector: ToolSelector | None = None,
        policy: FlowPolicy | None = None,
        escalate_on: Sequence[EscalationCheck] | None = None,
    ) -> None:
        self.config = config
        # why a reply of a model with a successor goes to that successor instead
        self.escalate_on = tuple(escalate_on) if escalate_on is not None else default_checks(config)
        self.models = list(models)
        self.tools = tools
        self.selector = selector
        self.policy = policy or FlowPolicy(config.policy)

    def offered_tools(self, message: str, ledger: Ledger) -> list[ToolSpec]:
        """The tools shown to the model: all of them, or the few the selector picks."""
        tools = list(self.tools)
        if self.selector is not None and tools:
            with ledger.step("router", "tool_selection"):
                tools = self.selector.select(message, tools)
        return [ToolSpec(t.name, t.description, t.parameters) for t in tools]

    def run(
        self,
        prior: list[Message],
        turn: list[Message],
        context: ToolContext,
        ledger: Ledger,
        session: str | None,
        started: float,
        session_cost: TurnCost | None,
        request: GenerationSettings = DEFAULT_GENERATION,
        max_tokens: int | None = None,
    ) -> Generator[RunEvent, None, RunResult]:
        """The model loop; yields events and returns the RunResult (not yielded).

        `request` says who is asking and carries the event that cancels the run;
        `max_tokens`, the caller's cap on each reply, lowers the model's own."""
        flow = Provenance.start(self.config.instructions, prior, turn[0].content)
        result = yield from self._loop(
            prior, turn, context, ledger, session, started, session_cost, request, max_tokens, flow
        )
        result.notices = flow.notices
        return result

    def _loop(
        self,
        prior: list[Message],
        turn: list[Message],
        context: ToolContext,
        ledger: Ledger,
        session: str | None,
        started: float,
        session_cost: TurnCost | None,
        request: GenerationSettings,
        max_tokens: int | None,
        flow: Provenance,
    ) -> Generator[RunEvent, None, RunResult]:
        specs = self.offered_tools(turn[0].content, ledger)
        called: list[ToolCalled] = []

        def done(answer: str, model: str, stop: Stop = "answer") -> RunResult:
            return RunResult(
                answer=answer, route="model", model=model, session=session, stop=stop,
                tools_called=called, ledger=ledger,
            )  # fmt: skip

        tier = _Tier(0)
        doubtful: tuple[str, str] | None = None  # a held-back answer and its model's name
        made: set[str] = set()  # the calls run this turn, by name and arguments
        plain = False  # the next call offers no tools: the model must answer in words
        for step in range(self.config.max_steps):
            model = self.models[tier.index]
            escalable = tier.index + 1 < len(self.models)
            settings = replace(
                request,
                max_tokens=min(
                    model.max_tokens, self.config.max_tokens, max_tokens or model.max_tokens
                ),
                # per-token log-probabilities cost time; only a reply that may escalate needs them
                logprobs=escalable and bool(self.escalate_on),
                stop=tuple(self.config.stop),
            )
            # the last step offers no tools: a call there could never be answered
            offered = [] if plain or step + 1 == self.config.max_steps else specs
            system = Message("system", self.config.instructions + flow.note())
            messages = [system, *prior, *turn]
            prompt = fit_to_context(messages, model, offered, settings.max_tokens)
            spent = Spent(ledger.tokens, ledger.model_calls, time.monotonic() - started)
            breach = budget_breach(
                self.config.budgets, spent, session_cost, model.count_tokens(prompt, offered)
            )
            if breach is not None and doubtful is not None:
                yield TextDelta(doubtful[0])
                return done(doubtful[0], doubtful[1])
            if breach is not None:
                yield TextDelta(breach)
                return done(breach, model.name, "budget")
            held: list[str] = []
            response = yield from self._call_model(model, prompt, offered, settings, ledger, held)
            reason = self._doubt(response) if escalable else None
            if not response.tool_calls and not response.text.strip():
                if offered:  # a constrained reply cut short: once more, in plain words
                    plain = True
                    continue
                reason = "gave an empty reply"
                if not escalable:
                    answer = no_answer(model, reason)
                    yield TextDelta(answer)
                    return done(answer, model.name)
            if reason is not None:
                if not response.tool_calls and response.text.strip():
                    doubtful = (response.text, model.name)
                tier = self._escalate(tier, turn)
                plain = False
                continue
            if not response.tool_calls:
                if held:
                    yield TextDelta("".join(held))
                return done(response.text, model.name)
            fresh = [c for c in response.tool_calls if _call_key(c) not in made]
            if not fresh:  # the same call again: its result is in the prompt already
                plain = True
                continue
            exchange = [Message("assistant", response.text, fresh)]
            invalid_error = ""
            for call in fresh:
                outcome = run_tool_call(self.tools, self.policy, call, context, ledger, flow)
                if not outcome.invalid:  # a call that failed validation may be corrected and made
                    made.add(_call_key(call))
                called.append(outcome.called)
                yield from outcome.events
                yield outcome.called
                exchange.append(
                    Message("tool", outcome.shown, tool_call_id=call.id, name=call.name)
                )
                invalid_error = invalid_error or outcome.invalid
            turn.extend(exchange)
            if not invalid_error:
                continue
            tier.invalid.update(id(m) for m in exchange)
            if tier.retry_left:
                tier.retry_left = False  # the model sees the error in its next prompt
                continue
            if not escalable:
                answer = cannot_answer(
                    model, f"made an invalid tool call ({invalid_error})", self.config.name
                )
                yield TextDelta(answer)
                return done(answer, model.name)
            tier = self._escalate(tier, turn)
            plain = False
        stop = f"Stopped after {self.config.max_steps} steps without a final answer."
        yield TextDelta(stop)
        return done(stop, self.models[tier.index].name, "steps")

    def _doubt(self, response: ModelResponse) -> str | None:
        """Why a reply is not trusted enough to accept from a model that has a successor."""
        for check in self.escalate_on:
            reason = check(response)
            if reason is not None:
                return reason
        return None

    @staticmethod
    def _escalate(tier: _Tier, turn: list[Message]) -> _Tier:
        """Move to the next model; it does not see the failed exchanges of the one before."""
        turn[:] = [m for m in turn if id(m) not in tier.invalid]
        return _Tier(tier.index + 1)

    def _call_model(
        self,
        model: Model,
        prompt: list[Message],
        specs: list[ToolSpec],
        settings: GenerationSettings,
        ledger: Ledger,
        held: list[str],
    ) -> Generator[RunEvent, None, ModelResponse]:
        """Stream the reply; text of a model that may still be overruled is only held.

        The guard shows text as it comes, holding back what may be a repetition, and ends
        the stream early at a stop sequence, a loop or a run of whitespace; the reply is
        then what it kept.
        """
        hold = model is not self.models[-1] and bool(self.escalate_on)
        guard = StreamGuard(settings.stop)
        response: ModelResponse | None = None

        def show(text: str) -> Generator[RunEvent, None, None]:
            if text and hold:
                held.append(text)
            elif text:
                yield TextDelta(text)

        with ledger.step("model", model.name) as step:
            chunks = model.stream(prompt, tools=specs, settings=settings)
            try:
                for chunk in chunks:
                    yield from show(guard.feed(chunk.text))
                    if guard.stopped is not None:
                        break
                    if chunk.response is not None:
                        response = chunk.response
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()  # stops the generation, not just our reading of it
            if guard.stopped is not None:
                usage = Usage(model.count_tokens(prompt, specs), guard.chunks)
                response = ModelResponse(model.name, guard.text, usage=usage)
            else:
                assert response is not None, "a model stream must end with its response"
                yield from show(guard.finish())
                if not response.tool_calls:
                    response.text = guard.text or response.text
            step.prompt_tokens = response.usage.prompt_tokens
            step.completion_tokens = response.usage.completion_tokens
            step.system, step.finish_reason = model.provider, response.stop_reason
            if not model.local:
                step.joules_est = response.usage.total_tokens * model.joules_per_token
        return response
