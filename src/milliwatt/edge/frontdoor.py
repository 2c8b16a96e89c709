"""The front door: one HTTP address before many PoPs, each a set of `milliwatt serve` replicas.

Every request (OpenAI-compatible paths and anything else) goes to the nearest PoP that can
serve it (edge.routing), and its answer comes back as it arrives: a streamed turn's SSE
events are relayed chunk by chunk, never buffered. A request moves to the next PoP when:

- its replica refused the connection, did not accept it within connect_timeout, or the
  request could not be written whole: the PoP cannot have acted on it, so even a chat turn
  is safe to send again; the replica is taken out at once instead of after the next failed
  probes (also when a connection drops without an answer);
- the PoP answered 503 (it cannot serve now: model restarting, line full), or 429 for a
  reason other than the caller's own limits (those follow the caller to every PoP: moving
  would only dodge them). The gateway stores a turn only when it completes, so a refused
  turn left nothing behind;
- a GET or HEAD failed in any way before an answer began.

A POST that failed after it was sent is not sent again (the PoP may have carried it out):
the client gets 502. Once bytes of an answer reached the client, a failure cuts the
connection (an answer that ends early must not look complete). A replica taken out (its
probes time out: frozen, partitioned) has its requests in flight cut at once, the same way,
rather than left waiting for read_timeout_seconds.

GET /healthz is the front door's own (ok while some PoP is healthy), GET /frontdoor/pops
shows what it measures, GET /v1/models lists the models of all healthy PoPs together;
every other path goes to a PoP.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from milliwatt.edge.health import Pop, Prober, Replica, build_pops
from milliwatt.edge.messages import (
    answer_headers,
    bounded_body,
    error,
    forward_headers,
    is_refusal,
    model_of,
    upstream_url,
)
from milliwatt.edge.pops import FrontDoorConfig
from milliwatt.edge.routing import (
    RTT_HINT_HEADER,
    next_replica,
    parse_rtt_hint,
    pick_replica,
    ranked,
)
from milliwatt.errors import InvalidRequestError

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK = frozenset({"127.0.0.1", "::1"})
# failures before a whole request was sent: the PoP cannot have acted on it
NEVER_ARRIVED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.WriteError, httpx.WriteTimeout)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ReplicaDown(Exception):
    """The replica was taken out while this request was on it."""


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
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/{path:path}", self.forward, methods=METHODS),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

    async def healthz(self, request: Request) -> JSONResponse:
        healthy = [p.name for p in self.pops if p.healthy]
        body = {"status": "ok" if healthy else "unavailable", "healthy_pops": healthy}
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def pop_states(self, request: Request) -> Response:
        client = request.client.host if request.client else ""
        if not self.settings.show_replicas and client not in LOOPBACK:
            return error(403, "the PoPs' state is shown on loopback only", "forbidden")
        return JSONResponse({"pops": [pop.state() for pop in self.pops]})

    async def models(self, request: Request) -> Response:
        """Every model some healthy PoP serves this caller (a request for one the nearest
        PoP lacks goes to one that has it). The nearest PoP's refusal (401) is the answer."""
        now = time.monotonic()
        targets = [
            chosen
            for pop in ranked(self.pops)
            if (chosen := pick_replica([r for r in pop.replicas if r.available(now)]))
        ]
        if not targets:
            return await self.forward(request)  # its 503 says why
        headers = forward_headers(request)
        answers = await asyncio.gather(
            *(self.client.get(upstream_url(r.url, request), headers=headers) for r in targets),
            return_exceptions=True,
        )
        nearest = answers[0]
        if not isinstance(nearest, httpx.Response) or nearest.status_code != 200:
            return await self.forward(request)
        seen: dict[str, object] = {}
        for answer in answers:
            if isinstance(answer, httpx.Response) and answer.status_code == 200:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    for model in answer.json()["data"]:
                        seen.setdefault(str(model["id"]), model)
        return JSONResponse({"object": "list", "data": list(seen.values())})

    async def forward(self, request: Request) -> Response:
        try:
            body = await bounded_body(request, self.settings.max_body_bytes)
            hint = parse_rtt_hint(request.headers.get(RTT_HINT_HEADER), {p.name for p in self.pops})
        except InvalidRequestError as exc:
            return error(400, str(exc), "invalid_value")
        model = model_of(request, body)
        headers = forward_headers(request)
        tried: set[str] = set()
        refusal: Response | None = None
        while (
            replica := next_replica(self.pops, model, tried, time.monotonic(), hint)
        ) is not None:
            tried.add(replica.url)
            outgoing = self.client.build_request(
                request.method, upstream_url(replica.url, request), headers=headers, content=body
            )
            replica.in_flight += 1
            down = replica.when_down()
            try:
                async with _cut_when(down):
                    upstream = await self.client.send(outgoing, stream=True)
            except NEVER_ARRIVED as exc:  # no complete request reached the PoP
                _finished(replica, down)
                replica.mark_down(f"{type(exc).__name__}: {exc}")
                continue
            except (httpx.HTTPError, ReplicaDown) as exc:
                _finished(replica, down)
                if isinstance(exc, httpx.TransportError):  # dropped without an answer: gone
                    replica.mark_down(f"{type(exc).__name__}: {exc}")
                if request.method in IDEMPOTENT:
                    continue
                text = (
                    f"the point of presence {replica.pop!r} failed before answering "
                    f"({type(exc).__name__}); not sent again: it may have been carried out"
                )
                return error(502, text, "upstream_failed")
            if upstream.status_code in {429, 503}:  # short answers: read whole
                answer = await self._relay_whole(upstream, replica, down)
                if not is_refusal(upstream):
                    return answer
                replica.saturate(self._saturation_seconds(upstream))
                refusal = answer
                continue
            return _Relayed(upstream, replica, down, self.settings.show_replicas)
        if refusal is not None:  # every PoP that could serve it is saturated: say so
            return refusal
        text = "no point of presence is available to serve this request"
        return error(503, text, "service_unavailable", retry_after=1)

    def _saturation_seconds(self, upstream: httpx.Response) -> float:
        try:
            seconds = float(upstream.headers.get("retry-after", ""))
        except ValueError:
            seconds = self.settings.saturation_seconds
        return min(max(seconds, 0.0), self.settings.saturation_max_seconds)

    async def _relay_whole(
        self, upstream: httpx.Response, replica: Replica, down: asyncio.Future[None]
    ) -> Response:
        try:
            async with _cut_when(down):
                content = await upstream.aread()
        except (httpx.HTTPError, ReplicaDown):
            content = b""
        finally:
            await upstream.aclose()
            _finished(replica, down)
        answer = Response(content, status_code=upstream.status_code)
        show = self.settings.show_replicas
        answer.raw_headers += answer_headers(upstream, replica, decoded=True, show_replica=show)
        return answer


