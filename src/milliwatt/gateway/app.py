"""The ASGI app: an OpenAI-compatible API over the configured agents.

POST /v1/chat/completions (streamed over SSE or not), GET /v1/models, GET /healthz, and
with an approval queue GET /v1/approvals + POST /v1/approvals/{id} (gateway/approvals.py).
Each configured agent is a "model". The request's `user` field, or an X-Session-Id header,
names the stored session it continues; without one the request's own messages are the
conversation and nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from milliwatt import __version__
from milliwatt.access.limits import LimiterUnavailable
from milliwatt.agent.runner import Agent, RunEvent, RunResult, TextDelta, ToolCalled
from milliwatt.agent.runtime import Runtime
from milliwatt.errors import InvalidRequestError, MilliwattError, ModelError, UnknownAgentError
from milliwatt.gateway.agent_thread import AgentThread
from milliwatt.gateway.auth import principal_of
from milliwatt.gateway.console import console_routes
from milliwatt.gateway.errors import api_error
from milliwatt.gateway.observe import note_result
from milliwatt.gateway.schemas import ApiError, ChatRequest, parse_chat_request, session_name
from milliwatt.telemetry.http import Telemetry

ANONYMOUS = "anonymous"  # callers without a session share what tools store (per tenant)
MAX_SESSION_CHARS = 128  # a stored session name, the tenant's prefix included
KEY_RECHECK_SECONDS = 0.5  # a stream looks this often whether its key was revoked


def create_app(
    runtime: Runtime, routes: Sequence[BaseRoute] = (), telemetry: Telemetry | None = None
) -> Starlette:
    """The API; `routes` adds more (the admin API); with `telemetry`, also /metrics, the web
    chat at / and the console."""

    async def healthz(request: Request) -> JSONResponse:
        body = {"status": "ok", "version": __version__, "agents": runtime.agent_names}
        return JSONResponse(body | {"models": runtime.model_status()})

    async def models(request: Request) -> JSONResponse:
        principal = principal_of(request.scope.get("state", {}))
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "milliwatt"}
            for name in runtime.agent_names
            if principal.may_use(name)
        ]
        return JSONResponse({"object": "list", "data": data})

    async def chat_completions(request: Request) -> Response:
        try:
            chat = parse_chat_request(await request.body(), runtime.settings.server)
            agent = _agent(runtime, chat.model)
            principal = principal_of(request.scope.get("state", {}))
            if not principal.may_use(chat.model):
                raise ApiError(
                    403, f"this API key may not use the model {chat.model!r}",
                    param="model", code="model_not_allowed",
                )  # fmt: skip
            session = session_name(chat.user or request.headers.get("x-session-id"))
            # a tenant's names live in its own namespace: tenant A's "ada" is not B's
            session = principal.scope(session) if session else None
            if session is not None and len(session) > MAX_SESSION_CHARS:
                room = MAX_SESSION_CHARS - len(principal.scope(""))
                text = f"user: at most {room} characters for this API key's tenant"
                raise ApiError(400, text, param="user", code="invalid_value")
            history = None if session else [m.to_message() for m in chat.messages[:-1]]
            turn = AgentThread(
                lambda cancel: agent.stream(
                    chat.messages[-1].text(),
                    session=session,
                    history=history,
                    # the session's name is the caller: tools keep their facts, calendars
                    # and graphs per caller
                    user=session or principal.scope(ANONYMOUS),
                    max_tokens=chat.max_completion_tokens or chat.max_tokens,
                    cancel=cancel,
                    tenant=principal.tenant,
                )
            )
            # the first event surfaces bad input, budget and model failures as HTTP errors
            with _as_api_errors():
                first = await turn.next()
        except ApiError as exc:
            return exc.response()
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if chat.stream:
            sse = _sse(completion_id, chat, first, turn, request, agent, session)
            return StreamingResponse(sse, media_type="text/event-stream")
        try:
            with _as_api_errors():
                result = await _unless_disconnected(request, turn)
        except ApiError as exc:
            return exc.response()
        if result is None:  # nobody is left to answer
            return Response(status_code=499)
        _settle(request, result)
        note_result(agent, result, streamed=False, session=session)
        return JSONResponse(_completion(completion_id, chat.model, result))

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            *routes,
            *console_routes(runtime, telemetry),
        ]
    )
    app.state.runtime = runtime
    return app


def _agent(runtime: Runtime, name: str) -> Agent:
    try:
        return runtime.agent(name)
    except UnknownAgentError as exc:
        raise api_error(exc) from None


async def _unless_disconnected(request: Request, turn: AgentThread) -> RunResult | None:
    """The turn's result, or None when the client hung up first (the turn is then stopped:
    a generation nobody will read costs the other callers their cores)."""
    result = asyncio.ensure_future(turn.result())
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({result, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if result.done():
        return result.result()
    turn.stop()
    result.cancel()
    return None


async def _disconnect(request: Request) -> None:
    """Return when the client closes its connection (the body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@contextmanager
def _as_api_errors() -> Iterator[None]:
    """Errors of a turn as HTTP answers, by type (gateway/errors.py); bad input the agent
    meets without naming a field is the messages' fault."""
    try:
        yield
    except MilliwattError as exc:
        error = api_error(exc)
        if isinstance(exc, InvalidRequestError) and error.param is None:
            error.param = "messages"
        raise error from None
    except ValueError as exc:
        raise ApiError(400, str(exc), param="messages", code="invalid_value") from None


def _completion(completion_id: str, model: str, result: RunResult) -> dict[str, Any]:
    usage = result.ledger
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer},
                "finish_reason": "stop" if result.stop == "answer" else "length",
            }
        ],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.tokens,
        },
        "milliwatt": result.to_dict(),
    }


