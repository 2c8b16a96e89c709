"""bench/serve_load.py without servers: SSE parsing, per-request accounting, percentiles,
the config it writes, and its load loop against a fake streaming transport."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = REPO / "bench" / "serve_load.py"
    spec = importlib.util.spec_from_file_location("serve_load", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def data(payload: object) -> str:
    return f"data: {json.dumps(payload)}"


def chunk(content: str | None = None, finish: str | None = None, **extra: object) -> str:
    delta = {} if content is None else {"content": content}
    return data({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


def feed(bench: ModuleType, lines: list[str], window_end: float = math.inf) -> Any:
    state = bench.StreamState(0.0, window_end)
    for now, line in enumerate(lines, start=1):
        payload = bench.parse_sse_line(line)
        if payload is not None:
            state.feed(payload, float(now))
    return state


def test_sse_lines(bench: ModuleType) -> None:
    assert bench.parse_sse_line("data: [DONE]") == bench.DONE
    assert bench.parse_sse_line('data:{"a": 1}') == {"a": 1}
    for ignored in ("", ": ping - 2024-01-01", "event: message", "id: 3"):
        assert bench.parse_sse_line(ignored) is None
    assert "error" in bench.parse_sse_line("data: {not json")
    assert "error" in bench.parse_sse_line("data: [1, 2]")


def test_milliwatt_stream_usage_and_route(bench: ModuleType) -> None:
    lines = [
        data({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        "",
        chunk("Once"),
        "",
        chunk(" upon"),
        chunk(
            None,
            "length",
            usage={"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32},
            milliwatt={"route": "model"},
        ),
        "data: [DONE]",
    ]
    state = feed(bench, lines)
    assert state.done and state.error is None
    assert state.first_content == 3.0  # the role chunk's empty content is not a token
    assert (state.chunks, state.tokens, state.finish, state.route) == (2, 2, "length", "model")


def test_anchor_stream_counts_chunks_and_window(bench: ModuleType) -> None:
    lines = [
        data({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
        ": ping - 2024-01-01 00:00:00",
        chunk("a"),
        chunk("b"),
        chunk("c"),
        chunk(None, "length"),
        "data: [DONE]",
    ]
    state = feed(bench, lines, window_end=4.0)
    assert state.usage_tokens is None and state.tokens == 3  # no usage: counted chunks
    assert state.window_chunks == 2  # "c" came after the window
    assert state.route is None and state.done


def test_in_band_error(bench: ModuleType) -> None:
    state = feed(bench, [chunk("a"), data({"error": {"message": "the model backend failed"}})])
    assert state.error == "the model backend failed" and not state.done


def test_percentile_matches_linear_interpolation(bench: ModuleType) -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert bench.percentile(values, 50) == 3.0
    assert bench.percentile(values, 99) == pytest.approx(4.96)
    assert bench.percentile(values, 0) == 1.0 and bench.percentile(values, 100) == 5.0
    assert bench.percentile([7.0], 99) == 7.0
    assert math.isnan(bench.percentile([], 50))


def test_summary(bench: ModuleType) -> None:
    sample = bench.Sample
    samples = [
        sample("model", 2.0, ttft=0.1, tokens=64, window_tokens=64, route="model"),
        sample("model", 4.0, ttft=0.3, tokens=64, window_tokens=10, route="model"),
        sample("model", 1.0, ttft=0.2, tokens=60, window_tokens=60),  # short
        sample("tool", 0.010, route="tool", busy=True),
        sample("tool", 0.001, route="tool", busy=False),  # idle: not a saturated figure
        sample("tool", 0.5, route="model", busy=True),  # misrouted
        sample("model", 9.0, error="HTTP 503: busy"),
    ]
    s = bench.summarize(samples, 10.0, 64)
    assert (s.requests, s.errors, s.short, s.misrouted) == (7, 1, 1, 1)
    assert s.tokens == 188 and s.tps == pytest.approx(18.8)
    assert s.latency_p50 == 2.0 and s.ttft_p50 == pytest.approx(0.2)
    assert s.tool_requests == 2 and s.tool_p50 == pytest.approx(0.255)
    assert s.first_errors == ["HTTP 503: busy"]
    windowed = bench.summarize(samples, 10.0, 64, windowed=True)
    assert windowed.tps == pytest.approx(13.4)


def test_config_and_flags(bench: ModuleType) -> None:
    args = bench.parse_args(["--parallel", "8", "--model-option", "threads=2", "--no-waf"])
    assert args.levels == [1, 4, 16] and args.duration > 0 and not args.waf
    text = bench.milliwatt_config(args.tokens, args.waf, args.model_option)
    config = tomllib.loads(text)
    model = config["models"]["smollm2-135m"]
    assert model == {"max_tokens": 64, "ignore_eos": True, "threads": 2, "parallel": 8}
    assert config["shield"] == {"waf": False}
    assert config["agents"] == [{"name": "milliwatt", "tools": ["math.*", "units.*"]}]
    default = tomllib.loads(bench.milliwatt_config(64, True, []))
    assert "parallel" not in default["models"]["smollm2-135m"] and default["shield"]["waf"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--model-option", "parallel"])


def fake_server(
    bench: ModuleType, tokens: int, delay: float, hang: bool = False
) -> httpx.MockTransport:
    """Answers like `milliwatt serve`: tool questions at once, prompts token by token."""

    async def handle(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        tool = prompt in bench.TOOL_QUESTIONS

        async def events() -> AsyncIterator[bytes]:
            yield (chunk("", None) + "\n\n").encode()
            for _ in range(1 if tool else tokens):
                await asyncio.sleep(0 if tool else delay)
                if hang:
                    await asyncio.sleep(3600)
                yield (chunk("x") + "\n\n").encode()
            usage = {"completion_tokens": 0 if tool else tokens}
            route = {"route": "tool" if tool else "model"}
            yield (chunk(None, "stop", usage=usage, milliwatt=route) + "\n\n").encode()
            yield b"data: [DONE]\n\n"

        return httpx.Response(200, content=events())

    return httpx.MockTransport(handle)


def fake_target(bench: ModuleType) -> Any:
    return bench.Target("milliwatt", "http://fake", "milliwatt", None, Path("-"), tools=True)


def test_load_for_a_duration(bench: ModuleType) -> None:
    transport = fake_server(bench, tokens=5, delay=0.02)
    target = fake_target(bench)
    load = bench.Load(target, 3, 0.5, None, 0.25, 1, probe_interval=0.05, transport=transport)
    elapsed = asyncio.run(load.run(cap=10.0))
    s = bench.summarize(load.samples, 0.5, 5, windowed=True)
    assert 0.5 <= elapsed < 5.0
    assert s.errors == 0 and s.short == 0 and s.misrouted == 0
    assert s.model_requests >= 6 and s.tool_requests >= 3  # the probe ran while busy
    # 3 clients, 5 tokens per 0.1 s each: ~150 tokens/s, less what the deadline cut
    assert 20 < s.tps <= 160
    assert s.tokens >= s.tps * 0.5  # requests running at the deadline finished


def test_load_cut_off_by_the_cap(bench: ModuleType) -> None:
    transport = fake_server(bench, tokens=5, delay=0.0, hang=True)
    load = bench.Load(fake_target(bench), 2, None, 1, 0.0, 1, transport=transport)
    elapsed = asyncio.run(load.run(cap=0.3))
    assert elapsed < 5.0
    assert [s.error for s in load.samples] == [bench.CUT_OFF] * 2
    assert load.model_in_flight == 0


def test_summary_keeps_the_wire_apart(bench: ModuleType) -> None:
    own = {"route": "tool", "busy": True, "own_client": True}
    samples = [
        bench.Sample("tool", 0.005, **own),
        bench.Sample("tool", 0.007, **own),
        bench.Sample("tool", 0.003, wire=True, **own),
        bench.Sample("tool", 0.004, wire=True, error="connection closed", **own),
    ]
    s = bench.summarize(samples, 10.0, 64)
    assert (s.own_tool_requests, s.own_tool_p50) == (2, pytest.approx(0.006))
    assert (s.wire_tool_requests, s.wire_tool_p50) == (1, pytest.approx(0.003))


def test_own_client_probe_against_a_streaming_server(bench: ModuleType) -> None:
    """The probe's two clients against a real chunked SSE server on loopback."""
    import socket
    import subprocess
    import threading
    import time

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def chat(request: Request) -> StreamingResponse:
        question = (await request.json())["messages"][-1]["content"]

        async def events() -> AsyncIterator[str]:
            yield chunk(question) + "\n\n"
            yield chunk(None, "stop", milliwatt={"route": "tool"}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        args = [sys.executable, str(bench.OWN_CLIENT_PROBE), f"http://127.0.0.1:{port}",
                "2.0", "0.05", json.dumps(["what is 2 + 2"])]  # fmt: skip
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    finally:
        server.should_exit = True
        thread.join(10)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    clients = [client for _, _, _, client in lines]
    assert {"httpx", "socket"} <= set(clients) and len(lines) >= 6
    assert all(route == "tool" and error is None for _, route, error, _ in lines), lines
    assert all(0 < latency < 1 for latency, *_ in lines)
