"""Call functions for the BFCL runner: a model used raw, and milliwatt's pipeline.

raw: the functions are described in the prompt and the model writes calls as free text
(`[f(a=1), g(b="x")]`, BFCL's prompting format), parsed afterwards.
pipeline: the question is matched to the functions by embedding similarity; when none is
close enough no call is made, otherwise the closest one is called and the model only writes
its arguments, constrained to the function's JSON schema.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from milliwatt.evals.bfcl import Attempt, CallFn, tool_specs
from milliwatt.evals.bfcl_ast import Call
from milliwatt.models.base import GenerationSettings, Message, Model, Role, ToolSpec
from milliwatt.models.tool_prompt import compact_signature

Mode = Literal["raw", "pipeline"]
Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised rows

RAW_INSTRUCTIONS = (
    "You are given a question and a set of functions. If a function can answer the question, "
    "reply only with the call(s), in the format "
    "[func_name1(param1=value1, param2=value2), func_name2(param=value)]. "
    "If no function fits, or parameters are missing, say so in plain words instead. "
    "Here are the functions, in JSON:\n"
)
PIPELINE_INSTRUCTIONS = (
    "Write the JSON arguments of this function call for the user's request, with values "
    "taken from the request:"
)
_GENERATION = GenerationSettings(max_tokens=128, temperature=0.0, seed=0)


def make_call_fn(mode: Mode, model: Model, *, embed: Embed | None = None) -> CallFn:
    if mode == "raw":
        return raw_call_fn(model)
    if mode == "pipeline":
        if embed is None:
            from milliwatt.models.embeddings import get_embedder

            embed = get_embedder().embed
        return pipeline_call_fn(model, embed)
    raise ValueError(f"unknown mode {mode!r}: use raw or pipeline")


def raw_call_fn(model: Model) -> CallFn:
    def call(messages: list[dict[str, str]], functions: list[dict[str, Any]]) -> Attempt:
        system = RAW_INSTRUCTIONS + json.dumps(functions, ensure_ascii=False)
        prompt = [Message("system", system), *_messages(messages)]
        response = model.complete(prompt, settings=_GENERATION)
        calls = parse_calls(response.text)
        return Attempt(calls, response.usage.total_tokens, f"{model.name}:raw", response.text)

    return call


def pipeline_call_fn(model: Model, embed: Embed, *, min_similarity: float = 0.45) -> CallFn:
    """Preselect by similarity, then fill the chosen function's arguments under its schema.

    The relevance decision is the preselection's: below `min_similarity` no call is made
    (0.45 declines ~85% of BFCL's irrelevance questions and passes ~88% of the relevant
    ones to the model; docs/evals.md has the trade-off).
    Otherwise the closest function is called and the model only writes its required
    arguments, constrained to their JSON schema, so the call always parses and fits.
    """
    cache: dict[str, np.ndarray] = {}

    def call(messages: list[dict[str, str]], functions: list[dict[str, Any]]) -> Attempt:
        question = " ".join(m["content"] for m in messages if m["role"] == "user")
        texts = [_function_text(f) for f in functions]
        missing = [t for t in texts if t not in cache]
        if missing:
            cache.update(zip(missing, embed(missing), strict=True))
        similarity = np.stack([cache[t] for t in texts]) @ embed([question])[0]
        if float(similarity.max()) < min_similarity:
            return Attempt([], 0, "preselect:none")
        spec = tool_specs([functions[int(similarity.argmax())]])[0]
        schema = _required_only(spec.parameters)
        signature = compact_signature(ToolSpec(spec.name, spec.description, schema))
        guide = f"{PIPELINE_INSTRUCTIONS}\n{signature}"
        prompt = [Message("system", guide), *_messages(messages)]
        response = model.complete(prompt, json_schema=schema, settings=_GENERATION)
        try:
            arguments = json.loads(response.text)
        except json.JSONDecodeError:  # cut off by the token limit
            return Attempt([], response.usage.total_tokens, f"{model.name}:cut", response.text)
        route = f"{model.name}:constrained"
        return Attempt([Call(spec.name, arguments)], response.usage.total_tokens, route)

    return call


def _required_only(schema: dict[str, Any]) -> dict[str, Any]:
    """Small models fill every property they are shown; BFCL marks most optional ones as
    left out, so only the required ones are offered."""
    required = schema.get("required", [])
    properties = {k: v for k, v in schema.get("properties", {}).items() if k in required}
    return {**schema, "properties": properties, "required": required}


def parse_calls(text: str) -> list[Call]:
    """Calls written as Python (`[f(a=1)]`, `f(a=1)`) or JSON; [] when there are none."""
    text = re.sub(r"^```\w*|```$", "", text.strip(), flags=re.MULTILINE).strip()
    for candidate in _bracketed(text):
        calls = _python_calls(candidate)
        if calls is not None:
            return calls
    return _json_calls(text)


def _bracketed(text: str) -> list[str]:
    candidates = []
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    match = re.search(r"[A-Za-z_][\w.]*\(.*\)", text, re.DOTALL)
    if match:
        candidates.append(match.group(0))
    return candidates


def _python_calls(source: str) -> list[Call] | None:
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    nodes = tree.elts if isinstance(tree, ast.List | ast.Tuple) else [tree]
    calls = []
    for node in nodes:
        if not isinstance(node, ast.Call):
            return None
        name = _dotted(node.func)
        if name is None:
            return None
        arguments: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                return None
            try:
                arguments[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:  # a name or expression: keep its source, as BFCL does
                arguments[keyword.arg] = ast.unparse(keyword.value)
        calls.append(Call(name, arguments))
    return calls


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _json_calls(text: str) -> list[Call]:
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return []
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError:
        return []
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, Mapping):
            return []
        name = item.get("name") or item.get("tool") or item.get("function")
        arguments = item.get("arguments", item.get("parameters", {}))
        if not isinstance(name, str) or not isinstance(arguments, Mapping):
            return []
        calls.append(Call(name, dict(arguments)))
    return calls


def _function_text(function: Mapping[str, Any]) -> str:
    name = re.sub(r"[._]", " ", str(function["name"]))
    return f"{name}: {function.get('description', '')}"


# the roles a BFCL conversation keeps; any other speaks as the user
_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant"}


def _messages(messages: Sequence[Mapping[str, str]]) -> list[Message]:
    return [Message(_ROLES.get(m["role"], "user"), m["content"]) for m in messages]
