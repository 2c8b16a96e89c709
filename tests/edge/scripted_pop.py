"""A small, real PoP for the front door's tests and benchmark: a uvicorn server on loopback
that speaks the parts of `milliwatt serve`'s API the front door relies on.

    python tests/edge/scripted_pop.py --port 9001 --name fra --models milliwatt,large \
        --delay-ms 40 --store /tmp/turns.db

Every request waits --delay-ms first (the PoP's distance). POST /v1/chat/completions answers
"<name>: <the user's words>" (streamed over SSE when asked, one word per event every
--pace-ms); a message "hold N" holds the answer N seconds (load that stays in flight). A
turn with a `user` is stored in the shared SQLite store (WAL, synchronous=FULL) before it is
acknowledged; GET /v1/sessions/{user} lists that session's stored turns, whichever PoP
stored them. POST /control changes delay_ms, saturated (answer 503) or limited (429 with that error
code) live.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class ScriptedPop:
    def __init__(self, name: str, models: list[str], store: Path | None, pace_ms: float) -> None:
        self.name = name
        self.models = models
        self.pace = pace_ms / 1000
        self.delay = 0.0
        self.saturated = False
        self.limited = ""  # an error code: answer 429 with it
        self.db: sqlite3.Connection | None = None
        if store is not None:
            self.db = sqlite3.connect(store, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS turns (session TEXT, pop TEXT, message TEXT,"
                " answer TEXT, at REAL)"
            )

    async def healthz(self, request: Request) -> Response:
        await asyncio.sleep(self.delay)
        return JSONResponse({"status": "ok", "agents": self.models, "pop": self.name})

    async def list_models(self, request: Request) -> Response:
        await asyncio.sleep(self.delay)
        data = [{"id": m, "object": "model", "owned_by": "milliwatt"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def control(self, request: Request) -> Response:
        changes = await request.json()
        self.delay = float(changes.get("delay_ms", self.delay * 1000)) / 1000
        self.saturated = bool(changes.get("saturated", self.saturated))
        self.limited = str(changes.get("limited", self.limited) or "")
        return JSONResponse({"delay_ms": self.delay * 1000, "saturated": self.saturated})

    async def echo(self, request: Request) -> Response:
        """What arrived: the raw path and query, and the headers."""
        scope = request.scope
        return JSONResponse({
            "raw_path": scope["raw_path"].decode(), "query": scope["query_string"].decode(),
            "headers": dict(request.headers),
        })  # fmt: skip

    async def session(self, request: Request) -> Response:
        assert self.db is not None
        rows = self.db.execute(
            "SELECT pop, message, answer FROM turns WHERE session = ? ORDER BY rowid",
            (request.path_params["name"],),
        ).fetchall()
        turns = [{"pop": p, "message": m, "answer": a} for p, m, a in rows]
        return JSONResponse({"turns": turns})

    async def chat(self, request: Request) -> Response:
        await asyncio.sleep(self.delay)
        body = await request.json()
        if self.saturated:
            error = {"message": "the model's line is full", "code": "model_unavailable"}
            return JSONResponse({"error": error}, 503, headers={"retry-after": "1"})
        if self.limited:
            error = {"message": "over a limit", "code": self.limited}
            return JSONResponse({"error": error}, 429, headers={"retry-after": "1"})
        if body.get("model") not in self.models:
            error = {"message": f"no model {body.get('model')!r}", "code": "model_not_found"}
            return JSONResponse({"error": error}, 404)
        message = str(body["messages"][-1]["content"])
        if message.startswith("hold "):
            await asyncio.sleep(float(message.split()[1]))
        answer = f"{self.name}: {message}"
        if body.get("user") and self.db is not None:  # on disk before it is acknowledged
            self.db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                (body["user"], self.name, message, answer, time.time()),
            )
        if body.get("stream"):
            events = self._events(body["model"], answer)
            return StreamingResponse(events, media_type="text/event-stream")
        message_out = {"role": "assistant", "content": answer}
        choice = {"index": 0, "message": message_out, "finish_reason": "stop"}
        return JSONResponse({"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                             "model": body["model"], "choices": [choice]})  # fmt: skip

    async def _events(self, model: str, answer: str) -> AsyncIterator[str]:
        for i, word in enumerate(answer.split(" ")):
            if i:
                await asyncio.sleep(self.pace)
            delta: dict[str, Any] = {"content": (" " if i else "") + word}
            chunk = {"object": "chat.completion.chunk", "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/healthz", self.healthz),
                Route("/v1/models", self.list_models),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/sessions/{name}", self.session),
                Route("/control", self.control, methods=["POST"]),
                Route("/echo/{rest:path}", self.echo, methods=["GET", "POST"]),
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--models", default="milliwatt")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--pace-ms", type=float, default=20.0)
    parser.add_argument("--store", type=Path)
    args = parser.parse_args()
    pop = ScriptedPop(args.name, args.models.split(","), args.store, args.pace_ms)
    pop.delay = args.delay_ms / 1000
    uvicorn.run(pop.app(), host="127.0.0.1", port=args.port, log_level="error")


if __name__ == "__main__":
    main()
