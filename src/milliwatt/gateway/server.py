"""Assemble what `milliwatt serve` runs: the runtime, the API and the shield in front."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from starlette.types import ASGIApp

from milliwatt.access.policies import PolicyOverrides
from milliwatt.agent.runtime import Runtime
from milliwatt.config import Settings, private_data_dir
from milliwatt.gateway.access_setup import build_access, check_binding
from milliwatt.gateway.app import create_app
from milliwatt.gateway.approvals import ApprovalQueue, approval_routes
from milliwatt.gateway.guard import RequestGuard
from milliwatt.gateway.schemas import check_chat_limits
from milliwatt.shield.http import build_waf_middleware
from milliwatt.telemetry.http import TelemetryMiddleware
from milliwatt.telemetry.setup import start_telemetry


def build_server_app(
    settings: Settings,
    log: Callable[[str], None] = print,
    *,
    host: str,
    port: int,
    no_auth: bool = False,
    runtime: Runtime | None = None,
) -> ASGIApp:
    """The whole server; `runtime` may be given ready (tests give one with a scripted model)."""
    check_binding(Path(settings.data_dir), host, no_auth, settings.storage.url)
    access = build_access(
        private_data_dir(Path(settings.data_dir)), settings.access,
        host=host, port=port, no_auth=no_auth, log=log, storage_url=settings.storage.url,
    )  # fmt: skip
    approvals = ApprovalQueue()  # guarded calls wait here for POST /v1/approvals/{id}
    # every policy decision against a tool call is a record of the audit trail
    runtime = runtime or Runtime(settings, approver=approvals, audit=access.trail.record)
    runtime.policy_override = PolicyOverrides(access.keys.path.parent).get  # operators' changes
    for name in runtime.agent_names:  # load models, parsers and tool vectors now: the first
        runtime.agent(name).warm()  # request is as fast as the next, and holds nobody up
    policies = {agent.name: agent.policy for agent in settings.agents}
    routes = [*access.admin_routes(policies), *approval_routes(approvals)]
    telemetry = start_telemetry(settings.telemetry, Path(settings.data_dir), runtime.model_status)
    app: ASGIApp = create_app(runtime, routes=routes, telemetry=telemetry)
    shield = settings.shield
    if shield.waf:
        middleware = build_waf_middleware(
            app,
            mode=shield.mode,
            paranoia=shield.paranoia,
            inbound_threshold=shield.inbound_threshold,
            outbound_threshold=shield.outbound_threshold,
            crs_dir=shield.crs_dir,
            rules=shield.rules,
            audit_log=shield.audit_log or Path(settings.data_dir) / "audit.jsonl",
            arguments_limit=shield.arguments_limit,
            on_block=access.trail.record,
        )
        log(f"milliwatt: WAF ({shield.mode}, paranoia {shield.paranoia}): {middleware.waf.source}")
        app = middleware
    else:
        log("milliwatt: WAF disabled by configuration (shield.waf = false)")
    # limits before the WAF reads a byte: its work grows with the body and each value's length
    limits = settings.server
    checks = {"/v1/chat/completions": partial(check_chat_limits, limits=limits)}
    # who may call, and how often, before the WAF spends its work on a request
    app = access.wrap(app, no_auth=no_auth)
    app = RequestGuard(app, limits, host=host, body_checks=checks)
    if telemetry is not None:  # outermost: what the guard and the WAF refuse is counted too
        app = TelemetryMiddleware(app, telemetry)
    log(
        f"milliwatt: agents {', '.join(runtime.agent_names)}; data in {settings.data_dir}; "
        f"http://{host}:{port}/v1"
        + (f"; chat http://{host}:{port}/, console /console" if settings.telemetry.console else "")
    )
    return app
