"""The agent loop: message -> (router) -> model -> tool calls -> tools -> model ... -> answer.

It stops at an answer, the step limit or a budget, never silently. Every step is costed in
the ledger. A turn is stored only once it is complete, so a failing model leaves the
session exactly as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from milliwatt.agent.budgets import Spent, budget_breach
from milliwatt.agent.context import fit_to_context
from milliwatt.agent.router import Router
from milliwatt.config import AgentConfig
from milliwatt.memory.sessions import SessionStore, TurnCost, check_session_name
from milliwatt.models.base import GenerationSettings, Message, Model, ModelResponse, ToolSpec
from milliwatt.telemetry.ledger import Ledger
from milliwatt.tools.registry import ToolContext, ToolRegistry, UnknownToolError

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
class RunResult:
    answer: str
    route: Route
    model: str | None
    session: str | None
    stop: Stop = "answer"
    tools_called: list[ToolCalled] = field(default_factory=list)
    ledger: Ledger = field(default_factory=lambda: Ledger(0.0))

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
        }


RunEvent = TextDelta | ToolCalled | RunResult


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        models: Sequence[Model],
        *,
        tools: ToolRegistry | None = None,
        store: SessionStore | None = None,
        watts_per_core: float = 15.0,
        router: Router | None = None,
        data_dir: Any = None,
    ) -> None:
        if not models:
            raise ValueError(f"agent {config.name!r} needs at least one model")
        self.config = config
        self.models = list(models)
        self.tools = tools or ToolRegistry()
        self.store = store
        self.watts_per_core = watts_per_core
        self.router = router
        self.data_dir = data_dir

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model(self) -> Model:
        return self.models[0]

    def run(
        self,
        message: str,
        *,
        session: str | None = None,
        history: Sequence[Message] | None = None,
        user: str = "anonymous",
        on_text: Callable[[str], None] | None = None,
    ) -> RunResult:
        for event in self.stream(message, session=session, history=history, user=user):
            if isinstance(event, TextDelta) and on_text is not None:
                on_text(event.text)
            if isinstance(event, RunResult):
                return event
        raise AssertionError("the agent loop ended without a result")

    def stream(
        self,
        message: str,
        *,
        session: str | None = None,
        history: Sequence[Message] | None = None,
        user: str = "anonymous",
    ) -> Iterator[RunEvent]:
        """Yield text as it is generated and each tool call; the last event is the RunResult.

        With `session`, the stored conversation is continued and the turn is stored; with
        `history`, that conversation is continued and nothing is stored.
        """
        if session is not None:
            check_session_name(session)
        if not message.strip():
            raise ValueError("message: the message is empty")
        prior = list(history or [])
        if session is not None and self.store is not None:
            prior = self.store.history(session)
        context = ToolContext(
            user=user,
            agent=self.name,
            session=session,
            **({"data_dir": self.data_dir} if self.data_dir else {}),
        )
        ledger = Ledger(self.watts_per_core)
        turn = [Message("user", message)]
        started = time.monotonic()

        result = self._answer_with_tool(message, context, ledger, session)
        if result is None:
            result = yield from self._model_loop(prior, turn, context, ledger, session, started)
        else:
            yield TextDelta(result.answer)
        turn.append(Message("assistant", result.answer))
        if session is not None and self.store is not None:
            cost = TurnCost(ledger.tokens, ledger.model_calls, ledger.ms / 1000, ledger.joules_est)
            self.store.append_turn(session, self.name, turn, cost)
        yield result

    def _answer_with_tool(
        self, message: str, context: ToolContext, ledger: Ledger, session: str | None
    ) -> RunResult | None:
        if self.router is None:
            return None
        with ledger.step("router", "router") as step:
            found = self.router.resolve(message, context)
            if found is not None:
                step.name = found.tool
        if found is None:
            return None
        called = ToolCalled(found.tool, found.arguments, found.answer, found.error is None)
        return RunResult(found.answer, "tool", None, session, "answer", [called], ledger)

    def _model_loop(
        self,
        prior: list[Message],
        turn: list[Message],
        context: ToolContext,
        ledger: Ledger,
        session: str | None,
        started: float,
    ) -> Iterator[RunEvent]:
        model = self.model
        specs = [ToolSpec(t.name, t.description, t.parameters) for t in self.tools]
        settings = GenerationSettings(max_tokens=model.max_tokens)
        session_cost = self._session_cost(session)
        called: list[ToolCalled] = []
        for _ in range(self.config.max_steps):
            messages = [Message("system", self.config.instructions), *prior, *turn]
            prompt = fit_to_context(messages, model, specs, settings.max_tokens)
            spent = Spent(ledger.tokens, ledger.model_calls, time.monotonic() - started)
            breach = budget_breach(
                self.config.budgets, spent, session_cost, model.count_tokens(prompt, specs)
            )
            if breach is not None:
                yield TextDelta(breach)
                return RunResult(breach, "model", model.name, session, "budget", called, ledger)
            response = yield from self._call_model(model, prompt, specs, settings, ledger)
            if not response.tool_calls:
                return RunResult(
                    response.text, "model", model.name, session, "answer", called, ledger
                )
            turn.append(Message("assistant", response.text, response.tool_calls))
            for call in response.tool_calls:
                done = self._run_tool(call.name, call.arguments, context, ledger)
                called.append(done)
                yield done
                turn.append(Message("tool", done.result, tool_call_id=call.id, name=call.name))
        stop = f"Stopped after {self.config.max_steps} steps without a final answer."
        yield TextDelta(stop)
        return RunResult(stop, "model", model.name, session, "steps", called, ledger)

    def _call_model(
        self,
        model: Model,
        prompt: list[Message],
        specs: list[ToolSpec],
        settings: GenerationSettings,
        ledger: Ledger,
    ) -> Iterator[RunEvent]:
        response: ModelResponse | None = None
        with ledger.step("model", model.name) as step:
            for chunk in model.stream(prompt, tools=specs, settings=settings):
                if chunk.text:
                    yield TextDelta(chunk.text)
                if chunk.response is not None:
                    response = chunk.response
            assert response is not None, "a model stream must end with its response"
            step.prompt_tokens = response.usage.prompt_tokens
            step.completion_tokens = response.usage.completion_tokens
            if not model.local:
                step.joules_est = response.usage.total_tokens * model.joules_per_token
        return response

    def _run_tool(
        self, name: str, arguments: dict[str, Any], context: ToolContext, ledger: Ledger
    ) -> ToolCalled:
        with ledger.step("tool", name):
            try:
                result = self.tools.call(name, arguments, context)
            except UnknownToolError as exc:
                return ToolCalled(name, arguments, f"error: {exc}", False)
        return ToolCalled(name, arguments, result.text(), result.ok)

    def _session_cost(self, session: str | None) -> TurnCost | None:
        if session is None or self.store is None:
            return None
        info = self.store.info(session)
        return info.cost if info else TurnCost()
