"""Constrained call functions for the BFCL runner: plain, and milliwatt's pipeline.

plain: every function is offered under one JSON-schema grammar that holds 1..4 calls of
them; something is always called. The baseline to beat on questions that want calls.

pipeline:
1. relevance (agent/relevance.py): the functions are ranked against the request and a
   null hypothesis; a clear miss is declined with no model tokens, a clear match is called;
2. in between ("ask"), a model with a measured preference bias chooses: its
   log-probability of "calls" over "none" at the reply's first key, against that bias.
   Neither bundled model has one: on the tuning half their preference barely separated
   relevant from irrelevant questions (docs/evals.md), so for them "ask" means call;
3. the functions within reach of the best are offered (a request may need several
   different ones), each with its required parameters and the optional ones the request
   names; 1..4 calls per reply;
4. the calls' arguments are settled against the schema (agent/arguments.py): optional
   values the request does not hold are left out, defaults too, duplicate calls dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from milliwatt.agent.arguments import offered_parameters, settle_arguments
from milliwatt.agent.relevance import RelevanceJudge
from milliwatt.evals.bfcl import Attempt, CallFn, tool_specs
from milliwatt.evals.bfcl_ast import Call
from milliwatt.models.base import GenerationSettings, Message, Model, Role, ToolSpec
from milliwatt.models.tool_prompt import calls_schema, compact_signature, read_calls

Embed = Callable[[Sequence[str]], np.ndarray]

MAX_CALLS = 4  # BFCL's parallel questions ask for 2-4 calls
OFFER_WITHIN = 0.15  # functions scoring this close to the best are offered too
MAX_OFFERED = 4
# per model: log P("calls") - log P("none") a request in the "ask" zone needs to be called,
# set on the tuning half. None: the model's choice is not used (it did not separate
# relevant from irrelevant tuning questions: AUC 0.64 for SmolLM2-135M, 0.53 for
# Qwen2.5-Coder-0.5B, against 0.89 for the relevance margin alone)
CALL_BIAS: dict[str, float | None] = {"smollm2-135m": None, "qwen-coder-0.5b": None}
_GENERATION = GenerationSettings(max_tokens=256, temperature=0.0, seed=0)
# the reply's first key is the choice: its log-probabilities are read there
_SCORED = GenerationSettings(
    max_tokens=256, temperature=0.0, seed=0, score_words=("calls", "none"), score_after='{"'
)


@dataclass(frozen=True)
class Reply:
    calls: list[Call] | None  # None: cut off by the token limit
    tokens: int
    text: str
    preference: float | None  # log P("calls") - log P("none"), when scored


def instructions(tools: Sequence[ToolSpec], *, none: bool) -> str:
    lines = "\n".join(f"- {compact_signature(t)}" for t in tools)
    text = (
        f"You call functions for the user. Functions:\n{lines}\n"
        'Reply {"calls": [{"name": NAME, "arguments": {...}}]} with one call for each '
        "action the user asks for, with values taken from the request."
    )
    if none:
        text += ' Reply {"none": true} when no function can do what the user asks.'
    return text


def constrained_reply(
    model: Model,
    messages: Sequence[Mapping[str, str]],
    tools: Sequence[ToolSpec],
    *,
    none: bool,
    scored: bool = False,
) -> Reply:
    """The model's calls of `tools` (or none, where allowed) under the calls grammar."""
    schema = calls_schema(tools, max_calls=MAX_CALLS, none=none)
    prompt = [Message("system", instructions(tools, none=none)), *_messages(messages)]
    settings = _SCORED if scored else _GENERATION
    response = model.complete(prompt, json_schema=schema, settings=settings)
    read = read_calls(response.text)
    calls = None if read is None else [Call(name, arguments) for name, arguments in read]
    preference = None
    if {"calls", "none"} <= response.scores.keys():
        preference = response.scores["calls"] - response.scores["none"]
    return Reply(calls, response.usage.total_tokens, response.text, preference)


def plain_call_fn(model: Model) -> CallFn:
    def call(messages: list[dict[str, str]], functions: list[dict[str, Any]]) -> Attempt:
        reply = constrained_reply(model, messages, tool_specs(functions), none=False)
        kind = "cut" if reply.calls is None else "plain"
        return Attempt(reply.calls or [], reply.tokens, f"{model.name}:{kind}", reply.text)

    return call


def pipeline_call_fn(
    model: Model,
    embed: Embed,
    judge: RelevanceJudge | None = None,
    *,
    call_bias: float | None = None,
) -> CallFn:
    """`call_bias`: see CALL_BIAS (None: the model's own table entry, if any)."""
    judge = judge or RelevanceJudge(embed)
    bias = call_bias if call_bias is not None else CALL_BIAS.get(model.name)

    def call(messages: list[dict[str, str]], functions: list[dict[str, Any]]) -> Attempt:
        request = " ".join(m["content"] for m in messages if m["role"] == "user")
        specs = {s.name: s for s in tool_specs(functions)}
        ranked = judge.judge(request, list(specs.values()))
        best = ranked[0]
        if best.verdict == "decline":
            return Attempt([], 0, f"relevance:decline({best.margin:.2f})")
        near = [r for r in ranked if r.score >= best.score - OFFER_WITHIN][:MAX_OFFERED]
        offered = [offered_parameters(request, specs[r.name]) for r in near]
        ask = best.verdict == "ask" and bias is not None
        reply = constrained_reply(model, messages, offered, none=ask, scored=ask)
        tokens, route = reply.tokens, f"{model.name}:{best.verdict}"
        if ask and bias is not None:
            preference = reply.preference if reply.preference is not None else 0.0
            route = f"{model.name}:ask({preference:+.2f})"
            if preference < bias:
                return Attempt([], tokens, f"{route}:none", reply.text)
            if not reply.calls:  # greedy said none, the bias says call: ask for the call
                reply = constrained_reply(model, messages, offered, none=False)
                tokens += reply.tokens
        if reply.calls is None:
            return Attempt([], tokens, f"{route}:cut", reply.text)
        settled: list[Call] = []
        for c in reply.calls:
            settled_call = Call(c.name, settle_arguments(request, specs[c.name], c.arguments))
            if settled_call not in settled:  # a small model repeats itself
                settled.append(settled_call)
        return Attempt(settled, tokens, route, reply.text)

    return call


# the roles a BFCL conversation keeps; any other speaks as the user
_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant"}


def _messages(messages: Sequence[Mapping[str, str]]) -> list[Message]:
    return [Message(_ROLES.get(m["role"], "user"), m["content"]) for m in messages]
