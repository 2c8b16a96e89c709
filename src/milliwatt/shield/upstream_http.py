"""One keep-alive HTTP/1.1 connection to the upstream, and how it hands an answer on.

An exchange writes one request and hands the answer to a `ResponseSink` from the connection's
own callbacks as bytes arrive, so relaying a response costs no task switch beyond waiting for
its end. Answers are framed by Content-Length, chunked encoding or the connection's close;
those to HEAD, and 1xx/204/304, have no body. A chunked body can be taken raw, as received,
so the proxy need not decode and re-encode it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal, Protocol, cast

import httptools

if TYPE_CHECKING:
    from milliwatt.shield.upstream import UpstreamPool

Framing = Literal["none", "length", "chunked", "close"]


class UpstreamError(Exception):
    """The upstream did not answer in full: `status` is what the client should get (502, 504)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class Stale(Exception):
    """A pooled connection the upstream had closed: nothing came back, the request may go again."""


class ResponseSink(Protocol):
    upstream: UpstreamConnection | None  # the connection answering, while it does

    def on_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        framing: Framing,
        raw_ok: bool,
    ) -> bool:
        """The status line and headers; returns True to take the body raw (`raw_ok`: a
        chunked body, and it can be had as received)."""

    def on_body(self, data: bytes) -> None:
        """Body bytes: decoded, or raw chunked framing when on_head asked for that."""

    def on_end(self) -> None:
        """The answer is complete."""

    def flush(self) -> None:
        """What the calls so far produced may go out: the connection read all it had."""


class UpstreamConnection(asyncio.Protocol):
    """One connection; one exchange at a time."""

    # the answer being read (_start_answer sets them for each)
    parser: httptools.HttpResponseParser
    _head_done: bool
    _raw: bool  # the body goes to the sink as received
    _split: bool  # the head ended exactly where a read was cut
    _tail: bytes  # the last bytes of a read, while the head's end is sought
    _reason: bytes
    _headers: list[tuple[bytes, bytes]]
    _framing: Framing
    _received: int
    _last_read: float

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.served = 0  # exchanges completed, so a failure on a reused one can be retried
        self.reading_paused = False
        self._sink: ResponseSink | None = None
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head = False
        self._start_answer()

    # -- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.open = cast(asyncio.Transport, transport), True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.pool.forget(self)
        if self._sink is None:
            return
        if self._head_done and self._framing == "close":
            sink = self._sink
            self._finish(reusable=False)  # a close-delimited body ends with the connection
            sink.flush()
        elif self._received == 0 and self.served:
            self._fail(Stale())
        else:
            self._fail(UpstreamError(502, "upstream closed the connection mid-answer"))

    def data_received(self, data: bytes) -> None:
        sink = self._sink
        if sink is None:
            self.close()  # nothing was asked: bytes out of turn
            return
        self._received += len(data)
        self._last_read = self.loop.time()
        try:
            # the head is fed on its own, so the body after it can be passed on raw
            while not self._head_done and data:
                joined = self._tail + data  # a CRLFCRLF may straddle two reads
                end = joined.find(b"\r\n\r\n")
                if end < 0:
                    self._tail = joined[-3:]
                    self._split = False
                    self.parser.feed_data(data)
                    return
                end += 4 - len(self._tail)
                self._tail, self._split = b"", True
                head, data = data[:end], data[end:]
                self.parser.feed_data(head)
            if data and self._sink is not None:
                if self._raw:
                    self._sink.on_body(data)
                self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(502, f"upstream sent malformed HTTP: {exc}"))
            self.close()
        finally:
            sink.flush()  # one write to the client per read from the upstream

    def pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    # -- one exchange ----------------------------------------------------------------------

    def exchange(self, request: bytes, sink: ResponseSink, head: bool) -> asyncio.Future[None]:
        assert self.transport is not None
        self._start_answer()
        self._sink, self._head = sink, head
        sink.upstream = self
        self._done = self.loop.create_future()
        self._timer = self.loop.call_later(self.pool.timeout_s, self._check_timeout)
        self.transport.write(request)
        return self._done

    def _start_answer(self) -> None:
        """A fresh parser and state for the next answer on this connection."""
        self.parser = httptools.HttpResponseParser(self)
        self._head_done = self._raw = self._split = False
        self._tail = self._reason = b""
        self._headers = []
        self._framing = "close"
        self._received = 0
        self._last_read = self.loop.time()

    def _check_timeout(self) -> None:
        idle = self.loop.time() - self._last_read
        if idle < self.pool.timeout_s:
            self._timer = self.loop.call_later(self.pool.timeout_s - idle, self._check_timeout)
            return
        self._timer = None
        self._fail(UpstreamError(504, "upstream timed out"))
        self.close()

    def _detach(self) -> tuple[ResponseSink | None, asyncio.Future[None] | None]:
        """Ends the exchange in progress on this connection; returns its sink and future."""
        sink, done = self._sink, self._done
        self._sink = self._done = None
        if sink is not None:
            sink.upstream = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return sink, done

    def _finish(self, reusable: bool) -> None:
        sink, done = self._detach()
        self.resume_reading()
        if sink is not None:
            sink.on_end()
        if done is not None and not done.done():
            done.set_result(None)
        self.served += 1
        self.pool.release(self, reusable and self.open)

    def _fail(self, error: Exception) -> None:
        _, done = self._detach()
        if done is not None and not done.done():
            done.set_exception(error)
        self.close()

    # -- httptools callbacks ---------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        self._head_done = True
        if self._head or status in (204, 304):
            self._framing = "none"
        else:
            self._framing = "close"
            for name, value in self._headers:
                lowered = name.lower()
                if lowered == b"transfer-encoding" and value.lower().rstrip().endswith(b"chunked"):
                    self._framing = "chunked"
                    break
                if lowered == b"content-length":
                    self._framing = "length"
        assert self._sink is not None
        # raw only when the head ended exactly where it was cut from the body
        raw_ok = self._split and self._framing == "chunked"
        raw = self._sink.on_head(status, self._reason.strip(), self._headers, self._framing, raw_ok)
        self._raw = raw and raw_ok
        if self._framing == "none":
            # llhttp would wait for a HEAD answer's declared body: the answer ends here
            self._finish(reusable=self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self._sink is not None and not self._raw:
            self._sink.on_body(body)

    def on_message_complete(self) -> None:
        if not self._head_done:  # the end of an interim answer
            self._reason, self._headers = b"", []
            return
        if self._sink is not None:
            self._finish(reusable=self.parser.should_keep_alive() and self._framing != "close")