def _settle(request: Request, result: RunResult) -> None:
    """Count the answer's tokens and joules against its key's and tenant's budgets."""
    quota = request.scope.get("state", {}).get("quota")
    if quota is not None:
        principal = principal_of(request.scope["state"])
        try:
            quota.settle(principal, result.ledger.tokens, result.ledger.joules_est)
        except LimiterUnavailable:  # the answer is given; its cost goes uncounted, not lost
            logging.getLogger(__name__).exception("could not count a request's cost")


def _revoked(request: Request) -> str | None:
    """Why the request's key may no longer go on (revoked or expired meanwhile), or None."""
    state = request.scope.get("state", {})
    access = state.get("access")
    return access.still_valid(principal_of(state).key_id) if access is not None else None


async def _sse(
    completion_id: str,
    chat: ChatRequest,
    first: RunEvent | None,
    turn: AgentThread,
    request: Request,
    agent: Agent,
    session: str | None,
) -> AsyncIterator[str]:
    """One chunk per generated piece of text. A tool call, once made, is a chunk with an
    empty delta and a `milliwatt.tool_call` field (OpenAI clients ignore it). Chunks whose
    events are already waiting go out in one write (a tool's answer is one write, not five).
    When the client goes, starlette cancels this generator at its `await`, and the turn is
    stopped."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chat.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    pending = [chunk({"role": "assistant", "content": ""})]
    event = first
    checked = time.monotonic()
    try:
        while event is not None:
            if time.monotonic() - checked >= KEY_RECHECK_SECONDS:
                checked = time.monotonic()
                reason = _revoked(request)
                if reason is not None:  # the turn is stopped unstored: nothing half-written
                    error = {"message": reason, "type": "invalid_request_error",
                             "code": "revoked_api_key"}  # fmt: skip
                    pending.append(f"data: {json.dumps({'error': error})}\n\n")
                    break
            if isinstance(event, TextDelta):
                pending.append(chunk({"content": event.text}))
            elif isinstance(event, ToolCalled):
                call = {"name": event.name, "arguments": event.arguments}
                tool_call = call | {"result": event.result, "ok": event.ok}
                pending.append(chunk({}, milliwatt={"tool_call": tool_call}))
            elif isinstance(event, RunResult):
                note_result(agent, event, streamed=True, session=session)
                finish = "stop" if event.stop == "answer" else "length"
                usage = {
                    "prompt_tokens": event.ledger.prompt_tokens,
                    "completion_tokens": event.ledger.completion_tokens,
                    "total_tokens": event.ledger.tokens,
                }
                _settle(request, event)
                pending.append(chunk({}, finish, usage=usage, milliwatt=event.to_dict()))
                break
            if not turn.ready():  # the client gets what is here before the wait
                yield "".join(pending)
                pending = []
            event = await turn.next()
    except (ModelError, ValueError) as exc:
        # headers are gone: report in-band, as OpenAI does; the turn was not stored
        error = {"message": f"the model backend failed: {exc}", "type": "server_error"}
        pending.append(f"data: {json.dumps({'error': error})}\n\n")
    finally:
        turn.stop()
    yield "".join(pending) + "data: [DONE]\n\n"
