"""The front door: one HTTP address before many PoPs, each a set of `milliwatt serve` replicas.

Every request (OpenAI-compatible paths and anything else) goes to the nearest PoP that can
serve it (edge.routing), and its answer comes back as it arrives: a streamed turn's SSE
events are relayed chunk by chunk, never buffered. A request moves to the next PoP when:

- its replica refused the connection (or did not accept it within connect_timeout): nothing
  reached the PoP, so even a chat turn is safe to send again; the replica is taken out
  at once instead of after the next failed probes;
- the PoP answered 503 (it cannot serve now: model restarting, line full), or 429 for a
  reason other than the caller's own limits (those follow the caller to every PoP: moving
  would only dodge them). The gateway stores a turn only when it completes, so a refused
  turn left nothing behind;
- a GET or HEAD failed in any way before an answer began.

A POST that failed after it was sent is not sent again (the PoP may have carried it out):
the client gets 502. Once bytes of an answer reached the client, a failure cuts the
connection (an answer that ends early must not look complete).

GET /healthz is the front door's own (ok while some PoP is healthy), and GET
/frontdoor/pops shows what it measures; every other path goes to a PoP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from milliwatt.edge.health import Pop, Prober, Replica, build_pops
from milliwatt.edge.pops import FrontDoorConfig
from milliwatt.edge.routing import RTT_HINT_HEADER, next_replica, parse_rtt_hint
from milliwatt.errors import InvalidRequestError

# headers of one connection, not of the message (RFC 9110 7.6.1), and those httpx sets itself
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
     "trailer", "transfer-encoding", "upgrade", "host", "content-length"}
)  # fmt: skip
POP_HEADER = "x-milliwatt-pop"
REPLICA_HEADER = "x-milliwatt-replica"
CALLER_LIMITS = frozenset({"rate_limit_exceeded", "budget_exceeded", "invalid_otp"})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class FrontDoor:
    def __init__(self, config: FrontDoorConfig) -> None:
        self.settings = config.frontdoor
        self.pops: list[Pop] = build_pops(config)
        self.prober = Prober(self.pops, self.settings)
        timeout = httpx.Timeout(
            self.settings.read_timeout_seconds, connect=self.settings.connect_timeout_seconds
        )
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits)

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await self.prober.probe_all()  # a first measurement before the first request
            probing = asyncio.create_task(self.prober.run())
            try:
                yield
            finally:
                probing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await probing
                await self.prober.aclose()
                await self.client.aclose()

        routes = [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/frontdoor/pops", self.pop_states, methods=["GET"]),
            Route("/{path:path}", self.forward, methods=METHODS),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

    async def healthz(self, request: Request) -> JSONResponse:
        healthy = [p.name for p in self.pops if p.healthy]
        body = {"status": "ok" if healthy else "unavailable", "healthy_pops": healthy}
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def pop_states(self, request: Request) -> JSONResponse:
        return JSONResponse({"pops": [pop.state() for pop in self.pops]})

    async def forward(self, request: Request) -> Response:
        try:
            body = await _bounded_body(request, self.settings.max_body_bytes)
            hint = parse_rtt_hint(request.headers.get(RTT_HINT_HEADER), {p.name for p in self.pops})
        except InvalidRequestError as exc:
            return _error(400, str(exc), "invalid_value")
        model = _model_of(request, body)
        headers = _forward_headers(request)
        tried: set[str] = set()
        refusal: Response | None = None
        while True:
            replica = next_replica(self.pops, model, tried, time.monotonic(), hint)
            if replica is None:
                break
            tried.add(replica.url)
            outgoing = self.client.build_request(
                request.method,
                replica.url + request.url.path,
                params=request.url.query.encode(),
                headers=headers,
                content=body,
            )
            replica.in_flight += 1
            try:
                upstream = await self.client.send(outgoing, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                replica.in_flight -= 1
                replica.mark_down(f"{type(exc).__name__}: {exc}")
                continue
            except httpx.HTTPError as exc:
                replica.in_flight -= 1
                if request.method in IDEMPOTENT:
                    continue
                text = (
                    f"the point of presence {replica.pop!r} failed before answering "
                    f"({type(exc).__name__}); not sent again: it may have been carried out"
                )
                return _error(502, text, "upstream_failed")
            if upstream.status_code in {429, 503}:  # short answers: read whole
                answer = await self._relay_whole(upstream, replica)
                if not _is_refusal(upstream):
                    return answer
                replica.saturate(self._saturation_seconds(upstream))
                refusal = answer
                continue
            answer = StreamingResponse(
                self._relay(upstream, replica), status_code=upstream.status_code
            )
            answer.raw_headers = _answer_headers(upstream, replica, decoded=False)
            return answer
        if refusal is not None:  # every PoP that could serve it is saturated: say so
            return refusal
        text = "no point of presence is available to serve this request"
        return _error(503, text, "service_unavailable", retry_after=1)

    def _saturation_seconds(self, upstream: httpx.Response) -> float:
        try:
            seconds = float(upstream.headers.get("retry-after", ""))
        except ValueError:
            seconds = self.settings.saturation_seconds
        return min(max(seconds, 0.0), self.settings.saturation_max_seconds)

    async def _relay_whole(self, upstream: httpx.Response, replica: Replica) -> Response:
        try:
            content = await upstream.aread()
        except httpx.HTTPError:
            content = b""
        finally:
            await upstream.aclose()
            replica.in_flight -= 1
        answer = Response(content, status_code=upstream.status_code)
        answer.raw_headers += _answer_headers(upstream, replica, decoded=True)
        return answer

    async def _relay(self, upstream: httpx.Response, replica: Replica) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:  # also when the client went away: closing tells the PoP to stop the turn
            await upstream.aclose()
            replica.in_flight -= 1


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRequestError(f"the request body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidRequestError(f"the request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _model_of(request: Request, body: bytes) -> str | None:
    """The requested model (agent) of a JSON body, for choosing a PoP that serves it."""
    if request.method != "POST" or not body.startswith(b"{"):
        return None
    try:
        model = json.loads(body).get("model")
    except (ValueError, AttributeError):
        return None  # the PoP will say what is wrong with it
    return model if isinstance(model, str) else None


def _forward_headers(request: Request) -> list[tuple[str, str]]:
    skip = HOP_BY_HOP | {"x-forwarded-for"}
    headers = [(k, v) for k, v in request.headers.items() if k not in skip]
    client = request.client.host if request.client else ""
    earlier = request.headers.get("x-forwarded-for")
    headers.append(("x-forwarded-for", f"{earlier}, {client}" if earlier else client))
    if "accept-encoding" not in request.headers:  # else httpx asks for gzip on its behalf
        headers.append(("accept-encoding", "identity"))
    return headers


def _answer_headers(
    upstream: httpx.Response, replica: Replica, *, decoded: bool
) -> list[tuple[bytes, bytes]]:
    """The PoP's headers (repeated ones kept: set-cookie), and which PoP answered. Relayed
    raw, the body keeps its length and encoding; read whole, httpx has decoded it."""
    skip = HOP_BY_HOP | ({"content-encoding"} if decoded else set())
    headers = [
        (k.lower(), v) for k, v in upstream.headers.raw if k.decode("latin-1").lower() not in skip
    ]
    if not decoded and "content-length" in upstream.headers:
        headers.append((b"content-length", upstream.headers["content-length"].encode()))
    headers.append((POP_HEADER.encode(), replica.pop.encode()))
    headers.append((REPLICA_HEADER.encode(), replica.url.encode("latin-1")))
    return headers


def _is_refusal(answer: httpx.Response) -> bool:
    """A PoP's "not now" (try the next one) rather than its answer to this caller."""
    return answer.status_code == 503 or _error_code(answer) not in CALLER_LIMITS


def _error_code(response: httpx.Response) -> str | None:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def _error(status: int, message: str, code: str, retry_after: int | None = None) -> Response:
    body: dict[str, Any] = {"error": {"message": message, "type": "frontdoor", "code": code}}
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)
