"""Requests one passage of the agent's own documents answers outright, quoted with its
citation. The knowledge base's thresholds are strict; anything less goes to the model,
which gets the passages through knowledge.search."""

from __future__ import annotations

from typing import Any

from milliwatt.agent.resolvers.common import Match, Request
from milliwatt.tools.knowledge import answering_passage
from milliwatt.tools.registry import ToolContext


class KnowledgeResolver:
    tools = frozenset({"knowledge.search"})

    def match(self, request: Request, context: ToolContext) -> Match | None:
        passage = answering_passage(request.raw, context)
        if passage is None:
            return None
        return Match(
            "knowledge.search",
            {"query": request.raw},
            _quoted,
            value=passage,
            computed=True,
        )


def _quoted(passage: Any) -> str:
    return f"{passage.text.strip()}\n\n[{passage.citation()}]"
