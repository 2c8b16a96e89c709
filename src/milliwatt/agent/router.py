"""Tool-first dispatch: answer without a model when a deterministic tool answers completely.

Each resolver recognises one family of requests and extracts the arguments for one tool; the
router tries them in order and returns the first confident reading. A request no resolver is
sure about, or one whose tool is not in the registry, returns None and goes to the model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from milliwatt.agent.resolvers.arithmetic import ArithmeticResolver
from milliwatt.agent.resolvers.common import MAX_REQUEST_CHARS, Request, Resolver
from milliwatt.agent.resolvers.dates import DatesResolver
from milliwatt.agent.resolvers.graph import GraphResolver
from milliwatt.agent.resolvers.knowledge import KnowledgeResolver
from milliwatt.agent.resolvers.numbers import NumbersResolver
from milliwatt.agent.resolvers.text import TextResolver
from milliwatt.agent.resolvers.units import UnitsResolver
from milliwatt.tools.registry import ToolContext, ToolRegistry

_log = logging.getLogger(__name__)

# most specific first: "255 in binary" is a base conversion before anything else
DEFAULT_RESOLVERS: tuple[Resolver, ...] = (
    NumbersResolver(),
    TextResolver(),
    DatesResolver(),
    UnitsResolver(),
    ArithmeticResolver(),
    GraphResolver(),
    KnowledgeResolver(),  # last: a passage that answers outright, when nothing else did
)


@dataclass(frozen=True)
class ToolAnswer:
    """A request answered by a tool: no model, no tokens."""

    tool: str
    arguments: dict[str, Any]
    value: Any  # the tool's raw result (None when it refused)
    answer: str  # the sentence shown to the user
    error: str | None = None  # the tool's refusal, when that refusal is the answer
    route: str = "tool"
    tokens: int = 0


class Router:
    def __init__(
        self, registry: ToolRegistry, resolvers: Sequence[Resolver] = DEFAULT_RESOLVERS
    ) -> None:
        self.registry = registry
        # a resolver none of whose tools the agent may use is never consulted
        self.resolvers = tuple(r for r in resolvers if r.tools & set(registry.names()))

    def __call__(self, text: str, context: ToolContext) -> tuple[str, str, dict[str, Any]] | None:
        """The agent loop's view: (answer, tool name, arguments), or None for the model."""
        found = self.resolve(text, context)
        return None if found is None else (found.answer, found.tool, found.arguments)

    def warm(self) -> None:
        """Load the unit and date parsers now (about a second) rather than on first use."""
        self.resolve("convert 1 km to m")
        self.resolve("what day of the week is 2026-01-01")
        self.resolve("what is 12:00 UTC in Tokyo")

    def resolve(self, text: str, context: ToolContext | None = None) -> ToolAnswer | None:
        """The tool's answer to `text`, or None when the model should answer."""
        if not text or len(text) > MAX_REQUEST_CHARS:
            return None
        context = context or ToolContext()
        request = Request.of(text)
        for resolver in self.resolvers:
            try:
                found = resolver.match(request, context)
            except Exception:  # a resolver's failure must not fail the request: the model answers
                _log.exception("resolver %s failed on a request", type(resolver).__name__)
                return None
            if found is None:
                continue
            if found.tool not in self.registry:
                return None  # recognised, but this agent may not use that tool
            if found.computed:
                return ToolAnswer(
                    found.tool, found.arguments, found.value, found.sentence(found.value)
                )
            try:
                result = self.registry.call(found.tool, found.arguments, context)
            except Exception:  # e.g. a locked or damaged SQLite file: the model answers
                _log.exception("tool %s failed", found.tool)
                return None
            if result.ok:
                return ToolAnswer(
                    found.tool, found.arguments, result.value, found.sentence(result.value)
                )
            if found.errors_are_answers:
                return ToolAnswer(
                    found.tool,
                    found.arguments,
                    None,
                    found.refusal.format(result.error),
                    result.error,
                )
            return None
        return None
