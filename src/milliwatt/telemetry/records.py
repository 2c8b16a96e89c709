"""One served request as telemetry sees it: what it was, where it went, what it cost.

The outermost middleware opens a record per request and makes it current; the layers
inside (the WAF, the API) fill in what they alone know. The finished record feeds the
metrics, the request ledger, the live feed and the log line, so all of them agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from typing import Any

from milliwatt.telemetry.ledger import LedgerEntry

# route: where the request was answered ("tool", "model"), or that it was not: refused by
# a control, failed, or cancelled by its client before its answer was complete
ROUTES = ("tool", "model", "refused", "error", "cancelled")

# denials a request met, by kind, recognised in what a run already carries: a budget stop,
# or a tool's result. A new kind is one line here (and shows up on /metrics and the console).
TOOL_RESULT_DENIALS: dict[str, tuple[str, ...]] = {
    "egress": ("blocked by the egress policy",),
    "policy": ("denied by policy", "refused by policy", "not allowed by policy"),
}
DENIAL_KINDS = ("budget", "waf", *TOOL_RESULT_DENIALS)


@dataclass
class RequestRecord:
    id: str
    ts: float  # seconds since the epoch, when the request arrived
    method: str
    path: str
    status: int = 0
    duration_ms: float = 0.0
    route: str | None = None
    agent: str | None = None
    model: str | None = None
    tier: int | None = None  # the model's place in its agent's cascade, 0 = smallest
    stop: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    joules_est: float = 0.0
    tools: list[dict[str, Any]] = field(default_factory=list)  # name, ok
    denials: list[str] = field(default_factory=list)
    waf_rules: list[str] = field(default_factory=list)  # ids of the rules that matched
    waf_blocked: bool = False
    trace_id: str | None = None
    session: str | None = None
    streamed: bool = False
    # for the trace, built after the answer is sent: never stored in the ledger
    trace: RequestTiming | None = field(default=None, repr=False, compare=False)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        """The stored fields (the trace's timings are not among them)."""
        return {name: getattr(self, name) for name in STORED_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestRecord:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


STORED_FIELDS = tuple(f.name for f in fields(RequestRecord) if f.name != "trace")


@dataclass
class RequestTiming:
    """When a traced request and its parts ran (epoch ns), recorded on its path with a few
    clock reads; its spans are made from these once the answer is out."""

    started_ns: int
    headers: dict[str, str]  # the caller's traceparent / tracestate
    ended_ns: int = 0
    waf: tuple[int, int] | None = None
    steps: list[LedgerEntry] = field(default_factory=list)


current_request: ContextVar[RequestRecord | None] = ContextVar("current_request", default=None)


def denials_of(stop: str | None, tool_results: Iterable[tuple[bool, str]]) -> list[str]:
    """The kinds of denial a run met: a budget stop, tools refused by a policy."""
    found = ["budget"] if stop == "budget" else []
    for ok, text in tool_results:
        if ok:
            continue
        lowered = text.lower()
        for kind, marks in TOOL_RESULT_DENIALS.items():
            if kind not in found and any(mark in lowered for mark in marks):
                found.append(kind)
    return found


# CRS rule files by the first three digits of a rule's id (OWASP CRS v4 numbering)
WAF_FAMILIES = {
    "901": "setup", "905": "exclusions", "911": "method enforcement",
    "913": "scanner detection", "920": "protocol enforcement", "921": "protocol attack",
    "922": "multipart attack", "930": "local file inclusion", "931": "remote file inclusion",
    "932": "remote code execution", "933": "php injection", "934": "generic attack",
    "941": "xss", "942": "sql injection", "943": "session fixation", "944": "java attack",
    "949": "inbound anomaly score", "950": "data leakage", "951": "sql data leakage",
    "952": "java data leakage", "953": "php data leakage", "954": "iis data leakage",
    "955": "web shells", "959": "outbound anomaly score", "980": "correlation",
}  # fmt: skip
SCORING_FAMILIES = frozenset({"setup", "inbound anomaly score", "outbound anomaly score",
                              "correlation", "exclusions"})  # fmt: skip


def waf_family(rule_id: str) -> str:
    """The CRS family a rule belongs to ("sql injection"); rules of milliwatt or of the
    operator (ids outside CRS's ranges) are "custom"."""
    digits = str(rule_id)
    if len(digits) == 6 and digits[:3] in WAF_FAMILIES:
        return WAF_FAMILIES[digits[:3]]
    return "custom"


def attack_families(rule_ids: Iterable[str]) -> list[str]:
    """The families of the matched rules that detect something (not the score keepers)."""
    families = dict.fromkeys(waf_family(r) for r in rule_ids)
    return [f for f in families if f not in SCORING_FAMILIES] or ["other"]