class _Relayed(StreamingResponse):
    """A PoP's answer relayed as it arrives. However the relay ends (done, failed, or the
    client gone, even before the first chunk), the PoP's response is closed, which tells it
    to stop the turn, and the replica's in-flight count is released."""

    def __init__(
        self, upstream: httpx.Response, replica: Replica, down: asyncio.Future[None], show: bool
    ) -> None:
        super().__init__(self._chunks(), status_code=upstream.status_code)
        self.raw_headers = answer_headers(upstream, replica, decoded=False, show_replica=show)
        self.upstream, self.replica, self.down = upstream, replica, down
        self.released = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # a stream never started has no finally of its own
            await self._release()

    async def _release(self) -> None:
        if not self.released:
            self.released = True
            await self.upstream.aclose()
            _finished(self.replica, self.down)

    async def _chunks(self) -> AsyncIterator[bytes]:
        chunks = self.upstream.aiter_raw()
        try:
            while True:
                async with _cut_when(self.down):  # never around the yield: the client's time
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        return
                yield chunk
        finally:  # released before the last empty message tells the client it is complete
            await self._release()


@contextlib.asynccontextmanager
async def _cut_when(down: asyncio.Future[None]) -> AsyncIterator[None]:
    """Run the block unless `down` resolves first; then ReplicaDown."""
    loop = asyncio.get_running_loop()
    inside = True  # a callback already scheduled may run after the block: then it does nothing
    try:
        async with asyncio.timeout(None) as deadline:

            def fire(_: object) -> None:
                if inside:
                    deadline.reschedule(loop.time())

            if down.done():
                fire(down)
            down.add_done_callback(fire)
            try:
                yield
            finally:
                inside = False
                down.remove_done_callback(fire)
    except TimeoutError:
        raise ReplicaDown from None


def _finished(replica: Replica, down: asyncio.Future[None]) -> None:
    replica.in_flight -= 1
    replica.down_waiters.discard(down)
    down.cancel()
