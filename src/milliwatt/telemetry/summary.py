"""The figures the console and `milliwatt report` show, computed from request records.

Savings follow the frugal eval's comparison: what the requests answered without a model
would have cost had the smallest model answered them too. That cost is read from the
ledger itself: the mean tokens and joules of the requests the smallest model answered.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from milliwatt.telemetry.records import (
    DENIAL_KINDS,
    ROUTES,
    RequestRecord,
    attack_families,
    waf_family,
)

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_span(text: str) -> float:
    """Seconds in "90s", "15m", "24h", "7d" or "2w"; ValueError naming the text otherwise."""
    found = _SPAN.match(text)
    if found is None or float(found.group(1)) <= 0:
        raise ValueError(f"invalid time span {text!r}: use a number and s, m, h, d or w (24h)")
    return float(found.group(1)) * _SECONDS[found.group(2)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def lane(record: RequestRecord) -> str:
    """The line a request draws in the route mix: "tool", the model's name, or the route."""
    if record.route == "model" and record.model:
        return record.model
    return record.route or "error"


def summarize(
    records: Sequence[RequestRecord],
    *,
    since: float,
    until: float,
    budgets: Mapping[str, Mapping[str, float | None]] | None = None,
) -> dict[str, Any]:
    routes = Counter({r: 0 for r in ROUTES}) + Counter(r.route or "error" for r in records)
    answered = [r for r in records if r.route in ("tool", "model")]
    return {
        "window": {"since": since, "until": until},
        "requests": len(records),
        "routes": {route: routes[route] for route in (*ROUTES, *sorted(set(routes) - set(ROUTES)))},
        "models": dict(Counter(r.model for r in records if r.route == "model" and r.model)),
        "tokens": {
            "prompt": sum(r.prompt_tokens for r in records),
            "completion": sum(r.completion_tokens for r in records),
            "total": sum(r.tokens for r in records),
        },
        "joules_est": round(sum(r.joules_est for r in records), 6),
        "saved": savings(answered),
        "latency_ms": latency(records),
        "waf": waf_summary(records),
        "denials": denial_counts(records),
        "budgets": budget_use(records, budgets or {}),
    }


def savings(records: Sequence[RequestRecord]) -> dict[str, Any]:
    """Tokens and joules the tool route saved against "the smallest model answers all"."""
    smallest = [r for r in records if r.route == "model" and r.tier == 0 and r.stop == "answer"]
    tool = [r for r in records if r.route == "tool"]
    spent_tokens = sum(r.tokens for r in records)
    spent_joules = sum(r.joules_est for r in records)
    result: dict[str, Any] = {
        "baseline_model": smallest[0].model if smallest else None,
        "answered_by_tools": len(tool),
        "model_answers_measured": len(smallest),
        "tokens": None,
        "joules_est": None,
        "joules_ratio": None,
    }
    if not smallest:  # no model answer yet to price the alternative with
        return result
    per_tokens = sum(r.tokens for r in smallest) / len(smallest)
    per_joules = sum(r.joules_est for r in smallest) / len(smallest)
    tool_joules = sum(r.joules_est for r in tool)
    saved_joules = len(tool) * per_joules - tool_joules
    baseline_joules = spent_joules + saved_joules
    result.update(
        tokens=round(len(tool) * per_tokens),
        joules_est=round(saved_joules, 6),
        baseline_joules_est=round(baseline_joules, 6),
        baseline_tokens=round(spent_tokens + len(tool) * per_tokens),
        # how many times cheaper this mix was than the baseline
        joules_ratio=round(baseline_joules / spent_joules, 2) if spent_joules > 0 else None,
    )
    return result


def latency(records: Sequence[RequestRecord]) -> dict[str, dict[str, float | int | None]]:
    by_lane: dict[str, list[float]] = {}
    for record in records:
        by_lane.setdefault(lane(record), []).append(record.duration_ms)
    return {
        name: {
            "count": len(values),
            "p50": _round(percentile(values, 50)),
            "p90": _round(percentile(values, 90)),
            "p99": _round(percentile(values, 99)),
        }
        for name, values in sorted(by_lane.items())
    }


def waf_summary(records: Sequence[RequestRecord], top: int = 10) -> dict[str, Any]:
    blocked = [r for r in records if r.waf_blocked]
    families = Counter(f for r in blocked for f in attack_families(r.waf_rules))
    rules = Counter(rule for r in blocked for rule in r.waf_rules)
    return {
        "blocks": len(blocked),
        "families": dict(families.most_common()),
        "top_rules": [
            {"id": rule, "family": waf_family(rule), "count": count}
            for rule, count in rules.most_common(top)
        ],
    }


def denial_counts(records: Sequence[RequestRecord]) -> dict[str, int]:
    counts = Counter({kind: 0 for kind in DENIAL_KINDS})
    counts.update(kind for r in records for kind in r.denials)
    return {kind: counts[kind] for kind in (*DENIAL_KINDS, *sorted(set(counts) - {*DENIAL_KINDS}))}


def budget_use(
    records: Sequence[RequestRecord], budgets: Mapping[str, Mapping[str, float | None]]
) -> list[dict[str, Any]]:
    """Per agent and per-request budget: the limit, the most and the mean a request used."""
    used: dict[str, Callable[[RequestRecord], float]] = {
        "tokens_per_request": lambda r: float(r.tokens),
        "model_calls_per_request": lambda r: float(r.model_calls),
        "seconds_per_request": lambda r: r.duration_ms / 1000,
    }
    rows = []
    for agent, limits in sorted(budgets.items()):
        mine = [r for r in records if r.agent == agent and r.route in ("model", "refused")]
        for name, measure in used.items():
            values = [measure(r) for r in mine]
            rows.append(
                {
                    "agent": agent,
                    "budget": name,
                    "limit": limits.get(name),
                    "max": _round(max(values)) if values else None,
                    "mean": _round(sum(values) / len(values)) if values else None,
                    "refusals": sum(1 for r in mine if "budget" in r.denials),
                }
            )
    return rows


def timeseries(
    records: Sequence[RequestRecord], *, since: float, until: float, step: float
) -> dict[str, Any]:
    """Per `step` seconds: requests by lane, tokens, joules and the p50 latency."""
    count = max(1, math.ceil((until - since) / step))
    lanes = sorted({lane(r) for r in records}, key=_lane_order)
    series: dict[str, list[int]] = {name: [0] * count for name in lanes}
    tokens, joules = [0] * count, [0.0] * count
    durations: list[list[float]] = [[] for _ in range(count)]
    for record in records:
        i = min(count - 1, max(0, int((record.ts - since) // step)))
        series[lane(record)][i] += 1
        tokens[i] += record.tokens
        joules[i] += record.joules_est
        durations[i].append(record.duration_ms)
    return {
        "step": step,
        "t": [since + i * step for i in range(count)],
        "lanes": series,
        "tokens": tokens,
        "joules_est": [round(j, 6) for j in joules],
        "p50_ms": [_round(percentile(d, 50)) for d in durations],
    }


def _lane_order(name: str) -> tuple[int, str]:
    return {"tool": 0, "refused": 7, "error": 8, "cancelled": 9}.get(name, 1), name


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
