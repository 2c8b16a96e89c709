"""What the egress guard costs: URL checks per second, and a guarded GET against a plain httpx GET
to the same loopback server, measured side by side (interleaved, medians).

    python bench/egress.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from milliwatt.shield.egress import (  # noqa: E402
    EgressBlocked,
    EgressGuard,
    EgressPolicy,
    GuardedClient,
    StaticResolver,
)
from milliwatt.tools.registry import ToolRegistry  # noqa: E402
from milliwatt.tools.web import TOOLS, WebSettings, configure_web  # noqa: E402

CORPUS = ROOT / ".." / "shared" / "corpora" / "ssrf" / "payloadsallthethings"
CORPUS = CORPUS / "ssrf_payloads.jsonl"
PAGE = (
    "<html><head><title>Bench page</title></head><body><nav>Home | About</nav><article>"
    + "<h1>Bench page</h1>"
    + "<p>Small models answer most questions when tools do the exact work. </p>" * 60
    + "</article><footer>footer</footer></body></html>"
).encode()


class _Page(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        # one write: headers and body in one segment, so Nagle/delayed-ACK stalls stay out
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(PAGE)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + PAGE)


def _serve(port: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    server.daemon_threads = True
    port.put(server.server_address[1])
    server.serve_forever()


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_checks(rounds: int) -> tuple[float, int, int]:
    """Mean microseconds per guard check over the SSRF corpus; and how many it blocked."""
    if not CORPUS.is_file():
        sys.exit(f"SSRF corpus not found at {CORPUS}")
    cases = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    guard = EgressGuard(EgressPolicy(), StaticResolver({}, fallback=None))
    blocked = 0
    for case in cases:
        try:
            guard.check(case["input"])
        except EgressBlocked:
            blocked += 1
    start = time.perf_counter()
    for _ in range(rounds):
        for case in cases:
            with contextlib.suppress(EgressBlocked):
                guard.check(case["input"])
    per_check = (time.perf_counter() - start) / (rounds * len(cases))
    return per_check * 1e6, blocked, len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()

    check_us, blocked, total = bench_checks(max(1, args.rounds // 10))
    print(f"guard check: {check_us:.1f} us per URL over {total} SSRF payloads ({blocked} blocked)")

    # the server runs in its own process: it must not share the client's interpreter lock
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    port = queue.get(timeout=30)
    url = f"http://bench.example.com:{port}/"
    policy = EgressPolicy(allow_networks=("127.0.0.0/8",), ports=(port,))
    resolver = StaticResolver({"bench.example.com": ["127.0.0.1"]})
    guarded = GuardedClient(policy, resolver)
    plain = httpx.Client(trust_env=False)
    plain_url = f"http://127.0.0.1:{port}/"  # plain httpx has no resolver to point elsewhere
    configure_web(WebSettings(policy=policy, resolver=resolver))
    fetch_tool = ToolRegistry(TOOLS).get("web.fetch")

    plain_times: list[float] = []
    guarded_times: list[float] = []
    fetch_times: list[float] = []
    for _ in range(5):  # warm connections and imports
        plain.get(plain_url)
        guarded.get(url)
        fetch_tool.call({"url": url})
    for index in range(args.rounds):
        if index % 2:  # alternate the order so drift in machine load hits both alike
            plain_times.append(_timed(lambda: plain.get(plain_url).content))
            guarded_times.append(_timed(lambda: guarded.get(url).content))
        else:
            guarded_times.append(_timed(lambda: guarded.get(url).content))
            plain_times.append(_timed(lambda: plain.get(plain_url).content))
        if index % 10 == 0:
            fetch_times.append(_timed(lambda: fetch_tool.call({"url": url})))
    server.terminate()

    plain_ms, guarded_ms = _median_ms(plain_times), _median_ms(guarded_times)
    fetch_ms = _median_ms(fetch_times)
    ratio = guarded_ms / plain_ms
    print(f"loopback GET, {len(PAGE):,} bytes, keep-alive, median of {args.rounds}:")
    print(f"  plain httpx   {plain_ms:7.3f} ms")
    print(f"  egress guard  {guarded_ms:7.3f} ms   ({ratio:.2f}x plain)")
    print(f"web.fetch (guarded GET + main-text extraction): {fetch_ms:.2f} ms median")
    print(
        f"check_us={check_us:.1f} corpus_blocked={blocked}/{total} plain_get_ms={plain_ms:.3f} "
        f"guarded_get_ms={guarded_ms:.3f} guarded_vs_plain={ratio:.2f} web_fetch_ms={fetch_ms:.2f}"
    )


if __name__ == "__main__":
    main()
