"""Where a WAF inspection's CPU goes, step by step: CRS at paranoia 1, phases 1-5.

    python bench/waf_steps.py [--requests N]

Wraps the engine's functions with thread-CPU timers (each step's own time, nested steps
subtracted), so the timers inflate the totals: the shares are what counts. Request kinds: the
gateway's `GET /healthz` and a small chat-completions `POST`, ordinary shop traffic and CRS
attack payloads (`bench/waf_engine.py`'s), each inspected once to warm the caches first.
Ends with one key=value line: each step's share of the ordinary requests, in percent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the timers wrap the engine's functions, which only its Python build allows
os.environ["MILLIWATT_WAF_PURE"] = "1"

import waf_engine as we
from milliwatt.shield.waf import (
    WAF,
    HttpRequest,
    HttpResponse,
    WafSettings,
    matching,
    operators,
    regexes,
    transaction,
    variables,
)

STEPS: list[tuple[Any, str, str]] = [
    (transaction, "load_request", "parsing"),
    (transaction, "load_request_body", "parsing"),
    (transaction, "load_response", "parsing"),
    (transaction, "audit_record", "audit"),
    (transaction.Transaction, "__init__", "setup"),
    (transaction, "screen_values", "screening"),
    (transaction.Transaction, "_run_phase", "rule_walk"),
    (variables.TxData, "select", "selection"),
    (matching.TargetMatching, "_transform", "transformations"),
    (regexes.PatternSet, "mask", "automata"),
    (operators.DetectSQLi, "evaluate", "libinjection"),
    (operators.DetectXSS, "evaluate", "libinjection"),
]


class Timers:
    """Exclusive thread-CPU time per step label."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = {}
        self._stack: list[list[Any]] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            now = time.thread_time_ns()
            if self._stack:
                top = self._stack[-1]
                self.spent[top[0]] = self.spent.get(top[0], 0) + now - top[1]
            self._stack.append([label, now])
            try:
                return inner(*args, **kwargs)
            finally:
                done, started = self._stack.pop()
                now = time.thread_time_ns()
                self.spent[done] = self.spent.get(done, 0) + now - started
                if self._stack:
                    self._stack[-1][1] = now

        setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    waf = WAF.load(we.CORPORA / "rules", WafSettings(paranoia=1))
    rng = random.Random(7)
    n = args.requests
    gateway = [("Host", "127.0.0.1:8080"), ("User-Agent", "python-httpx/0.27"), ("Accept", "*/*")]
    chat = json.dumps({"model": "smollm2", "messages": [{"role": "user", "content": "Weather?"}]})
    kinds = {
        "healthz": [HttpRequest("GET", "/healthz", headers=gateway)] * n,
        "chat_post": [
            HttpRequest(
                "POST",
                "/v1/chat/completions",
                headers=[*gateway, ("Content-Type", "application/json")],
                body=chat.encode(),
            )
        ]
        * n,
        "ordinary": we.ordinary(rng, n),
        "attack": we.attacks(we.CORPORA / "regression" / "tests", n, rng),
    }
    response = HttpResponse(200, [("Content-Type", "text/html")], b"<html>" + b"ok " * 300)
    timers = Timers()
    for owner, name, label in STEPS:
        timers.wrap(owner, name, label)

    def inspect(request: HttpRequest) -> int:
        start = time.thread_time_ns()
        tx = waf.transaction()
        if tx.process_request(request) is None:
            tx.process_response(response)
        tx.finish()
        return time.thread_time_ns() - start

    for batch in kinds.values():
        for request in batch:
            inspect(request)
    shares: dict[str, float] = {}
    for kind, batch in kinds.items():
        timers.spent.clear()
        total = sum(inspect(r) for r in batch)
        print(f"== {kind}: {total / len(batch) / 1000:.0f} us per request (timers included)")
        for label, ns in sorted(timers.spent.items(), key=lambda item: -item[1]):
            share = 100 * ns / total
            print(f"  {label:<16}{ns / len(batch) / 1000:8.0f} us {share:5.1f}%")
            if kind == "ordinary":
                shares[label] = share
    print(" ".join(f"{label}_pct={share:.1f}" for label, share in sorted(shares.items())))


if __name__ == "__main__":
    main()
