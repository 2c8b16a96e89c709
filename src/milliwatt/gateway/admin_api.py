"""The admin API under /admin: the same actions as `milliwatt keys` / `audit export`.

The access middleware lets only operator keys (`--admin`) reach these paths; each action
that changes something, or exports the trail, also needs an enrolled operator's current
TOTP code in `X-Milliwatt-Operator` and `X-Milliwatt-Otp`. Errors keep OpenAI's shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from milliwatt.access.admin import Admin
from milliwatt.access.keys import parse_duration
from milliwatt.access.limits import Limits
from milliwatt.access.operators import OtpError
from milliwatt.access.policies import parse_policy
from milliwatt.config import PolicyConfig
from milliwatt.gateway.errors import api_error
from milliwatt.gateway.schemas import ApiError

OPERATOR_HEADER = "x-milliwatt-operator"
OTP_HEADER = "x-milliwatt-otp"


def admin_routes(admin: Admin, policies: Mapping[str, PolicyConfig]) -> list[BaseRoute]:
    """`policies`: each agent served and its configured policy (what a reset goes back to)."""

    def known_agent(request: Request) -> str:
        agent = str(request.path_params["agent"])
        if agent not in policies:
            raise ApiError(
                404, f"unknown agent: {agent!r} (agents: {', '.join(policies)})",
                code="agent_not_found",
            )  # fmt: skip
        return agent

    def policy_view(agent: str) -> dict[str, Any]:
        override = admin.policies.get(agent)
        effective = override or policies[agent]
        return {"agent": agent, "policy": effective.model_dump(mode="json"),
                "overridden": override is not None}  # fmt: skip

    def authorize(request: Request, action: str) -> str:
        operator = request.headers.get(OPERATOR_HEADER)
        code = request.headers.get(OTP_HEADER)
        if not operator or not code:
            raise ApiError(
                401, f"{action} needs an operator's TOTP code: send {OPERATOR_HEADER} and "
                f"{OTP_HEADER}", code="mfa_required",
            )  # fmt: skip
        try:
            admin.authorize(operator, code, action, via="api")
        except OtpError as exc:
            raise api_error(exc) from None
        return operator

    async def list_keys(request: Request) -> Response:
        tenant = request.query_params.get("tenant")
        return JSONResponse({"data": [k.to_dict() for k in admin.keys.list(tenant)]})

    async def create_key(request: Request) -> Response:
        try:
            body = _json_object(await request.body())
            operator = authorize(request, "key.create")
            limits = Limits.from_dict(body.get("limits") or {})
            expires = body.get("expires")
            agents = body.get("agents") or ["*"]
            if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
                raise ValueError("agents: a list of agent names")
            key, info = admin.keys.create(
                str(body.get("tenant", "")), agents=tuple(agents), admin=bool(body.get("admin")),
                limits=limits, expires_in=parse_duration(expires) if expires else None,
                label=str(body.get("label", "")),
            )  # fmt: skip
            admin.trail.record(
                "key.created",
                {"operator": operator, "via": "api", "key_id": info.id, "tenant": info.tenant,
                 "agents": list(info.agents), "admin": info.admin},
            )  # fmt: skip
        except ApiError as exc:
            return exc.response()
        except (ValueError, TypeError) as exc:
            return ApiError(400, str(exc), code="invalid_value").response()
        return JSONResponse(info.to_dict() | {"key": key}, status_code=201)

    async def revoke_key(request: Request) -> Response:
        try:
            operator = authorize(request, "key.revoke")
            info = admin.keys.revoke(request.path_params["key_id"])
            fields = {"operator": operator, "via": "api", "key_id": info.id}
            admin.trail.record("key.revoked", fields | {"tenant": info.tenant})
        except ApiError as exc:
            return exc.response()
        except ValueError as exc:
            return ApiError(404, str(exc), code="not_found").response()
        return JSONResponse(info.to_dict())

    async def tenant_limits(request: Request) -> Response:
        try:
            body = _json_object(await request.body())
            operator = authorize(request, "tenant.limits")
            tenant = request.path_params["tenant"]
            limits = Limits.from_dict(body.get("limits") or {})
            admin.keys.set_tenant_limits(tenant, limits)
            admin.trail.record(
                "admin.action",
                {"operator": operator, "via": "api", "action": "tenant.limits",
                 "tenant": tenant, "limits": limits.to_dict()},
            )  # fmt: skip
        except ApiError as exc:
            return exc.response()
        except (ValueError, TypeError) as exc:
            return ApiError(400, str(exc), code="invalid_value").response()
        return JSONResponse({"tenant": tenant, "limits": limits.to_dict()})

    async def export_audit(request: Request) -> Response:
        try:
            operator = authorize(request, "audit.export")
        except ApiError as exc:
            return exc.response()
        admin.trail.record(
            "admin.action", {"operator": operator, "via": "api", "action": "audit.export"}
        )
        return Response(admin.trail.export(), media_type="application/x-ndjson")

    async def show_policy(request: Request) -> Response:
        try:
            return JSONResponse(policy_view(known_agent(request)))
        except ApiError as exc:
            return exc.response()

    async def set_policy(request: Request) -> Response:
        try:
            agent = known_agent(request)
            body = _json_object(await request.body())
            policy = parse_policy(body)  # a bad policy is refused before a code is spent
            operator = authorize(request, "policy.set")
            admin.policies.set(agent, policy)
            admin.trail.record(
                "admin.action",
                {"operator": operator, "via": "api", "action": "policy.set", "agent": agent,
                 "policy": policy.model_dump(mode="json")},
            )  # fmt: skip
        except ApiError as exc:
            return exc.response()
        except ValueError as exc:
            return ApiError(400, str(exc), code="invalid_policy").response()
        return JSONResponse(policy_view(agent))

    async def reset_policy(request: Request) -> Response:
        try:
            agent = known_agent(request)
            operator = authorize(request, "policy.reset")
            removed = admin.policies.reset(agent)
            admin.trail.record(
                "admin.action",
                {"operator": operator, "via": "api", "action": "policy.reset", "agent": agent,
                 "removed": removed},
            )  # fmt: skip
        except ApiError as exc:
            return exc.response()
        return JSONResponse(policy_view(agent))

    return [
        Route("/admin/agents/{agent}/policy", show_policy, methods=["GET"]),
        Route("/admin/agents/{agent}/policy", set_policy, methods=["PUT"]),
        Route("/admin/agents/{agent}/policy", reset_policy, methods=["DELETE"]),
        Route("/admin/keys", list_keys, methods=["GET"]),
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
        Route("/admin/tenants/{tenant}/limits", tenant_limits, methods=["PUT"]),
        Route("/admin/audit", export_audit, methods=["GET"]),
    ]


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_json")
    return body
