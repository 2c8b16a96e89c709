"""`milliwatt serve` under concurrent streaming load, beside llama-cpp-python's own server on
the same GGUF as the anchor; loopback only.

    python bench/serve_load.py [--levels 1,4,16] [--duration 12 | --requests 4]
        [--tokens 64] [--tool-fraction 0.25] [--no-waf] [--parallel 8]

For each concurrency level C, C streaming clients (SSE over httpx) send requests back to back
for --duration seconds (or --requests each), first to one server, then to the other; the
order alternates per level. Both servers stay up, but only one is sent load at a time and
its queue drains before the other starts. To milliwatt a share of requests
(--tool-fraction) are tool-route questions, the rest model-route prompts; the anchor gets
the model-route prompts only, with the same system message, max_tokens, greedy sampling
and EOS suppressed, so both sides generate exactly --tokens tokens per request (checked by
counting). A probe also asks milliwatt a tool-route question every --probe-interval
seconds while model-route requests are in flight: the tool route's latency under load. A
second probe does the same from a process of its own, as another user would: its figure is
not delayed by the load generator's own event loop, busy with the streams it parses. It
alternates httpx with a plain socket that sends prepared bytes and reads to the stream's last
chunk, as curl would: the second figure (`..._wire`) is the server's answer time on the wire,
the first adds the Python client's own work (about 1.3 ms on the build machine).

Tokens/s: with --duration, model tokens streamed before the deadline over --duration (the
drain after it is not steady state); with --requests, all model tokens over the wall time.
The last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from llama_cpp import Llama

import milliwatt
from milliwatt.config import AgentConfig
from milliwatt.models.llamacpp import physical_cores
from milliwatt.models.loader import bundled_model_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sse_stream import DONE as DONE  # the tests read it here too
from sse_stream import StreamState, parse_sse_line

ANCHOR_MODEL = "smollm2-135m"
PROMPTS = [
    "Write a long story about a lighthouse keeper and a storm.",
    "Write a long story about a baker who finds a map in a loaf of bread.",
    "Tell a long tale about a fox, a river and a broken bridge.",
    "Write a long story about two friends sailing around an island at night.",
    "Describe a long journey across a desert by a girl and her old camel.",
    "Write a long story about a clockmaker whose clocks start running backwards.",
]
# each answered by the router and a math or units tool, without the model
TOOL_QUESTIONS = [
    "what is 234 * 567",
    "convert 26.2 miles to km",
    "how much is 999 times 999?",
    "what is 1,234 + 5,678",
    "Convert 1 bar to psi",
    "what's 750 minus 250",
    "how many feet in a mile",
    "please evaluate 18*(3/2)",
]
Kind = Literal["model", "tool"]

# the own-client probe, run as a script of its own: httpx and a plain socket, alternating
OWN_CLIENT_PROBE = Path(__file__).with_name("tool_probe.py")


# --- pure parts: one request's sample, percentiles, summaries (SSE lines: sse_stream.py) ---


@dataclass
class Sample:
    kind: Kind
    latency: float
    ttft: float | None = None
    tokens: int = 0
    window_tokens: int = 0  # streamed before the load's deadline
    route: str | None = None
    error: str | None = None
    busy: bool = False  # a model-route request was in flight when this one started
    own_client: bool = False  # sent by the probe in a process of its own
    wire: bool = False  # the probe's plain-socket client: the time on the wire


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Summary:
    requests: int = 0
    model_requests: int = 0
    errors: int = 0
    short: int = 0  # model-route requests that generated other than --tokens tokens
    misrouted: int = 0  # tool questions the model answered, or prompts a tool answered
    tokens: int = 0
    tps: float = math.nan
    ttft_p50: float = math.nan
    ttft_p99: float = math.nan
    latency_p50: float = math.nan
    latency_p99: float = math.nan
    tool_requests: int = 0
    tool_p50: float = math.nan
    tool_p99: float = math.nan
    own_tool_requests: int = 0
    own_tool_p50: float = math.nan
    own_tool_p99: float = math.nan
    wire_tool_requests: int = 0
    wire_tool_p50: float = math.nan
    wire_tool_p99: float = math.nan
    first_errors: list[str] = field(default_factory=list)
    wall: float = math.nan  # seconds from the first request to the last answer, drain included


def summarize(
    samples: Sequence[Sample], seconds: float, tokens: int, windowed: bool = False
) -> Summary:
    """Tokens/s: tokens streamed within the load's window over its length when windowed
    (fixed duration: the drain after it is not steady state), else all over `seconds`."""
    ok = [s for s in samples if s.error is None]
    model = [s for s in ok if s.kind == "model"]
    # tool-route latency while the model route is busy: the figure a user of the tools feels
    tool = [s for s in ok if s.kind == "tool" and s.busy and not s.own_client]
    own = [s.latency for s in ok if s.own_client and not s.wire]
    wire = [s.latency for s in ok if s.own_client and s.wire]
    total = sum(s.tokens for s in model)
    counted = sum(s.window_tokens for s in samples if s.kind == "model") if windowed else total
    errors = [s.error for s in samples if s.error is not None]
    return Summary(
        requests=len(samples),
        model_requests=sum(1 for s in samples if s.kind == "model"),
        errors=len(errors),
        short=sum(1 for s in model if s.tokens != tokens),
        misrouted=sum(1 for s in ok if s.route is not None and s.route != s.kind),
        tokens=total,
        tps=counted / seconds if seconds > 0 else math.nan,
        ttft_p50=percentile([s.ttft for s in model if s.ttft is not None], 50),
        ttft_p99=percentile([s.ttft for s in model if s.ttft is not None], 99),
        latency_p50=percentile([s.latency for s in model], 50),
        latency_p99=percentile([s.latency for s in model], 99),
        tool_requests=len(tool),
        tool_p50=percentile([s.latency for s in tool], 50),
        tool_p99=percentile([s.latency for s in tool], 99),
        own_tool_requests=len(own),
        own_tool_p50=percentile(own, 50),
        own_tool_p99=percentile(own, 99),
        wire_tool_requests=len(wire),
        wire_tool_p50=percentile(wire, 50),
        wire_tool_p99=percentile(wire, 99),
        first_errors=list(dict.fromkeys(errors))[:3],
    )


# --- the servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def milliwatt_config(tokens: int, waf: bool, model_options: Sequence[tuple[str, str]]) -> str:
    """Model options are TOML values as given (`parallel=8`, `threads=2`)."""
    lines = ["[models.smollm2-135m]", f"max_tokens = {tokens}", "ignore_eos = true"]
    lines += [f"{key} = {value}" for key, value in model_options]
    lines += ["", "[shield]", f"waf = {'true' if waf else 'false'}", ""]
    lines += ["[[agents]]", 'name = "milliwatt"', 'tools = ["math.*", "units.*"]', ""]
    return "\n".join(lines)


@dataclass
class Target:
    """A server under test and what each of its requests carries."""

    name: str
    url: str
    model: str
    proc: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    tools: bool = False  # answers tool-route questions

    def body(self, prompt: str) -> dict[str, Any]:
        messages = [{"role": "user", "content": prompt}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system})
        return {"model": self.model, "messages": messages, "stream": True, **self.extra}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_logged(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # output to a file: a pipe nobody reads would block the server once full
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)


def wait_for_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise TimeoutError(f"{url} did not answer within {timeout:g} s")


def start_milliwatt(
    workdir: Path, tokens: int, waf: bool, model_options: Sequence[tuple[str, str]]
) -> Target:
    config = workdir / "milliwatt.toml"
    config.write_text(milliwatt_config(tokens, waf, model_options))
    # the server imports the milliwatt this script imported, wherever its cwd puts it
    source = str(Path(milliwatt.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "MILLIWATT_CONFIG": str(config),
        "MILLIWATT_DATA_DIR": str(workdir / "data"),
    }
    port = free_port()
    log = workdir / "milliwatt.log"
    proc = start_logged(
        [sys.executable, "-m", "milliwatt.cli", "serve", "--port", str(port)], log, env
    )
    url = f"http://127.0.0.1:{port}"
    return started(Target("milliwatt", url, "milliwatt", proc, log, tools=True), "/healthz", 180)


def start_anchor(
    workdir: Path, gguf: Path, threads: int, eos: int, system: str, tokens: int
) -> Target:
    port = free_port()
    log = workdir / "llama_cpp_server.log"
    args = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads),
        # 0: the trained context length, as milliwatt loads the model
        "--n_ctx", "0",
        # by default a new request cuts the stream in progress short; queue them instead
        "--interrupt_requests", "False",
        "--verbose", "False",
    ]  # fmt: skip
    proc = start_logged(args, log, dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    # as milliwatt calls llama.cpp: its ignore_eos is this logit bias on the same token;
    # greedy, and no repeat penalty (the server's default is 1.1)
    extra = {
        "max_tokens": tokens,
        "logit_bias": {str(eos): -1e9},
        "temperature": 0.0,
        "repeat_penalty": 1.0,
    }
    target = Target("llama_cpp", url, ANCHOR_MODEL, proc, log, extra=extra, system=system)
    return started(target, "/v1/models", 120)


def started(target: Target, path: str, timeout: float) -> Target:
    """The target once it answers on `path`; stopped if it does not."""
    try:
        wait_for_http(f"{target.url}{path}", target.proc, target.log, timeout=timeout)
    except BaseException:
        target.stop()
        raise
    return target


# --- the load -------------------------------------------------------------------------------


async def one_request(
    client: httpx.AsyncClient,
    target: Target,
    kind: Kind,
    prompt: str,
    busy: bool = False,
    window_end: float = math.inf,
) -> Sample:
    started = time.perf_counter()
    state = StreamState(started, window_end)
    try:
        async with client.stream(
            "POST", f"{target.url}/v1/chat/completions", json=target.body(prompt)
        ) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                state.error = f"HTTP {response.status_code}: {text[:120]}"
            else:
                async for line in response.aiter_lines():
                    payload = parse_sse_line(line)
                    if payload is not None:
                        state.feed(payload, time.perf_counter())
                    if state.done or state.error:
                        break
                if not state.done and state.error is None:
                    state.error = "the stream ended without [DONE]"
    except httpx.HTTPError as exc:
        state.error = f"{type(exc).__name__}: {exc}"
    latency = time.perf_counter() - started
    ttft = None if state.first_content is None else state.first_content - started
    return Sample(
        kind, latency, ttft, state.tokens, state.window_tokens, state.route, state.error, busy
    )


CUT_OFF = "cut off by the level's time cap"


@dataclass
class Load:
    target: Target
    clients: int
    duration: float | None
    requests: int | None
    tool_fraction: float
    seed: int
    probe_interval: float = 0.0
    transport: httpx.AsyncBaseTransport | None = None  # tests answer without a server
    samples: list[Sample] = field(default_factory=list)
    model_in_flight: int = 0

    async def send(
        self, client: httpx.AsyncClient, kind: Kind, prompt: str, deadline: float
    ) -> None:
        busy = self.model_in_flight > 0
        self.model_in_flight += kind == "model"
        try:
            self.samples.append(
                await one_request(client, self.target, kind, prompt, busy, deadline)
            )
        except asyncio.CancelledError:
            self.samples.append(Sample(kind, math.nan, error=CUT_OFF, busy=busy))
            raise
        finally:
            self.model_in_flight -= kind == "model"

    async def client(self, index: int, client: httpx.AsyncClient, deadline: float) -> None:
        rng = random.Random(self.seed * 1000 + index)
        sent = 0
        while (self.requests is None or sent < self.requests) and time.perf_counter() < deadline:
            sent += 1
            tool = self.target.tools and rng.random() < self.tool_fraction
            kind: Kind = "tool" if tool else "model"
            await self.send(client, kind, rng.choice(TOOL_QUESTIONS if tool else PROMPTS), deadline)

    async def probe(self, client: httpx.AsyncClient, deadline: float) -> None:
        """Tool-route questions at a steady pace while model-route requests are in flight:
        enough samples for a p99 of the tool route under load, at any level."""
        rng = random.Random(self.seed * 1000 - 1)
        while time.perf_counter() < deadline:
            if self.model_in_flight > 0:
                await self.send(client, "tool", rng.choice(TOOL_QUESTIONS), deadline)
            await asyncio.sleep(self.probe_interval)

    async def own_client_probe(self, deadline: float) -> None:
        """Tool-route questions from a process of its own, after the streams have started."""
        seconds = deadline - time.perf_counter()
        if seconds <= 2 * self.probe_interval + 1:
            return
        args = [sys.executable, str(OWN_CLIENT_PROBE), self.target.url, str(seconds - 1),
                str(self.probe_interval), json.dumps(TOOL_QUESTIONS)]  # fmt: skip
        process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        for line in out.decode().splitlines():
            latency, route, error, client = json.loads(line)
            self.samples.append(
                Sample("tool", latency, route=route, error=error, busy=True, own_client=True,
                       wire=client == "socket")
            )  # fmt: skip

    async def run(self, cap: float) -> float:
        """Wall seconds from the first request until the last one finished."""
        connections = self.clients + 1
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        timeout = httpx.Timeout(cap, connect=10.0)
        async with httpx.AsyncClient(
            limits=limits, timeout=timeout, transport=self.transport
        ) as client:
            started = time.perf_counter()
            deadline = started + self.duration if self.duration is not None else math.inf
            tasks = [
                asyncio.create_task(self.client(i, client, deadline)) for i in range(self.clients)
            ]
            probe = own_probe = None
            if self.target.tools and self.probe_interval > 0:
                probe = asyncio.create_task(self.probe(client, deadline))
                if self.transport is None and self.duration is not None:
                    own_probe = asyncio.create_task(self.own_client_probe(deadline))
            _, pending = await asyncio.wait(tasks, timeout=cap)
            if own_probe is not None:  # it ends by itself at the deadline
                left = max(1.0, deadline + 5 - time.perf_counter())
                await asyncio.wait([own_probe], timeout=left)
                pending.add(own_probe)
            if probe is not None:
                pending.add(probe)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            elapsed = time.perf_counter() - started
        return elapsed


def run_level(target: Target, clients: int, args: argparse.Namespace, seed: int) -> Summary:
    load = Load(
        target,
        clients,
        args.duration,
        args.requests,
        args.tool_fraction,
        seed,
        args.probe_interval,
    )
    # requests queued at the deadline drain after it; the cap bounds a server that hangs
    elapsed = asyncio.run(load.run(cap=(args.duration or 0.0) + args.time_cap))
    if args.duration is not None:
        summary = summarize(load.samples, args.duration, args.tokens, windowed=True)
    else:
        summary = summarize(load.samples, elapsed, args.tokens)
    summary.wall = elapsed
    if any(s.error == CUT_OFF for s in load.samples):
        # a server may go on generating for a client that left; say so next to the figures
        print(f"warning: {target.name} was cut off; the next level may overlap", file=sys.stderr)
    return summary


def check_tokens(target: Target, tokens: int) -> None:
    """One streamed request before measuring: warms the server and proves the token count."""
    sample = asyncio.run(_probe(target))
    if sample.error is not None:
        raise RuntimeError(f"{target.name}: the warm-up request failed: {sample.error}")
    if sample.tokens != tokens:
        raise RuntimeError(f"{target.name}: generated {sample.tokens} tokens, not {tokens}")


async def _probe(target: Target) -> Sample:
    async with httpx.AsyncClient(timeout=300) as client:
        return await one_request(client, target, "model", PROMPTS[0])


# --- the report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def table(results: dict[int, dict[str, Summary]]) -> Iterator[str]:
    rows: list[tuple[str, Any]] = [
        ("requests model+tool", lambda s: f"{s.model_requests}+{s.requests - s.model_requests}"),
        ("errors", lambda s: str(s.errors)),
        ("short / misrouted", lambda s: f"{s.short} / {s.misrouted}"),
        ("model tokens", lambda s: str(s.tokens)),
        ("tokens/s", lambda s: f"{s.tps:.1f}"),
        ("TTFT p50 ms", lambda s: ms(s.ttft_p50)),
        ("TTFT p99 ms", lambda s: ms(s.ttft_p99)),
        ("latency p50 ms", lambda s: ms(s.latency_p50)),
        ("latency p99 ms", lambda s: ms(s.latency_p99)),
        ("tool route, busy: n", lambda s: str(s.tool_requests)),
        ("tool p50 / p99 ms", lambda s: f"{ms(s.tool_p50)} / {ms(s.tool_p99)}"),
        ("own-client tool: n", lambda s: str(s.own_tool_requests)),
        ("own-client p50/p99 ms", lambda s: f"{ms(s.own_tool_p50)} / {ms(s.own_tool_p99)}"),
        ("on the wire: n", lambda s: str(s.wire_tool_requests)),
        ("wire p50/p99 ms", lambda s: f"{ms(s.wire_tool_p50)} / {ms(s.wire_tool_p99)}"),
    ]
    for level, pair in results.items():
        mw, anchor = pair["milliwatt"], pair["llama_cpp"]
        yield ""
        yield f"{level} client(s)            {'milliwatt':>18} {'llama_cpp.server':>18}"
        for label, cell in rows:
            yield f"  {label:22} {cell(mw):>18} {cell(anchor):>18}"
        yield f"  {'milliwatt / anchor tps':22} {ratio(mw.tps, anchor.tps):>18.2f}"
        for name, summary in pair.items():
            for error in summary.first_errors:
                yield f"  {name} error: {error[:160]}"


def headline(results: dict[int, dict[str, Summary]]) -> str:
    low, high = min(results), max(results)
    mw = {level: pair["milliwatt"] for level, pair in results.items()}
    anchor = {level: pair["llama_cpp"] for level, pair in results.items()}
    errors = sum(s.errors for pair in results.values() for s in pair.values())
    busy_levels = [level for level in results if mw[level].tool_requests]
    tool = mw[max(busy_levels)] if busy_levels else Summary()
    figures = {
        f"tps_{low}": f"{mw[low].tps:.1f}",
        f"tps_{high}": f"{mw[high].tps:.1f}",
        "batch_gain": f"{ratio(mw[high].tps, mw[low].tps):.2f}",
        f"ttft_p99_{high}": ms(mw[high].ttft_p99),
        "errors": str(errors),
        "short": str(sum(s.short for pair in results.values() for s in pair.values())),
        "tool_p50_ms_saturated": ms(tool.tool_p50),
        "tool_p99_ms_saturated": ms(tool.tool_p99),
        "tool_p50_ms_saturated_own_client": ms(tool.own_tool_p50),
        "tool_p99_ms_saturated_own_client": ms(tool.own_tool_p99),
        "tool_p50_ms_saturated_wire": ms(tool.wire_tool_p50),
        "tool_p99_ms_saturated_wire": ms(tool.wire_tool_p99),
        f"anchor_tps_{low}": f"{anchor[low].tps:.1f}",
        f"anchor_tps_{high}": f"{anchor[high].tps:.1f}",
        "anchor_batch_gain": f"{ratio(anchor[high].tps, anchor[low].tps):.2f}",
        f"vs_anchor_{low}": f"{ratio(mw[low].tps, anchor[low].tps):.2f}",
        f"vs_anchor_{high}": f"{ratio(mw[high].tps, anchor[high].tps):.2f}",
    }
    return " ".join(f"{k}={v}" for k, v in figures.items())


# --- main -----------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def model_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--levels", default="1,4,16", help="concurrent clients, comma-separated")
    run = parser.add_mutually_exclusive_group()
    run.add_argument("--duration", type=float, help="seconds of load per level and server")
    run.add_argument("--requests", type=int, help="requests per client per level and server")
    parser.add_argument("--tokens", type=int, default=64, help="generated tokens per request")
    parser.add_argument("--tool-fraction", type=float, default=0.25)
    parser.add_argument("--no-waf", dest="waf", action="store_false")
    parser.add_argument("--parallel", type=int, help="writes `parallel = N` for the model")
    parser.add_argument(
        "--model-option",
        type=model_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another option under [models.smollm2-135m], VALUE as TOML",
    )
    parser.add_argument(
        "--time-cap",
        type=float,
        default=120.0,
        help="seconds a level may run past --duration (with --requests, in all); "
        "requests still running then count as errors",
    )
    parser.add_argument(
        "--probe-interval",
        type=float,
        default=0.25,
        help="seconds between tool-route probes while the model route is busy (0: none)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.duration is None and args.requests is None:
        args.duration = 12.0
    try:
        args.levels = [int(level) for level in args.levels.split(",")]
    except ValueError:
        parser.error("--levels takes positive integers, comma-separated")
    if min(args.levels) < 1:
        parser.error("--levels takes positive integers")
    if not 0.0 <= args.tool_fraction < 1.0:
        parser.error("--tool-fraction is in [0, 1)")
    if args.parallel is not None:
        args.model_option.append(("parallel", str(args.parallel)))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    gguf = bundled_model_path()
    with quiet_stderr():  # llama.cpp logs from C even when asked not to
        eos = Llama(str(gguf), vocab_only=True, verbose=False).token_eos()
    threads = physical_cores()
    system = AgentConfig().instructions  # what milliwatt puts before the user's message
    results: dict[int, dict[str, Summary]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        started = time.perf_counter()
        mw = start_milliwatt(workdir, args.tokens, args.waf, args.model_option)
        stack.callback(mw.stop)
        anchor = start_anchor(workdir, gguf, threads, eos, system, args.tokens)
        stack.callback(anchor.stop)
        print(
            f"servers up in {time.perf_counter() - started:.1f} s; {threads} threads; "
            f"waf={args.waf} tokens={args.tokens} tool_fraction={args.tool_fraction} "
            f"model options {dict(args.model_option)}",
            flush=True,
        )
        for target in (mw, anchor):
            check_tokens(target, args.tokens)
        for n, level in enumerate(args.levels):
            # alternate who goes first, so drift in machine load does not favour one side
            order = (mw, anchor) if n % 2 == 0 else (anchor, mw)
            results[level] = {}
            for target in order:
                summary = run_level(target, level, args, args.seed + n)
                results[level][target.name] = summary
                print(
                    f"  {level:>3} clients {target.name:10} {summary.tps:7.1f} tokens/s "
                    f"{summary.requests} requests {summary.errors} errors "
                    f"in {summary.wall:.1f} s",
                    flush=True,
                )
        print(f"total {time.perf_counter() - started:.0f} s")
    for line in table(results):
        print(line)
    low, high = min(args.levels), max(args.levels)
    print()
    for name in ("milliwatt", "llama_cpp"):
        gain = ratio(results[high][name].tps, results[low][name].tps)
        print(f"{name:10} tokens/s at {high} clients / at {low}: {gain:.2f}")
    print(headline(results))


if __name__ == "__main__":
    main()
