"""A scripted OpenAI-compatible model on loopback, for tests that run real servers against
a model whose every reply they decide: `reply` maps the request's messages to the answer's
delta (content or tool calls), streamed as one SSE event and the end marker."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, Any]]], dict[str, Any]]


@contextmanager
def scripted_model(reply: Reply) -> Iterator[int]:
    """The port of a model server answering every chat completion with `reply(messages)`."""

    class Model(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["content-length"])))
            delta = reply(request["messages"])
            events = [json.dumps({"choices": [{"delta": delta, "finish_reason": None}]}), "[DONE]"]
            data = "".join(f"data: {event}\n\n" for event in events).encode()
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
