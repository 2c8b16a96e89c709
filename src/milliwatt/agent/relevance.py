"""Should this request call one of the offered functions, and which one?

Four kinds of evidence; an absolute cosine only among them, for functions that describe
themselves (a terse description scores low against any request):

- similarity relative to a null hypothesis: the request is embedded once and scored
  against each offered function (its name split into words with its description, and its
  name with its parameter names) and against BACKGROUND_FUNCTIONS, functions nobody
  offered. `margin` is the best function's score minus the mean of the request's three
  best background scores: it asks "does this function fit better than an arbitrary API
  would?", which holds for terse, oddly named functions as well as for verbose ones;
- relative to the other candidates: functions are ranked, the best one is judged;
- argument fit: a function whose required numbers cannot come from the request (no
  number in it) is unlikely to be meant;
- near misses (agent/relevance_features.py): for a function that describes itself, the
  probability that it is meant, from the score, the margin, the argument fit and how many
  of the function's own words the request echoes; BFCL's irrelevance questions are such
  near misses ("external rate of return" offered the internal one).

The verdict is "call" (clearly meant), "decline" (clearly not) or "ask": let the model
choose between calling and answering (a `none` option in its grammar). A function is
declined below the margin floor, or, when it describes itself, when it is less likely than
`decline_below` to be meant: the threshold that, on BFCL's tuning half, declines the most
irrelevance questions net of the relevant ones declined (a wrong decline and a wrong call
each cost an answer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from milliwatt.agent.function_background import BACKGROUND_FUNCTIONS
from milliwatt.agent.relevance_features import described, echo, near_miss_probability
from milliwatt.agent.resolvers.common import Request
from milliwatt.models.base import ToolSpec

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised rows
Verdict = Literal["call", "ask", "decline"]

# set on the tuning half of BFCL (docs/evals.md, "Relevance"), never the held-out one: the
# margin floor, the only decline for terse functions, declines at most 1% of relevant
# questions (0.0 declined 51% of irrelevant ones and 1.0%; 0.05 would decline 57% and 2.8%)
DEFAULT_CALL_MARGIN = 0.5
DEFAULT_DECLINE_MARGIN = 0.0
# a described function less likely than this to be meant is declined: the point of the
# tuning half's trade-off curve where declined irrelevant minus declined relevant questions
# is largest (85% and 6%; docs/evals.md, "Relevance alone")
DEFAULT_DECLINE_BELOW = 0.45
_NULL_TOP = 3  # background functions averaged into the null score
_NUMBER = re.compile(r"\d")
_NUMERIC = frozenset({"integer", "number"})


@dataclass(frozen=True)
class Relevance:
    """One offered function judged against a request."""

    name: str
    score: float  # best cosine between the request and the function's texts
    margin: float  # score minus the null (background) score
    fits: bool  # the request can supply the required arguments' kinds of values
    echo: float  # share of the function's own words the request uses
    meant: float | None  # P(meant) for a described function; None for a terse one
    verdict: Verdict


def name_words(name: str) -> str:
    """`getCurrentWeather` -> 'get current weather'; `weather.get_now` -> 'weather get now'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(re.sub(r"[^A-Za-z0-9]+", " ", spaced).lower().split())


def function_texts(spec: ToolSpec) -> list[str]:
    """What a function is matched on: its words with its description, and its signature."""
    words = name_words(spec.name)
    params = " ".join(name_words(p) for p in spec.parameters.get("properties", {}))
    texts = [f"{words}: {spec.description}".strip(" :"), f"{words} {params}".strip()]
    return list(dict.fromkeys(t for t in texts if t))


def arguments_fit(request: str, spec: ToolSpec) -> bool:
    """False when a required parameter wants a number and the request holds none."""
    properties: dict[str, Any] = spec.parameters.get("properties", {})
    wants_number = any(
        _numeric(properties.get(name, {})) for name in spec.parameters.get("required", [])
    )
    return not wants_number or bool(_NUMBER.search(Request.of(request).text))


def _numeric(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return _numeric(schema.get("items", {}))
    return schema.get("type") in _NUMERIC and "enum" not in schema


class RelevanceJudge:
    """Ranks offered functions for a request and says whether the best one is meant."""

    def __init__(
        self,
        embed: Embed,
        *,
        call_margin: float = DEFAULT_CALL_MARGIN,
        decline_margin: float = DEFAULT_DECLINE_MARGIN,
        decline_below: float | None = DEFAULT_DECLINE_BELOW,
        background: Sequence[str] = BACKGROUND_FUNCTIONS,
    ) -> None:
        if decline_margin > call_margin:
            raise ValueError(
                f"decline_margin ({decline_margin}) must not exceed call_margin ({call_margin})"
            )
        if decline_below is not None and not 0.0 <= decline_below <= 1.0:
            raise ValueError(f"decline_below must be a probability, got {decline_below}")
        if not background:
            raise ValueError("background: the null hypothesis needs at least one function")
        self._embed = embed
        self.call_margin = call_margin
        self.decline_margin = decline_margin
        self.decline_below = decline_below  # None: the margin alone decides
        self._background_texts = list(background)
        self._background: np.ndarray | None = None
        self._vectors: dict[str, np.ndarray] = {}

    def null_score(self, query: np.ndarray) -> float:
        """How well an arbitrary function fits this request: its three best backgrounds."""
        if self._background is None:
            self._background = self._embed(self._background_texts)
        scores = np.sort(self._background @ query)[-_NULL_TOP:]
        return float(scores.mean())

    def judge(self, request: str, functions: Sequence[ToolSpec]) -> list[Relevance]:
        """Every function with its evidence, best first; only the best gets a verdict of
        "call" or "ask" (the others are "decline": one function is called per question)."""
        if not request.strip():
            raise ValueError("request: the request is empty")
        if not functions:
            return []
        query = self._embed([request])[0]
        null = self.null_score(query)
        groups = [function_texts(f) for f in functions]
        self._cache([t for group in groups for t in group])
        scored = sorted(
            (
                (float(max(self._vectors[t] @ query for t in group)), spec)
                for spec, group in zip(functions, groups, strict=True)
            ),
            key=lambda pair: -pair[0],
        )
        judged = []
        for rank, (score, spec) in enumerate(scored):
            margin, fits, echoed = score - null, arguments_fit(request, spec), echo(request, spec)
            meant = near_miss_probability(score, margin, fits, echoed) if described(spec) else None
            verdict: Verdict = "decline"
            if rank == 0:
                verdict = self.verdict(margin, fits, meant)
            judged.append(Relevance(spec.name, score, margin, fits, echoed, meant, verdict))
        return judged

    def verdict(self, margin: float, fits: bool, meant: float | None = None) -> Verdict:
        if margin < self.decline_margin or (not fits and margin < self.call_margin):
            return "decline"
        if meant is not None and self.decline_below is not None and meant < self.decline_below:
            return "decline"  # a near miss: it describes itself, and not as this request
        return "call" if margin >= self.call_margin and fits else "ask"

    def _cache(self, texts: list[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            self._vectors.update(zip(missing, self._embed(missing), strict=True))
