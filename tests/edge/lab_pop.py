"""A stand-in PoP for the lab's tests: an HTTP/1.1 server that answers /healthz and chat
completions as `milliwatt serve` shapes them, after a fixed time for the model route.

    python lab_pop.py HOST PORT [MODEL_MS [misroute]]

`misroute`: every question goes to the model route, tool questions too.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the lab's user expects
    disable_nagle_algorithm = True  # headers and body are two writes
    model_seconds = 0.0
    misroute = False

    def do_GET(self) -> None:
        self.reply(200, {"status": "ok"} if self.path == "/healthz" else {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][-1]["content"]
        route = "tool" if content.startswith("what is") and not self.misroute else "model"
        if route == "model":
            time.sleep(self.model_seconds)
        message = {"role": "assistant", "content": "scripted"}
        self.reply(200, {"choices": [{"message": message}], "milliwatt": {"route": route}})

    def reply(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    Handler.model_seconds = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
    Handler.misroute = sys.argv[4:5] == ["misroute"]
    ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
