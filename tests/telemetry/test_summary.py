"""The console's and the report's figures, computed from request records."""

from __future__ import annotations

import pytest

from milliwatt.telemetry.records import (
    RequestRecord,
    attack_families,
    denials_of,
    waf_family,
)
from milliwatt.telemetry.summary import parse_span, percentile, summarize, timeseries


def record(route: str, ts: float = 100.0, **fields: object) -> RequestRecord:
    return RequestRecord(f"r{ts}-{route}", ts, "POST", "/v1/chat/completions", 200,
                         route=route, agent="milliwatt", **fields)  # type: ignore[arg-type]  # fmt: skip


def test_spans_parse_and_bad_ones_are_named() -> None:
    assert parse_span("90s") == 90 and parse_span("15m") == 900 and parse_span("24h") == 86400
    assert parse_span("1.5d") == 129600 and parse_span("2w") == 1209600
    for bad in ("", "24", "h", "-1h", "0m", "3 years"):
        with pytest.raises(ValueError, match="invalid time span"):
            parse_span(bad)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_savings_price_tool_answers_at_the_smallest_models_mean() -> None:
    records = [
        record("tool", joules_est=0.01),
        record("tool", joules_est=0.03),
        record("model", model="small", tier=0, stop="answer",
               prompt_tokens=90, completion_tokens=10, joules_est=2.0),
        record("model", model="small", tier=0, stop="answer",
               prompt_tokens=250, completion_tokens=50, joules_est=4.0),
        # a larger tier's answer is not the baseline
        record("model", model="big", tier=1, stop="answer",
               prompt_tokens=1000, completion_tokens=500, joules_est=50.0),
    ]  # fmt: skip
    saved = summarize(records, since=0, until=200)["saved"]
    assert saved["baseline_model"] == "small" and saved["answered_by_tools"] == 2
    assert saved["tokens"] == 2 * 200  # two tool answers x the mean of 100 and 300 tokens
    assert saved["joules_est"] == pytest.approx(2 * 3.0 - 0.04)
    spent = 0.04 + 2.0 + 4.0 + 50.0
    assert saved["joules_ratio"] == round((spent + 2 * 3.0 - 0.04) / spent, 2)


def test_no_model_answer_means_no_savings_figure() -> None:
    saved = summarize([record("tool")], since=0, until=200)["saved"]
    assert saved["joules_est"] is None and saved["tokens"] is None


def test_summary_counts_routes_latency_blocks_and_denials() -> None:
    records = [
        record("tool", duration_ms=2.0),
        record("tool", duration_ms=4.0),
        record("model", model="small", tier=0, stop="answer", duration_ms=900.0),
        record("refused", model="small", stop="budget", denials=["budget"]),
        record("refused", waf_blocked=True, denials=["waf"],
               waf_rules=["920350", "942100", "942190", "949110"]),
    ]  # fmt: skip
    budgets = {"milliwatt": {"tokens_per_request": 10.0}}
    s = summarize(records, since=0, until=200, budgets=budgets)
    assert s["requests"] == 5
    assert s["routes"] == {"tool": 2, "model": 1, "refused": 2, "error": 0, "cancelled": 0}
    assert s["latency_ms"]["tool"] == {"count": 2, "p50": 2.0, "p90": 4.0, "p99": 4.0}
    assert s["latency_ms"]["small"]["count"] == 1
    assert s["waf"]["families"] == {"protocol enforcement": 1, "sql injection": 1}
    assert [r["id"] for r in s["waf"]["top_rules"]][:1] == ["920350"]
    assert s["denials"] == {"budget": 1, "waf": 1, "egress": 0, "policy": 0}
    tokens_row = next(b for b in s["budgets"] if b["budget"] == "tokens_per_request")
    assert tokens_row["limit"] == 10.0 and tokens_row["refusals"] == 1


def test_denials_are_read_from_stops_and_tool_results() -> None:
    assert denials_of("budget", []) == ["budget"]
    results = [(False, "error: blocked by the egress policy: 10.0.0.1 is private"),
               (True, "blocked by the egress policy (quoted, but the call worked)"),
               (False, "error: Denied by policy: tools.exec")]  # fmt: skip
    assert denials_of("answer", results) == ["egress", "policy"]
    assert denials_of("answer", [(False, "error: division by zero")]) == []


def test_waf_rules_map_to_crs_families() -> None:
    assert waf_family("942100") == "sql injection" and waf_family("941100") == "xss"
    assert waf_family("1000") == "custom" and waf_family("999999") == "custom"
    assert attack_families(["942100", "949110"]) == ["sql injection"]
    assert attack_families(["949110"]) == ["other"]  # only the score: no family to name


def test_timeseries_buckets_by_lane() -> None:
    records = [
        record("tool", ts=0.5, prompt_tokens=0),
        record("tool", ts=61.0),
        record("model", ts=62.0, model="small", prompt_tokens=7, completion_tokens=3,
               joules_est=1.5),
        record("refused", ts=179.0),
    ]  # fmt: skip
    series = timeseries(records, since=0, until=180, step=60)
    assert series["t"] == [0, 60, 120]
    assert list(series["lanes"]) == ["tool", "small", "refused"]
    assert series["lanes"]["tool"] == [1, 1, 0] and series["lanes"]["small"] == [0, 1, 0]
    assert series["lanes"]["refused"] == [0, 0, 1]
    assert series["tokens"] == [0, 10, 0] and series["joules_est"] == [0.0, 1.5, 0.0]
