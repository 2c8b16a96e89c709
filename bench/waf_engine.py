"""WAF engine throughput: CRS (paranoia 1, blocking) with and without the one-pass pattern set.

    python bench/waf_engine.py [--requests N] [--rounds N] [--no-python]

Requests are a mix of ordinary traffic (generated) and attacks (the first stage of CRS
regression tests). Both engines inspect the same requests, alternating per request, on one
thread: phases 1-5 each, with a small HTML response. Times are the thread's CPU time, so
req/s is per core and does not depend on what else the machine runs. Prints requests/s and
p50/p99 inspection time per engine, the pattern set's speed-up; then, when the engine runs its
compiled build, the same run on its Python sources in a process of its own and the ratio; and
ends with one key=value line.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from milliwatt.shield.waf import (
    WAF,
    HttpRequest,
    HttpResponse,
    MalformedRequest,
    WafSettings,
    native,
)
from milliwatt.shield.waf.ftw import render_request
from milliwatt.shield.waf.http1 import parse_request

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / ".." / "shared" / "corpora" / "crs"
BROWSER = [
    ("Host", "shop.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-GB,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Cookie", "session=6f1c2a9e8b7d4c3f; consent=yes"),
    ("Referer", "https://shop.example.com/catalog"),
]
WORDS = [
    "red",
    "blue",
    "shoes",
    "jacket",
    "summer",
    "sale",
    "size",
    "medium",
    "large",
    "order",
    "basket",
    "gift",
    "card",
]


def ordinary(rng: random.Random, n: int) -> list[HttpRequest]:
    out: list[HttpRequest] = []
    for i in range(n):
        q = "+".join(rng.sample(WORDS, 3))
        kind = i % 3
        if kind == 0:
            out.append(
                HttpRequest(
                    "GET", f"/search?q={q}&page={rng.randint(1, 9)}&sort=price", headers=BROWSER
                )
            )
        elif kind == 1:
            body = f"name={rng.choice(WORDS)}&qty={rng.randint(1, 5)}&note={q}".encode()
            hs = [*BROWSER, ("Content-Type", "application/x-www-form-urlencoded")]
            out.append(HttpRequest("POST", "/basket/add", headers=hs, body=body))
        else:
            item, tag1, tag2 = rng.sample(WORDS, 3)
            body = f'{{"item": "{item}", "qty": {i % 7}, "tags": ["{tag1}", "{tag2}"]}}'.encode()
            hs = [*BROWSER, ("Content-Type", "application/json")]
            out.append(HttpRequest("POST", "/api/orders", headers=hs, body=body))
    return out


def attacks(tests: Path, n: int, rng: random.Random) -> list[HttpRequest]:
    found: list[HttpRequest] = []
    for path in sorted(tests.rglob("REQUEST-9*/*.yaml")):
        for test in yaml.safe_load(path.read_text()).get("tests", []):
            stages = test.get("stages") or []
            if not stages:
                continue
            try:
                found.append(parse_request(render_request(stages[0].get("input") or {})))
            except (MalformedRequest, ValueError):
                continue
    rng.shuffle(found)
    return found[:n]


def inspect(waf: WAF, request: HttpRequest, response: HttpResponse) -> int:
    """CPU time of one inspection: on a shared machine, wall time measures the neighbours."""
    start = time.thread_time_ns()
    tx = waf.transaction()
    if tx.process_request(request) is None:
        tx.process_response(response)
    tx.finish()
    return time.thread_time_ns() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400, help="requests of each kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-python", action="store_true", help="skip the Python build's run beside the compiled"
    )
    args = parser.parse_args()
    print(f"engine build: {native.state()}")
    rules = Path(os.environ.get("MILLIWATT_CRS_DIR", CORPORA / "rules"))
    tests = CORPORA / "regression" / "tests"
    if not rules.exists() or not tests.is_dir():
        sys.exit(f"CRS rules or regression tests not found under {CORPORA}")
    rng = random.Random(7)
    benign = ordinary(rng, args.requests)
    hostile = attacks(tests, args.requests, rng)
    response = HttpResponse(
        200, [("Content-Type", "text/html")], b"<html><body>" + b"ok " * 300 + b"</body></html>"
    )
    settings = WafSettings(paranoia=1)
    started = time.perf_counter()
    engines = {
        "pattern_set": WAF.load(rules, settings, pattern_set=True),
        "per_pattern": WAF.load(rules, settings, pattern_set=False),
    }
    load_s = (time.perf_counter() - started) / 2
    main_waf = engines["pattern_set"]
    print(f"{main_waf.source}: {main_waf.rule_count} rules, loaded in {load_s:.2f}s each")
    covered = main_waf.pattern_set.covered if main_waf.pattern_set else 0
    print(f"pattern set holds {covered} of {sum(main_waf.regex_engines.values())} regexes")
    times: dict[tuple[str, str], list[int]] = {
        (e, k): [] for e in engines for k in ("benign", "attack")
    }
    names = list(engines)
    for round_ in range(args.rounds):
        for kind, batch in (("benign", benign), ("attack", hostile)):
            for i, request in enumerate(batch):
                # per request, both engines in alternating order: same machine state for each
                order = names if (i + round_) % 2 == 0 else names[::-1]
                for name in order:
                    times[(name, kind)].append(inspect(engines[name], request, response))
    summary: dict[str, float] = {}
    print(f"{'engine':<14}{'traffic':<9}{'req/s/core':>11}{'p50 ms':>9}{'p99 ms':>9}")
    for (name, kind), ns in times.items():
        ordered = sorted(ns)
        rps = len(ns) / (sum(ns) / 1e9)
        p50 = statistics.median(ordered) / 1e6
        p99 = ordered[int(len(ordered) * 0.99) - 1] / 1e6
        print(f"{name:<14}{kind:<9}{rps:>11.0f}{p50:>9.2f}{p99:>9.2f}")
        summary[f"{name}_{kind}_rps"] = rps
        summary[f"{name}_{kind}_p50_ms"] = p50
        summary[f"{name}_{kind}_p99_ms"] = p99
    speedup_benign = summary["pattern_set_benign_rps"] / summary["per_pattern_benign_rps"]
    speedup_attack = summary["pattern_set_attack_rps"] / summary["per_pattern_attack_rps"]
    print(f"pattern set speed-up: benign x{speedup_benign:.2f}, attack x{speedup_attack:.2f}")
    headline = {
        "rps_benign": f"{summary['pattern_set_benign_rps']:.0f}",
        "rps_attack": f"{summary['pattern_set_attack_rps']:.0f}",
        "p50_ms": f"{summary['pattern_set_benign_p50_ms']:.2f}",
        "p99_ms": f"{summary['pattern_set_benign_p99_ms']:.2f}",
        "rps_benign_per_pattern": f"{summary['per_pattern_benign_rps']:.0f}",
        "speedup_set_benign": f"{speedup_benign:.2f}",
        "speedup_set_attack": f"{speedup_attack:.2f}",
        "load_s": f"{load_s:.2f}",
    }
    if native.state() == "compiled" and not args.no_python:
        python = python_build(args.requests, args.rounds)
        benign_x = summary["pattern_set_benign_rps"] / float(python["rps_benign"])
        attack_x = summary["pattern_set_attack_rps"] / float(python["rps_attack"])
        print(f"compiled build against the Python build: benign x{benign_x:.2f}, "
              f"attack x{attack_x:.2f} (Python: {python['rps_benign']} and "
              f"{python['rps_attack']} req/s/core)")  # fmt: skip
        headline["python_rps_benign"] = python["rps_benign"]
        headline["python_rps_attack"] = python["rps_attack"]
        headline["compiled_speedup_benign"] = f"{benign_x:.2f}"
        headline["compiled_speedup_attack"] = f"{attack_x:.2f}"
    print(" ".join(f"{k}={v}" for k, v in headline.items()))


def python_build(requests: int, rounds: int) -> dict[str, str]:
    """The same run on the engine's Python sources (MILLIWATT_WAF_PURE=1), in a process of its
    own: its headline figures."""
    env = dict(os.environ, MILLIWATT_WAF_PURE="1")
    command = [sys.executable, __file__, "--requests", str(requests), "--rounds", str(rounds),
               "--no-python"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    last = done.stdout.strip().splitlines()[-1]
    return dict(pair.split("=", 1) for pair in last.split())


if __name__ == "__main__":
    main()
