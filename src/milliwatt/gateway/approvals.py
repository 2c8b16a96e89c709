"""Approval hooks: a person decides a guarded call the policy does not allow; silence is no.

`ApprovalQueue` backs the HTTP pair `GET /v1/approvals` (what waits) and
`POST /v1/approvals/{id}` (`{"approved": true|false}`), which a web console can drive;
the agent's turn waits on its own thread until a decision or the timeout.
`TerminalApprover` asks on the terminal for `milliwatt chat`.
"""

from __future__ import annotations

import json
import select
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from milliwatt.agent.policy import ApprovalRequest
from milliwatt.gateway.auth import principal_of, tenant_prefix
from milliwatt.gateway.schemas import ApiError


@dataclass
class _Waiting:
    request: ApprovalRequest
    decided: threading.Event = field(default_factory=threading.Event)
    approved: bool = False


class ApprovalQueue:
    """Pending approvals in memory; each is answered once, or denied when its time is up."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Waiting] = {}
        self._lock = threading.Lock()

    def approve(self, request: ApprovalRequest, timeout: float) -> bool:
        waiting = _Waiting(request)
        with self._lock:
            self._waiting[request.id] = waiting
        try:
            answered = waiting.decided.wait(timeout)
        finally:
            with self._lock:
                self._waiting.pop(request.id, None)
        return answered and waiting.approved

    def pending(self, caller_prefix: str = "") -> list[dict[str, Any]]:
        """What waits for callers whose (tenant-scoped) name starts with `caller_prefix`."""
        with self._lock:
            waiting = list(self._waiting.values())
        return [w.request.as_dict() for w in waiting if w.request.user.startswith(caller_prefix)]

    def decide(self, request_id: str, approved: bool, caller_prefix: str = "") -> bool:
        """Record a decision; False when nothing waits under that id for such a caller
        (decided, expired, or another tenant's)."""
        with self._lock:
            waiting = self._waiting.get(request_id)
            if waiting is None or not waiting.request.user.startswith(caller_prefix):
                return False
            del self._waiting[request_id]
        waiting.approved = approved
        waiting.decided.set()
        return True


class TerminalApprover:
    """Shows the call and its reasons on stderr and waits for y/yes on the terminal."""

    def __init__(self, stdin: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stderr = stderr or sys.stderr

    def approve(self, request: ApprovalRequest, timeout: float) -> bool:
        arguments = json.dumps(request.arguments, ensure_ascii=True, default=str)
        lines = [
            f"\n[policy] {request.tool} {arguments}",
            *(f"[policy]   {reason}" for reason in request.reasons),
            f"[policy] allow this call? [y/N] (no answer in {timeout:g} s: no) ",
        ]
        self.stderr.write("\n".join(lines))
        self.stderr.flush()
        if not self.stdin.isatty():
            self.stderr.write("no terminal to ask: denied\n")
            return False
        ready, _, _ = select.select([self.stdin], [], [], timeout)
        if not ready:
            self.stderr.write("\n[policy] no answer: denied\n")
            return False
        return self.stdin.readline().strip().lower() in {"y", "yes"}


def approval_routes(queue: ApprovalQueue) -> list[Route]:
    """GET /v1/approvals and POST /v1/approvals/{id} over `queue`."""

    def callers(request: Request) -> str:
        # a key sees and decides only its own tenant's calls; operators and the local
        # machine (no keys) see every one
        admin = principal_of(request.scope.get("state", {})).admin
        return "" if admin else tenant_prefix(request)

    async def pending(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": queue.pending(callers(request))})

    async def decide(request: Request) -> Response:
        request_id = request.path_params["request_id"]
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return ApiError(
                400, f"the body is not valid JSON: {exc}", code="invalid_json"
            ).response()
        approved = body.get("approved") if isinstance(body, dict) else None
        if not isinstance(approved, bool):
            message = 'the body must be {"approved": true} or {"approved": false}'
            return ApiError(400, message, param="approved", code="invalid_value").response()
        if not queue.decide(request_id, approved, callers(request)):
            message = f"no approval {request_id!r} is waiting (decided already, or timed out)"
            return ApiError(404, message, code="approval_not_found").response()
        return JSONResponse({"id": request_id, "approved": approved})

    return [
        Route("/v1/approvals", pending),
        Route("/v1/approvals/{request_id}", decide, methods=["POST"]),
    ]
