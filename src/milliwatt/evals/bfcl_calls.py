"""Call functions for the BFCL runner, by mode; the raw one and its parser live here.

raw: the functions are described in the prompt and the model writes calls as free text
(`[f(a=1), g(b="x")]`, BFCL's prompting format), parsed afterwards.
plain and pipeline: constrained calls (evals/bfcl_pipeline.py).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from milliwatt.evals.bfcl import Attempt, CallFn
from milliwatt.evals.bfcl_ast import Call
from milliwatt.evals.bfcl_pipeline import pipeline_call_fn, plain_call_fn
from milliwatt.models.base import GenerationSettings, Message, Model, Role

Mode = Literal["raw", "plain", "pipeline"]
MODES: tuple[Mode, ...] = ("raw", "plain", "pipeline")
Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised rows

RAW_INSTRUCTIONS = (
    "You are given a question and a set of functions. If a function can answer the question, "
    "reply only with the call(s), in the format "
    "[func_name1(param1=value1, param2=value2), func_name2(param=value)]. "
    "If no function fits, or parameters are missing, say so in plain words instead. "
    "Here are the functions, in JSON:\n"
)
_GENERATION = GenerationSettings(max_tokens=128, temperature=0.0, seed=0)


def make_call_fn(mode: Mode, model: Model, *, embed: Embed | None = None) -> CallFn:
    if mode == "raw":
        return raw_call_fn(model)
    if mode == "plain":
        return plain_call_fn(model)
    if mode == "pipeline":
        if embed is None:
            from milliwatt.models.embeddings import get_embedder

            embed = get_embedder().embed
        return pipeline_call_fn(model, embed)
    raise ValueError(f"unknown mode {mode!r}: use raw, plain or pipeline")


def raw_call_fn(model: Model) -> CallFn:
    def call(messages: list[dict[str, str]], functions: list[dict[str, Any]]) -> Attempt:
        system = RAW_INSTRUCTIONS + json.dumps(functions, ensure_ascii=False)
        prompt = [Message("system", system), *_messages(messages)]
        response = model.complete(prompt, settings=_GENERATION)
        calls = parse_calls(response.text)
        return Attempt(calls, response.usage.total_tokens, f"{model.name}:raw", response.text)

    return call


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


# the roles a BFCL conversation keeps; any other speaks as the user
_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant"}


def _messages(messages: Sequence[Mapping[str, str]]) -> list[Message]:
    return [Message(_ROLES.get(m["role"], "user"), m["content"]) for m in messages]
