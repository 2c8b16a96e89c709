"""The front door's HTTP messages: what of a request goes to a PoP, what of its answer comes
back, the front door's own errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from milliwatt.edge.health import Replica
from milliwatt.errors import InvalidRequestError

# headers of one connection, not of the message (RFC 9110 7.6.1), and those httpx sets itself
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
     "trailer", "transfer-encoding", "upgrade", "host", "content-length"}
)  # fmt: skip
POP_HEADER = "x-milliwatt-pop"
REPLICA_HEADER = "x-milliwatt-replica"
# a 429 with one of these codes is the caller's own limit: it follows the caller everywhere
CALLER_LIMITS = frozenset({"rate_limit_exceeded", "budget_exceeded", "invalid_otp"})


async def bounded_body(request: Request, limit: int) -> bytes:
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


def model_of(request: Request, body: bytes) -> str | None:
    """The requested model (agent) of a JSON body, for choosing a PoP that serves it."""
    if request.method != "POST" or not body.startswith(b"{"):
        return None
    try:
        model = json.loads(body).get("model")
    except (ValueError, AttributeError):
        return None  # the PoP will say what is wrong with it
    return model if isinstance(model, str) else None


def upstream_url(base: str, request: Request) -> httpx.URL:
    """The replica's base URL + the request's path and query exactly as the client sent
    them (percent-encoding kept: a decoded %2F would change which resource is meant)."""
    scope = request.scope
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = httpx.URL(base)
    path = url.raw_path.split(b"?")[0].rstrip(b"/") + raw
    return url.copy_with(raw_path=path + (b"?" + query if query else b""))


def forward_headers(request: Request) -> list[tuple[str, str]]:
    skip = HOP_BY_HOP | {"x-forwarded-for"}
    headers = [(k, v) for k, v in request.headers.items() if k not in skip]
    client = request.client.host if request.client else ""
    earlier = request.headers.get("x-forwarded-for")
    headers.append(("x-forwarded-for", f"{earlier}, {client}" if earlier else client))
    if "accept-encoding" not in request.headers:  # else httpx asks for gzip on its behalf
        headers.append(("accept-encoding", "identity"))
    return headers


def answer_headers(
    upstream: httpx.Response, replica: Replica, *, decoded: bool, show_replica: bool
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
    if show_replica:
        headers.append((REPLICA_HEADER.encode(), replica.url.encode("latin-1")))
    return headers


def is_refusal(answer: httpx.Response) -> bool:
    """A PoP's "not now" (try the next one) rather than its answer to this caller."""
    return answer.status_code == 503 or _error_code(answer) not in CALLER_LIMITS


def _error_code(response: httpx.Response) -> str | None:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def error(status: int, message: str, code: str, retry_after: int | None = None) -> Response:
    body: dict[str, Any] = {"error": {"message": message, "type": "frontdoor", "code": code}}
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)
