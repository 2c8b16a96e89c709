"""Tools over the agent's documents and the user's long-term facts.

Passages and facts are returned as untrusted content: documents and remembered text may
have been written by anyone, including someone planting instructions for the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field

from milliwatt.knowledge import (
    CollectionKey,
    Passage,
    UnknownCollectionError,
    open_knowledge_base,
)
from milliwatt.knowledge.base import DATABASE_NAME
from milliwatt.memory.facts import MAX_FACT_CHARS, open_fact_store
from milliwatt.tools.registry import Effect, Tool, ToolContext, ToolError, tool

DEFAULT_TENANT = "default"  # the CLI's default; a deployment with tenants passes its own
MAX_PASSAGES = 20
Count = Annotated[int, Field(ge=1, le=MAX_PASSAGES)]


@tool(
    effects={Effect.READS_UNTRUSTED},
    name="knowledge.search",
    examples=[
        "what does the manual say about batteries",
        "search my documents for the refund policy",
        "according to the docs, how do I install it",
    ],
)
def search_knowledge(
    query: str, context: ToolContext, k: Count = 5, collection: str | None = None
) -> list[dict[str, Any]]:
    """Search the agent's ingested documents; returns passages with their citations.

    Each passage has its text, source (file or URL), heading path, start and end character
    offsets in the source, and a relevance score. Without a collection, all of the agent's
    collections are searched. Cite the source and heading when answering from a passage.
    """
    if not query.strip():
        raise ToolError("the query is empty")
    kb = open_knowledge_base(context.data_dir, context.storage_url)
    try:
        if collection is None:
            keys = [c.key for c in kb.collections(context.tenant, context.agent)]
            passages = kb.search(query, keys, k) if keys else []
        else:
            passages = kb.search(query, CollectionKey(context.tenant, context.agent, collection), k)
    except (ValueError, UnknownCollectionError) as exc:
        raise ToolError(str(exc)) from None
    return [
        {
            "text": p.text,
            "source": p.source,
            "heading": p.heading,
            "start": p.start,
            "end": p.end,
            "score": round(p.score, 5),
            "citation": p.citation(),
        }
        for p in passages
    ]


def answering_passage(text: str, context: ToolContext) -> Passage | None:
    """A passage of the agent's documents that answers `text` outright (strict thresholds),
    or None; nothing ingested costs no embedding."""
    if not (context.data_dir / DATABASE_NAME).is_file():
        return None
    kb = open_knowledge_base(context.data_dir, context.storage_url)
    keys = kb.collection_keys(context.tenant, context.agent)
    return kb.best_passage(text, keys) if keys else None


@tool(
    effects={Effect.WRITES},
    name="remember",
    examples=["remember that I am allergic to peanuts", "please note my flat is number 12"],
)
def remember(fact: str, context: ToolContext) -> dict[str, Any]:
    """Remember a fact about the user for later conversations (one short sentence)."""
    source = f"conversation {context.session}" if context.session else "conversation"
    if len(fact) > MAX_FACT_CHARS:
        raise ToolError(f"the fact is {len(fact)} characters; the limit is {MAX_FACT_CHARS}")
    try:
        fact_id = open_fact_store(context.data_dir, context.storage_url).remember(
            context.user, context.agent, fact, source
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return {"id": fact_id, "remembered": " ".join(fact.split())}


@tool(
    effects={Effect.READS_UNTRUSTED},
    name="recall",
    examples=["what do you remember about me", "do you know my favourite colour"],
)
def recall(query: str, context: ToolContext, k: Count = 5) -> list[dict[str, Any]]:
    """Recall remembered facts about the user that are relevant to the query, best first."""
    try:
        facts = open_fact_store(context.data_dir, context.storage_url).recall(
            context.user, context.agent, query, k
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return [
        {
            "id": f.id,
            "fact": f.text,
            "source": f.source,
            "when": datetime.fromtimestamp(f.created_at, UTC).isoformat(timespec="seconds"),
        }
        for f in facts
    ]


TOOLS: list[Tool] = [search_knowledge, remember, recall]
