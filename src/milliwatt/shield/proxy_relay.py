"""What goes back to the proxy's client: the upstream's answer, through phases 3-4, and the
answers the proxy gives in its place (blocked, refused, upstream errors), as HTTP/1.1 bytes.

A response body is held back only when the rules read it (response body access on and a MIME
type they inspect), up to the WAF's limit; every other answer streams as it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from milliwatt.shield.responses import (
    block_answer,
    header,
    inspect_response,
    refusal_answer,
)
from milliwatt.shield.upstream_http import Framing, UpstreamConnection
from milliwatt.shield.waf import HttpResponse, Interruption, Transaction

# Connection-level headers (RFC 9110 7.6.1) belong to one hop; they are not forwarded.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
     b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)  # fmt: skip
_PHRASES = {s.value: s.phrase.encode() for s in HTTPStatus}


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The headers a Connection header names: they too belong to this hop only."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)


def status_line(status: int, reason: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason or _PHRASES.get(status, b"Unknown"))


def json_answer(
    status: int, payload: dict[str, Any], keep_alive: bool, *extra: tuple[bytes, bytes]
) -> bytes:
    body = json.dumps(payload).encode()
    head = [status_line(status), b"content-type: application/json\r\n"]
    head.append(b"content-length: %d\r\n" % len(body))
    head += [b"%s: %s\r\n" % pair for pair in extra]
    if not keep_alive:
        head.append(b"connection: close\r\n")
    return b"".join(head) + b"\r\n" + body


def refusal(tx: Transaction, status: int, reason: str, keep_alive: bool) -> bytes:
    status, payload, extra = refusal_answer(tx, status, reason)
    return json_answer(status, payload, keep_alive, *extra)


def blocked(tx: Transaction, verdict: Interruption, keep_alive: bool) -> bytes:
    """The answer in the upstream's place, as the rules asked."""
    status, payload, extra = block_answer(tx, verdict)
    return json_answer(status, payload, keep_alive, *extra)


@dataclass(frozen=True)
class ResponseRules:
    """How the WAF's settings shape the response path."""

    body_types: frozenset[str]  # MIME types whose bodies phase 4 reads
    body_limit: int


class ResponseRelay:
    """The ResponseSink of one exchange: the upstream's answer to the client, with phases 3-4."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        tx: Transaction,
        rules: ResponseRules,
        *,
        keep_alive: bool,
        http11: bool,
    ) -> None:
        self._send, self.tx, self.rules = write, tx, rules
        self._out: list[bytes] = []  # written on flush
        self.keep_alive, self.http11 = keep_alive, http11
        self.upstream: UpstreamConnection | None = None
        self.started = False  # the head went out: an error now can only cut the answer
        self.blocked = False  # phases 3-4 refused it; the client got the block answer
        self._chunk = False  # the body is re-framed as chunks
        self._buffer: bytearray | None = None
        self._status, self._reason, self._framing = 0, b"", "close"
        self._kept: list[tuple[bytes, bytes]] = []
        self._seen: list[tuple[str, str]] = []  # the headers the rules see

    def on_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        framing: Framing,
        raw_ok: bool,
    ) -> bool:
        self._status, self._reason, self._framing = status, reason, framing
        dropped = HOP_BY_HOP | connection_tokens(headers)
        self._kept = [(k, v) for k, v in headers if k.lower() not in dropped]
        self._seen = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in self._kept]
        ctype = header(self._seen, "content-type").split(";", 1)[0].strip().lower()
        if framing != "none" and self.tx.response_body_access and ctype in self.rules.body_types:
            self._buffer = bytearray()
            return False
        if not self._inspect(HttpResponse(status, self._seen)):
            return False
        raw = raw_ok and self.http11
        self._start(None, raw)
        return raw

    def write(self, data: bytes) -> None:
        self._out.append(data)

    def flush(self) -> None:
        if self._out:
            self._send(self._out[0] if len(self._out) == 1 else b"".join(self._out))
            self._out.clear()

    def on_body(self, data: bytes) -> None:
        if self.blocked:
            return  # the upstream goes on talking after a block; nobody listens
        if self._buffer is not None:
            self._buffer += data
            if len(self._buffer) > self.rules.body_limit:
                self._release(ended=False)
        elif self._chunk:
            self.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.write(data)

    def on_end(self) -> None:
        if self.blocked:
            return
        if self._buffer is not None:
            self._release(ended=True)
        if self._chunk:
            self.write(b"0\r\n\r\n")

    def _release(self, ended: bool) -> None:
        """Phase 4 on the held-back body (its first body_limit bytes), then the answer."""
        assert self._buffer is not None
        body, self._buffer = bytes(self._buffer), None
        seen = body[: self.rules.body_limit]
        if not self._inspect(HttpResponse(self._status, self._seen, seen)):
            return
        self._start(len(body) if ended else None, raw=False)
        if body:
            self.on_body(body)

    def _start(self, length: int | None, raw: bool) -> None:
        """The head: the upstream's headers less hop-by-hop ones, framed for this client."""
        framing = self._framing
        out = [status_line(self._status, self._reason)]
        for name, value in self._kept:
            if name.lower() != b"content-length" or (
                length is None and framing in ("length", "none")
            ):
                out.append(b"%s: %s\r\n" % (name, value))
        if length is not None:
            out.append(b"content-length: %d\r\n" % length)
        elif framing in ("chunked", "close"):
            if self.http11:
                out.append(b"transfer-encoding: chunked\r\n")
                self._chunk = not raw
            else:
                self.keep_alive = False  # an HTTP/1.0 client reads to the close
        if not self.keep_alive:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        self.write(b"".join(out))
        self.started = True

    def _inspect(self, response: HttpResponse) -> bool:
        """True when the answer may go out; otherwise the client got an error instead."""
        verdict = inspect_response(self.tx, response)
        if verdict is None:
            return True
        self.blocked = True
        self.write(blocked(self.tx, verdict, self.keep_alive))
        return False
