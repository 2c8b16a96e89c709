"""The own-client probe of `bench/serve_load.py`: tool-route questions from a process of its
own while the model route is busy, one JSON line per request `[seconds, route, error, client]`.

    python bench/tool_probe.py URL SECONDS INTERVAL QUESTIONS_JSON

It alternates two clients: httpx, as a Python program would ask, and a plain socket that
sends prepared bytes and reads to the chunked stream's last chunk, as curl would: the time on
the wire, without the Python client's own work (building the request, parsing the answer).
"""

from __future__ import annotations

import json
import random
import re
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from sse_stream import StreamState, parse_sse_line

Answer = tuple[str | None, str | None]  # route, error
CHUNKED_END = b"\r\n0\r\n\r\n"
ROUTE = re.compile(rb'"route": "(\w+)"')


def body(question: str) -> dict[str, Any]:
    return {"model": "milliwatt", "stream": True,
            "messages": [{"role": "user", "content": question}]}  # fmt: skip


def ask_httpx(client: httpx.Client, url: str, question: str) -> Answer:
    state = StreamState(time.perf_counter())
    with client.stream("POST", url + "/v1/chat/completions", json=body(question)) as response:
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}"
        for line in response.iter_lines():
            payload = parse_sse_line(line)
            if payload is not None:
                state.feed(payload, time.perf_counter())
            if state.done:
                break
    return state.route, state.error


class SocketClient:
    """One kept-alive connection, as httpx keeps its own."""

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.sock: socket.socket | None = None

    def ask(self, question: str) -> Answer:
        payload = json.dumps(body(question)).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(head.encode() + payload)
        answer = b""
        while not answer.endswith(CHUNKED_END):
            part = self.sock.recv(65536)
            if not part:
                self.sock = None
                return None, "connection closed"
            answer += part
        if not answer.startswith(b"HTTP/1.1 200"):
            return None, answer.split(b"\r\n", 1)[0].decode()
        found = ROUTE.findall(answer)
        return (found[-1].decode() if found else None), None


def main(argv: list[str]) -> None:
    url, seconds, interval, questions = argv[0], float(argv[1]), float(argv[2]), json.loads(argv[3])
    rng, end = random.Random(7), time.perf_counter() + seconds
    wire = SocketClient(url)
    time.sleep(1.0)  # the streams start first
    with httpx.Client(timeout=60) as client:
        n = 0
        while time.perf_counter() < end:
            kind = "socket" if n % 2 else "httpx"
            n += 1
            started = time.perf_counter()
            route: str | None = None
            error: str | None = None
            try:
                question = rng.choice(questions)
                if kind == "httpx":
                    route, error = ask_httpx(client, url, question)
                else:
                    route, error = wire.ask(question)
            except (httpx.HTTPError, OSError) as exc:
                error = type(exc).__name__
            print(json.dumps([time.perf_counter() - started, route, error, kind]), flush=True)
            time.sleep(interval)


if __name__ == "__main__":
    main(sys.argv[1:])
