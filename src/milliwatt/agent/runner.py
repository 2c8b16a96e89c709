"""The agent loop: message -> (router) -> model -> tool calls -> tools -> model ... -> answer.

It stops at an answer, the step limit or a budget, never silently. Every step is costed in
the ledger. A turn is stored only once it is complete, so a failing model leaves the
session exactly as it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

from milliwatt.agent.cascade import ModelCascade
from milliwatt.agent.escalation import EscalationCheck
from milliwatt.agent.events import (
    PolicyDenied,
    Quarantined,
    Route,
    RunEvent,
    RunResult,
    Stop,
    TextDelta,
    ToolCalled,
)
from milliwatt.agent.output import redacted, redacted_result
from milliwatt.agent.policy import FlowPolicy
from milliwatt.agent.router import Router
from milliwatt.agent.tool_selection import ToolSelector
from milliwatt.config import AgentConfig
from milliwatt.memory.sessions import SessionStore, TurnCost, check_session_name
from milliwatt.models.base import GenerationSettings, Message, Model
from milliwatt.telemetry.ledger import Ledger
from milliwatt.tools.registry import ToolContext, ToolRegistry

__all__ = [
    "Agent",
    "PolicyDenied",
    "Quarantined",
    "Route",
    "RunEvent",
    "RunResult",
    "Stop",
    "TextDelta",
    "ToolCalled",
]


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
        data_dir: Path | None = None,
        selector: ToolSelector | None = None,
        policy: FlowPolicy | None = None,
        escalate_on: Sequence[EscalationCheck] | None = None,
        storage_url: str | None = None,
    ) -> None:
        """`selector` narrows the tools offered to the model per request; without one the
        model sees every tool the agent may call. `policy` guards every tool call (default:
        the configured policy with no approval hook, so what it does not allow is denied)."""
        if not models:
            raise ValueError(f"agent {config.name!r} needs at least one model")
        self.config = config
        self.models = list(models)
        self.tools = tools or ToolRegistry()
        self.store = store
        self.watts_per_core = watts_per_core
        self.router = router
        self.data_dir = data_dir
        self.storage_url = storage_url  # where the tools keep facts and calendars
        self.cascade = ModelCascade(
            config, self.models, self.tools, selector, policy, escalate_on=escalate_on
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model(self) -> Model:
        return self.models[0]

    def warm(self) -> None:
        """Load the router's parsers and the tool embeddings now rather than on first use."""
        if self.router is not None:
            self.router.warm()
        selector = self.cascade.selector
        if selector is not None and len(self.tools):
            selector.select("warm up", list(self.tools))

    def run(
        self,
        message: str,
        *,
        session: str | None = None,
        history: Sequence[Message] | None = None,
        user: str = "anonymous",
        on_text: Callable[[str], None] | None = None,
        max_tokens: int | None = None,
    ) -> RunResult:
        events = self.stream(
            message, session=session, history=history, user=user, max_tokens=max_tokens
        )
        for event in events:
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
        max_tokens: int | None = None,
        cancel: threading.Event | None = None,
        tenant: str = "default",
    ) -> Generator[RunEvent, None, None]:
        """Yield text as it is generated and each tool call; the last event is the RunResult.

        With `session`, the stored conversation is continued and the turn is stored; with
        `history`, that conversation is continued and nothing is stored. `max_tokens` caps
        each model reply below the model's own limit; setting `cancel` stops a generation
        in progress (GenerationCancelled is raised and nothing is stored).
        """
        if session is not None:
            session = check_session_name(session)
        if not message.strip():
            raise ValueError("message: the message is empty")
        prior = list(history or [])
        if session is not None and self.store is not None:
            prior = self.store.history(session)
        context = ToolContext(
            user=user,
            agent=self.name,
            tenant=tenant,
            session=session,
            **({"data_dir": self.data_dir} if self.data_dir else {}),
            storage_url=self.storage_url,
        )
        ledger = Ledger(self.watts_per_core)
        turn = [Message("user", message)]
        started = time.monotonic()

        routed = self._answer_with_tool(message, context, ledger, session)
        result = routed
        if result is None:
            session_cost = self._session_cost(session)
            request = GenerationSettings(user=user, cancel=cancel)
            events = self.cascade.run(
                prior, turn, context, ledger, session, started, session_cost, request, max_tokens
            )
            result = yield from redacted(events)
        result = redacted_result(result)  # nothing secret leaves the agent or is stored
        if routed is not None:
            yield from result.tools_called  # the call, as the model route shows its calls
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
                step.name, step.ok = found.tool, found.error is None
        if found is None:
            return None
        called = ToolCalled(found.tool, found.arguments, found.answer, found.error is None)
        return RunResult(
            answer=found.answer,
            route="tool",
            model=None,
            session=session,
            stop="answer",
            tools_called=[called],
            ledger=ledger,
        )

    def _session_cost(self, session: str | None) -> TurnCost | None:
        if session is None or self.store is None:
            return None
        info = self.store.info(session)
        return info.cost if info else TurnCost()
