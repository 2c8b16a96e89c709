"""What leaves the WAF middleware: phases 3-4 on the app's response, and the answers the
WAF gives in the app's place (blocked, refused)."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import Message, Send

from milliwatt.shield.waf import HttpResponse, Interruption, Transaction

log = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")


def text(raw: bytes) -> str:
    return raw.decode("latin-1")  # one char per byte, as the rules expect


def header(headers: list[tuple[str, str]], name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""


async def answer(
    send: Send, status: int, payload: dict[str, Any], *extra: tuple[bytes, bytes]
) -> None:
    body = json.dumps(payload).encode()
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_payload(message: str, kind: str, request_id: str) -> dict[str, Any]:
    """OpenAI's error shape, which OpenAI clients report well, plus the request id."""
    error = {"message": message, "type": kind, "param": None, "code": None}
    return {"error": error, "request_id": request_id}


# an answer the WAF gives in the app's place: status, JSON payload, extra headers
Answer = tuple[int, dict[str, Any], tuple[tuple[bytes, bytes], ...]]


def block_answer(tx: Transaction, verdict: Interruption) -> Answer:
    """What the rules asked for in the app's place: a redirect, or an error with the id."""
    rid = (b"x-request-id", tx.request_id.encode())
    if verdict.action == "redirect" and verdict.redirect_url:
        location = (b"location", verdict.redirect_url.encode("latin-1", "replace"))
        status = verdict.status if 300 <= verdict.status < 400 else 302
        return status, {"request_id": tx.request_id}, (location, rid)
    message = f"request blocked by the web application firewall (request id {tx.request_id})"
    return verdict.status or 403, error_payload(message, "waf_blocked", tx.request_id), (rid,)


def refusal_answer(tx: Transaction, status: int, reason: str) -> Answer:
    """The WAF's own refusal (too large, malformed, not inspectable), with the request id."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    payload = error_payload(reason, kind, tx.request_id)
    return status, payload, ((b"x-request-id", tx.request_id.encode()),)


async def block(send: Send, tx: Transaction, verdict: Interruption) -> None:
    status, payload, extra = block_answer(tx, verdict)
    await answer(send, status, payload, *extra)


class ResponseInspector:
    """The `send` the app gets: phases 3-4 run before the response leaves."""

    def __init__(
        self, tx: Transaction, send: Send, *, body_types: frozenset[str], body_limit: int
    ) -> None:
        self.tx, self.send = tx, send
        self.body_types, self.body_limit = body_types, body_limit
        self.start: Message | None = None
        self.headers: list[tuple[str, str]] = []  # the start's, decoded
        self.buffer: bytearray | None = None
        self.blocked = False

    async def __call__(self, message: Message) -> None:
        if self.blocked:
            return  # the app keeps talking after a block; nobody listens
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(message)
        elif kind == "http.response.body" and self.buffer is not None:
            await self._on_buffered_body(message)
        else:
            await self.send(message)

    async def _on_start(self, message: Message) -> None:
        headers = self.headers = [(text(k), text(v)) for k, v in message.get("headers", [])]
        ctype = header(headers, "content-type").split(";", 1)[0].strip().lower()
        if self.tx.response_body_access and ctype in self.body_types:
            self.start, self.buffer = message, bytearray()
            return
        if await self._inspect(HttpResponse(message["status"], headers)):
            await self.send(message)

    async def _on_buffered_body(self, message: Message) -> None:
        assert self.buffer is not None and self.start is not None
        self.buffer += message.get("body", b"")
        more = message.get("more_body", False)
        if more and len(self.buffer) <= self.body_limit:
            return
        start = self.start
        seen = bytes(self.buffer[: self.body_limit])  # beyond the limit: partial
        if await self._inspect(HttpResponse(start["status"], self.headers, seen)):
            await self.send(start)
            await self.send(
                {"type": "http.response.body", "body": bytes(self.buffer), "more_body": more}
            )
        self.buffer = None

    async def _inspect(self, response: HttpResponse) -> bool:
        """True when the response may go out; otherwise the client got an error instead."""
        verdict = inspect_response(self.tx, response)
        if verdict is None:
            return True
        self.blocked = True
        await block(self.send, self.tx, verdict)
        return False


def inspect_response(tx: Transaction, response: HttpResponse) -> Interruption | None:
    """Phases 3-4 on an answer. An engine failure withholds it (500), logged with its
    traceback: an answer the rules could not read does not go out."""
    try:
        return tx.process_response(response)
    except Exception:
        log.exception("WAF failed on the response to %s; withholding it", tx.request_id)
        return Interruption(status=500, rule_id=0, action="deny", message="inspection failed")
