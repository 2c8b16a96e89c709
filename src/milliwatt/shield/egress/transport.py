"""An httpx transport whose sockets go only to addresses the guard has checked.

The URL keeps its host name, so httpx sends the right Host header and httpcore the right TLS
SNI and certificate check; only the TCP connect is redirected to the pinned address. The
backend never resolves anything itself: no pin, no connection.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from .addresses import IPAddress
from .errors import EgressError, EgressTimeout


class PinnedBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.pins: dict[tuple[str, int], tuple[IPAddress, ...]] = {}
        self._system = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.pins.get((host, port))
        if not addresses:
            raise httpcore.ConnectError(f"no checked address for {host}:{port}; refusing to dial")
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._system.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable through the egress guard")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _translated_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PinnedTransport(httpx.BaseTransport):
    def __init__(self, backend: PinnedBackend, verify: ssl.SSLContext | bool = True) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=backend, http1=True, http2=False, retries=0
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _translated_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


@contextmanager
def _translated_errors() -> Iterator[None]:
    """httpcore's exceptions become the guard's, with a message a user can act on."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise EgressTimeout(f"timed out: {exc or type(exc).__name__}") from exc
    except httpcore.ConnectError as exc:
        raise EgressError(f"could not connect: {exc}") from exc
    except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise EgressError(f"connection failed: {exc or type(exc).__name__}") from exc
