"""The proxy's client side: an asyncio protocol that parses requests with httptools, drives
each through a WAF transaction (phases 1-2, then 3-4 on the answer, then the audit log) and
forwards what passes to the upstream pool.

Requests on one connection are answered in order (pipelining included). Malformed HTTP gets
400 and the connection closes; a request line and headers over MAX_HEADER_BYTES get 431
(httptools sets no bound: a 50 MB header would be held whole), headers not received within
HEADER_TIMEOUT_S close the connection (a client sending a byte at a time holds nothing for
long), and a body over the WAF's limit gets 413 unread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import cast

import httptools

from milliwatt.shield.auditlog import AuditLog
from milliwatt.shield.header_limit import HeaderLimit, too_large_answer
from milliwatt.shield.http import INSPECT_INLINE_BYTES, audit_transaction
from milliwatt.shield.proxy_relay import (
    ResponseRelay,
    ResponseRules,
    blocked,
    json_answer,
    refusal,
)
from milliwatt.shield.proxy_request import ProxyRequest, upstream_request
from milliwatt.shield.upstream import UpstreamError, UpstreamPool
from milliwatt.shield.waf import WAF, HttpRequest, Transaction
from milliwatt.shield.waf.api import MalformedRequest

log = logging.getLogger(__name__)

BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 29\r\n\r\nInvalid HTTP request received."
)
KEEP_ALIVE_S = 5.0  # an idle client connection is closed after this long
MAX_HEADER_BYTES = 32_768  # a request line and its headers, as nginx's 4 x 8 KB buffers
HEADER_TIMEOUT_S = 10.0  # from a request's first byte to the end of its headers
_PIPELINE_DEPTH = 16  # parsed requests waiting on one connection before reading pauses


@dataclass
class ProxyContext:
    """What every connection of one server shares."""

    waf: WAF
    pool: UpstreamPool
    prefix: bytes  # the upstream URL's path, before each request's target
    authority: bytes  # Host for requests that came without one
    audit: AuditLog | None
    response_rules: ResponseRules
    body_limit: int


class ClientConnection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, ctx: ProxyContext, connections: set[ClientConnection]) -> None:
        self.ctx, self.connections = ctx, connections
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[ProxyRequest] = deque()
        self.busy = False  # a task is answering the queue
        self.closed = False
        self.idle_since = self.loop.time()
        self.relay: ResponseRelay | None = None  # the answer being relayed
        self.ignoring = False  # the rest of the stream is not parsed (refused, upgraded)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._request: ProxyRequest | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._task: asyncio.Task[None] | None = None
        self._limit = HeaderLimit(MAX_HEADER_BYTES)
        self.headers_since: float | None = None  # when the unfinished headers began

    # -- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
        local = transport.get_extra_info("sockname") or ("0.0.0.0", 0)
        self.client, self.server = (peer[0], peer[1]), (local[0], local[1])
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.connections.discard(self)
        self.queue.clear()
        if self.relay is not None and self.relay.upstream is not None:
            self.relay.upstream.close()  # nobody waits for the rest of that answer

    def data_received(self, data: bytes) -> None:
        if self.ignoring:
            return
        self.idle_since = self.loop.time()  # a slow upload is not an idle connection
        self._limit.received(len(data))
        if self._limit.in_headers and self.headers_since is None:
            self.headers_since = self.idle_since
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.ignoring = True  # the upgrade request itself was queued; the rest is not HTTP
        except httptools.HttpParserError as exc:
            log.debug("malformed request from %s: %s", self.client[0], exc)
            self._refuse_unparsed(too_large=self._limit.exceeded)
            return
        if self._limit.overflowing():
            self._refuse_unparsed(too_large=True)

    def _refuse_unparsed(self, *, too_large: bool) -> None:
        self.ignoring = True
        self._request = None
        self.headers_since = None
        bad = ProxyRequest(b"", b"", "1.1")
        bad.malformed, bad.too_large, bad.keep_alive = True, too_large, False
        self._enqueue(bad)

    def pause_writing(self) -> None:
        if self.relay is not None and self.relay.upstream is not None:
            self.relay.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.relay is not None and self.relay.upstream is not None:
            self.relay.upstream.resume_reading()

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url, self._headers, self._parts, self._size = b"", [], [], 0
        self._request = None

    def on_url(self, url: bytes) -> None:
        self._limit.parsed(len(url))
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._limit.parsed(len(name) + len(value) + 4)  # ": " and CRLF
        self._headers.append((name, value.rstrip(b" \t")))  # llhttp keeps trailing spaces

    def on_headers_complete(self) -> None:
        self._limit.headers_complete()
        self.headers_since = None
        headers = self._headers
        parsed = httptools.parse_url(self._url)  # raises for a bad target: 400
        parsed.path.decode("ascii")  # so does a path that is not ASCII, as uvicorn does
        target = parsed.path + (b"?" + parsed.query if parsed.query else b"")
        version = self.parser.get_http_version()
        request = self._request = ProxyRequest(self.parser.get_method(), target, version)
        request.headers = headers
        upgrade = self.parser.should_upgrade()
        request.keep_alive = version != "1.0" and self.parser.should_keep_alive() and not upgrade
        expect = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"content-length" or lowered == b"transfer-encoding":
                request.framed = True
                if lowered == b"content-length" and self._over_limit(int(value or b"0")):
                    request.refuse = (413, "request body larger than the WAF inspects")
            elif lowered == b"expect" and value.lower() == b"100-continue":
                expect = True
            elif lowered == b"upgrade" and value.lower() == b"websocket":
                request.websocket = upgrade
        if request.refuse is not None:  # answered unread
            request.keep_alive = False
            self.ignoring = True
            self._request = None
            self._enqueue(request)
        elif expect and not self.busy and not self.queue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._request is None or self.ignoring:
            return
        self._size += len(body)
        if self._over_limit(self._size):
            self._request.refuse = (413, "request body larger than the WAF inspects")
            self._request.keep_alive = False
            self.ignoring = True
            self._enqueue(self._request)
            self._request = None
            return
        self._parts.append(body)

    def on_message_complete(self) -> None:
        self._limit.message_complete()
        request, self._request = self._request, None
        if request is None:  # refused before its end
            return
        request.body = b"".join(self._parts)
        if request.websocket:
            request.keep_alive = False
        self._enqueue(request)

    def _over_limit(self, size: int) -> bool:
        return size > self.ctx.body_limit and self.ctx.waf.ruleset.request_body_access

    def _enqueue(self, request: ProxyRequest) -> None:
        self.queue.append(request)
        if len(self.queue) >= _PIPELINE_DEPTH:
            self.transport.pause_reading()
        self._answer_queue()

    # -- answering -------------------------------------------------------------------------

    def _answer_queue(self) -> None:
        if not self.busy and not self.closed:
            self.busy = True
            self._task = self.loop.create_task(self._drain())  # held: the loop keeps tasks weakly

    async def _drain(self) -> None:
        try:
            while self.queue and not self.closed:
                request = self.queue.popleft()
                if len(self.queue) == _PIPELINE_DEPTH - 1:
                    self.transport.resume_reading()
                if request.malformed:
                    too_large = request.too_large
                    self.write(too_large_answer(MAX_HEADER_BYTES) if too_large else BAD_REQUEST)
                    keep_alive = False
                else:
                    try:
                        keep_alive = await self._serve(request)
                    except Exception:
                        log.exception("proxy failed on a request from %s", self.client[0])
                        keep_alive = False
                if not keep_alive:
                    self.closed = True
                    self.transport.close()
        finally:
            self.busy = False
            self.idle_since = self.loop.time()

    async def _serve(self, request: ProxyRequest) -> bool:
        """Answers one request; returns whether the connection stays open."""
        tx = self.ctx.waf.transaction(
            client_ip=self.client[0], client_port=self.client[1] or 0,
            server_ip=self.server[0], server_port=self.server[1] or 0,
        )  # fmt: skip
        refused: tuple[int, str] | None = None
        try:
            refused = await self._exchange(tx, request)
            return request.keep_alive
        finally:
            audit_transaction(tx, refused, self.ctx.audit)

    async def _exchange(self, tx: Transaction, request: ProxyRequest) -> tuple[int, str] | None:
        """Serves one request; returns (status, reason) when the proxy itself refused it."""
        keep_alive = request.keep_alive
        if request.refuse is not None:
            self.write(refusal(tx, *request.refuse, keep_alive))
            return request.refuse
        uri = request.target.decode("latin-1")
        seen = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers]
        method = request.method.decode("latin-1")
        inspected = HttpRequest(method, uri, "HTTP/" + request.version, seen, request.body)
        try:
            if len(request.body) > INSPECT_INLINE_BYTES:  # the loop goes on serving others
                verdict = await self.loop.run_in_executor(None, tx.process_request, inspected)
            else:
                verdict = tx.process_request(inspected)
        except MalformedRequest as exc:
            reason = (400, f"malformed request: {exc}")
            self.write(refusal(tx, *reason, keep_alive))
            return reason
        except Exception:
            log.exception("WAF failed on request %s; refusing it", tx.request_id)
            reason = (500, "the request could not be inspected")
            self.write(refusal(tx, *reason, keep_alive))
            return reason
        if verdict is not None or request.websocket:  # WebSockets are not proxied: 403
            if verdict is None:
                self.write(json_answer(403, {"error": "websockets are not proxied"}, False))
            else:
                self.write(blocked(tx, verdict, keep_alive))
            return None
        await self._forward(tx, request)
        return None

    async def _forward(self, tx: Transaction, request: ProxyRequest) -> None:
        relay = ResponseRelay(
            self.write, tx, self.ctx.response_rules,
            keep_alive=request.keep_alive, http11=request.version == "1.1",
        )  # fmt: skip
        self.relay = relay
        try:
            await self.ctx.pool.exchange(
                upstream_request(request, self.ctx.prefix, self.ctx.authority, self.client[0]),
                relay,
                head=request.method == b"HEAD",
            )
        except UpstreamError as exc:
            if relay.started or self.closed:
                request.keep_alive = False  # the answer is cut off: only closing says so
            else:
                self.write(json_answer(exc.status, {"error": exc.reason}, request.keep_alive))
            return
        finally:
            self.relay = None
        request.keep_alive = relay.keep_alive
