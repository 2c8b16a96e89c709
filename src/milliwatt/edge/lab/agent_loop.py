"""The lab's user: an agent's N-step loop against each PoP, timed from the user's side.

One step is what an agent does per turn of its loop: a model call (a chat completion of
`max_tokens` tokens) and, with `tool` on, a tool call (a question the PoP's tool route
answers without the model). Each is one HTTP round trip on a kept-alive connection, the
one opened and warmed before timing starts. Loops against the edge and the central PoP
alternate (edge first, then central first), so drift in the machine's load favours neither.

    python -m milliwatt.edge.lab.agent_loop PLAN_JSON

runs inside the user's namespace and prints one JSON object: the loops and their times.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

MODEL_PROMPT = "Write one friendly sentence about the sea."
PINGS = 5


@dataclass(frozen=True)
class Plan:
    targets: dict[str, str]  # PoP role -> base URL as the user reaches it
    steps: list[int]
    repeats: int = 3
    model: str = "milliwatt"
    max_tokens: int = 4
    tool: bool = True
    ready_seconds: float = 300.0


@dataclass
class LoopTime:
    target: str
    steps: int
    repeat: int
    wall_ms: float
    calls: int
    server_ms: float  # what the PoP says its agent took (milliwatt.cost.ms), all calls


@dataclass
class Measured:
    loops: list[LoopTime] = field(default_factory=list)
    ping_ms: dict[str, float] = field(default_factory=dict)  # min GET /healthz round trip


class StepError(RuntimeError):
    """A PoP answered a step other than as it should: the loop's time would mean nothing."""


def call(client: httpx.Client, plan: Plan, content: str, route: str, **extra: Any) -> float:
    """One round trip; the milliseconds the PoP's agent says it spent (0 if it says not)."""
    body = {"model": plan.model, "messages": [{"role": "user", "content": content}], **extra}
    response = client.post("/v1/chat/completions", json=body)
    if response.status_code != 200:
        raise StepError(f"{client.base_url}: HTTP {response.status_code}: {response.text[:200]}")
    result = response.json().get("milliwatt", {})
    answered = result.get("route", route)
    if answered != route:  # a tool question the model answered costs model time, and so on
        raise StepError(f"{client.base_url}: {content!r} went to route {answered!r}, not {route!r}")
    return float(result.get("cost", {}).get("ms", 0.0))


def agent_loop(client: httpx.Client, plan: Plan, steps: int) -> tuple[int, float]:
    """Run the loop; the HTTP round trips it made and the PoP's own milliseconds."""
    calls, server_ms = 0, 0.0
    for step in range(steps):
        server_ms += call(client, plan, MODEL_PROMPT, "model", max_tokens=plan.max_tokens)
        calls += 1
        if plan.tool:
            server_ms += call(client, plan, f"what is {1234 + step} * {5678 + step}", "tool")
            calls += 1
    return calls, server_ms


def wait_ready(client: httpx.Client, deadline: float) -> None:
    while True:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise StepError(f"{client.base_url} did not answer /healthz in time")
        time.sleep(0.5)


def measure(plan: Plan) -> Measured:
    # one connection per PoP, kept alive across the whole run (the server's keep-alive too)
    limits = httpx.Limits(max_connections=1, keepalive_expiry=3600)
    clients = {
        role: httpx.Client(
            base_url=url,
            # TCP_NODELAY, as curl, browsers and Go's client have it: otherwise Nagle holds a
            # request's body until its headers are acknowledged, up to a 40 ms delayed ACK
            transport=httpx.HTTPTransport(
                limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            ),
            timeout=600,
        )
        for role, url in plan.targets.items()
    }
    try:
        deadline = time.monotonic() + plan.ready_seconds
        for client in clients.values():
            wait_ready(client, deadline)
        measured = Measured()
        for role, client in clients.items():
            agent_loop(client, plan, 2)  # warm: the connection, the model's prompt cache
            pings = []
            for _ in range(PINGS):
                started = time.perf_counter()
                client.get("/healthz")
                pings.append((time.perf_counter() - started) * 1000)
            measured.ping_ms[role] = min(pings)
        roles = list(clients)
        for repeat in range(plan.repeats):
            for index, steps in enumerate(plan.steps):
                order = roles if (repeat + index) % 2 == 0 else roles[::-1]
                for role in order:
                    started = time.perf_counter()
                    calls, server_ms = agent_loop(clients[role], plan, steps)
                    wall = (time.perf_counter() - started) * 1000
                    measured.loops.append(LoopTime(role, steps, repeat, wall, calls, server_ms))
        return measured
    finally:
        for client in clients.values():
            client.close()


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    plan = Plan(**json.loads(args[0]))
    try:
        measured = measure(plan)
    except (StepError, httpx.HTTPError) as error:
        print(json.dumps({"error": str(error)}))
        sys.exit(1)
    print(json.dumps(asdict(measured)))


if __name__ == "__main__":
    main()
