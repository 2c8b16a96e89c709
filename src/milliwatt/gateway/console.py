"""The web chat (/), the operator console (/console), its JSON API and /metrics.

The pages are static shells: every figure they show comes from the JSON endpoints under
/console/api/ (and the chat from the OpenAI-compatible API), so one access rule on those
paths covers all the data. Stored conversations are listed at /v1/sessions.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from milliwatt import __version__
from milliwatt.agent.runtime import Runtime
from milliwatt.gateway.auth import tenant_prefix
from milliwatt.gateway.schemas import ApiError
from milliwatt.memory.sessions import check_session_name
from milliwatt.telemetry import tracing
from milliwatt.telemetry.http import Telemetry
from milliwatt.telemetry.records import RequestRecord
from milliwatt.telemetry.summary import lane, parse_span, summarize, timeseries

STATIC = Path(str(resources.files("milliwatt.gateway").joinpath("static")))
# the pages load only their own scripts and styles, and no other site may frame them
_PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
MAX_WINDOW_SECONDS = 90 * 86400


def console_routes(runtime: Runtime, telemetry: Telemetry | None) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/v1/sessions", lambda r: _sessions(runtime, tenant_prefix(r))),
        Route(
            "/v1/sessions/{name}",
            lambda r: _session(runtime, tenant_prefix(r), r.path_params["name"]),
        ),
    ]
    if not runtime.settings.telemetry.console:
        return routes
    routes += [
        Route("/", lambda r: _page("chat.html")),
        Route("/console", lambda r: _page("console.html")),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/console/api/health", lambda r: _health(runtime)),
    ]
    if telemetry is None:
        return routes
    api = _ConsoleApi(runtime, telemetry)
    routes += [
        Route("/console/api/summary", api.summary),
        Route("/console/api/timeseries", api.timeseries),
        Route("/console/api/requests", api.requests),
    ]
    if telemetry.metrics is not None:
        routes.append(Route("/metrics", api.metrics))
    return routes


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers=_PAGE_HEADERS)


def _health(runtime: Runtime) -> JSONResponse:
    return JSONResponse(
        {
            "version": __version__,
            "agents": [{"name": a.name, "models": list(a.models)} for a in runtime.settings.agents],
            "models": runtime.model_status(),
            "tracing": tracing.enabled(),
        }
    )


def _sessions(runtime: Runtime, prefix: str) -> JSONResponse:
    """The caller's tenant's sessions, named as the caller names them."""
    data = [
        {
            "id": s.name[len(prefix) :],
            "agent": s.agent,
            "turns": s.turns,
            "created": s.created,
            "updated": s.updated,
            "tokens": s.cost.tokens,
            "joules_est": round(s.cost.joules_est, 6),
        }
        for s in runtime.store.list()
        if s.name.startswith(prefix)
    ]
    return JSONResponse({"object": "list", "data": data})


def _session(runtime: Runtime, prefix: str, name: str) -> JSONResponse:
    try:
        name = check_session_name(name)
    except ValueError as exc:
        return ApiError(400, str(exc), param="name", code="invalid_value").response()
    stored = prefix + name  # another tenant's session is not there to be found
    info = runtime.store.info(stored)
    if info is None:
        return ApiError(404, f"no session named {name!r}", code="not_found").response()
    messages = [
        {"role": m.role, "content": m.content}
        for m in runtime.store.history(stored)
        if m.role in ("user", "assistant") and m.content and not m.tool_calls
    ]
    return JSONResponse({"id": name, "agent": info.agent, "messages": messages})


class _ConsoleApi:
    """Plain functions: Starlette runs them on its thread pool, so reading the ledger and
    summing a day of requests never holds up the event loop."""

    def __init__(self, runtime: Runtime, telemetry: Telemetry) -> None:
        self.runtime = runtime
        self.telemetry = telemetry

    def _records(self, request: Request) -> tuple[list[RequestRecord], float, float]:
        window = _window(request)
        until = time.time()
        store = self.telemetry.store
        if store is None:
            return [], until - window, until
        self.telemetry.flush()
        return store.since(until - window), until - window, until

    def summary(self, request: Request) -> Response:
        try:
            records, since, until = self._records(request)
        except ApiError as exc:
            return exc.response()
        budgets = {
            a.name: a.budgets.model_dump(include={
                "tokens_per_request", "model_calls_per_request", "seconds_per_request"})
            for a in self.runtime.settings.agents
        }  # fmt: skip
        return JSONResponse(summarize(records, since=since, until=until, budgets=budgets))

    def timeseries(self, request: Request) -> Response:
        try:
            records, since, until = self._records(request)
            step = float(request.query_params.get("step") or 0) or (until - since) / 60
        except ApiError as exc:
            return exc.response()
        except ValueError:
            message = "step must be a number of seconds"
            return ApiError(400, message, param="step", code="invalid_value").response()
        step = max(step, (until - since) / 1000, 1.0)  # at most 1000 points
        return JSONResponse(timeseries(records, since=since, until=until, step=step))

    def requests(self, request: Request) -> Response:
        store = self.telemetry.store
        try:
            after = int(request.query_params.get("after") or 0)
            limit = min(500, max(1, int(request.query_params.get("limit") or 50)))
        except ValueError:
            message = "after and limit must be whole numbers"
            return ApiError(400, message, param="after", code="invalid_value").response()
        if store is None:
            return JSONResponse({"data": []})
        self.telemetry.flush()
        data = [_feed_row(seq, r) for seq, r in store.latest(limit, after)]
        return JSONResponse({"data": data})

    def metrics(self, request: Request) -> Response:
        assert self.telemetry.metrics is not None
        self.telemetry.flush()
        body, content_type = self.telemetry.metrics.exposition()
        return Response(body, media_type=content_type.split(";")[0], headers={
            "content-type": content_type})  # fmt: skip


def _window(request: Request) -> float:
    text = request.query_params.get("window") or "24h"
    try:
        seconds = parse_span(text)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="window", code="invalid_value") from None
    return min(seconds, MAX_WINDOW_SECONDS)


def _feed_row(seq: int, record: RequestRecord) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": record.id,
        "ts": record.ts,
        "route": record.route,
        "lane": lane(record),
        "agent": record.agent,
        "model": record.model,
        "tier": record.tier,
        "status": record.status,
        "duration_ms": round(record.duration_ms, 3),
        "tokens": record.tokens,
        "joules_est": round(record.joules_est, 6),
        "tools": record.tools,
        "denials": record.denials,
        "waf_rules": record.waf_rules,
        "stop": record.stop,
        "session": record.session,
        "trace_id": record.trace_id,
    }
