"""The guarded HTTP client: the one way any part of milliwatt reaches the outside.

Per hop: check the URL (DNS once, every answer checked), pin the checked addresses, send,
and re-check any redirect target from scratch. The body is streamed and cut at max_bytes;
one deadline covers resolution, connection, redirects and reading.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from .errors import EgressBlocked, EgressError, EgressTimeout
from .policy import EgressGuard, EgressPolicy, Target
from .resolver import Resolver
from .transport import PinnedBackend, PinnedTransport
from .urls import ParsedURL, resolve_reference

USER_AGENT = "milliwatt/0.1 (egress-guarded)"
_REDIRECTS = {301, 302, 303, 307, 308}
# CONNECT and TRACE would turn the peer into a tunnel or a mirror; nothing here needs them
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


@dataclass(frozen=True)
class GuardedResponse:
    status: int
    headers: httpx.Headers
    url: str  # the final URL, after redirects
    content: bytes
    truncated: bool  # the body was longer than max_bytes and was cut there
    address: str | None  # the IP address the final response came from
    redirects: tuple[str, ...] = field(default=())  # URLs that redirected, in order
    encoding: str | None = None

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", "")).split(";", 1)[0].strip().lower()

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")


class GuardedClient:
    def __init__(
        self,
        policy: EgressPolicy | None = None,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.guard = EgressGuard(policy, resolver)
        self._verify = verify
        self._backend = PinnedBackend()
        self._http: httpx.Client | None = None

    @property
    def policy(self) -> EgressPolicy:
        return self.guard.policy

    def _client(self) -> httpx.Client:
        # one pool for the client's life: kept-alive connections were all dialled to checked
        # addresses under this same (frozen) policy, so reusing them is safe
        if self._http is None:
            transport = PinnedTransport(self._backend, self._verify)
            self._http = httpx.Client(transport=transport, trust_env=False, follow_redirects=False)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> GuardedClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> GuardedResponse:
        return self.request("GET", url, headers=headers)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> GuardedResponse:
        """Send through the guard; raises EgressBlocked, EgressTimeout or EgressError."""
        deadline = time.monotonic() + self.policy.timeout
        method = method.upper()
        if method not in METHODS:
            raise EgressBlocked(f"method {method!r} is not allowed ({', '.join(sorted(METHODS))})")
        current = self.guard.parse(url)
        sent_headers = {
            "user-agent": USER_AGENT,
            **{k.lower(): v for k, v in (headers or {}).items()},
        }
        if "host" in sent_headers:
            # a hand-set Host would reach a different virtual host than the one checked
            raise EgressBlocked("the Host header comes from the URL; it may not be set by hand")
        chain: list[str] = []
        client = self._client()
        client.cookies.clear()  # cookies live for one request's redirect chain, no longer
        while True:
            target = self._check(current, chain, deadline)
            self._backend.pins[(current.host.text, current.port)] = target.addresses
            request = client.build_request(
                method,
                str(current),
                headers=sent_headers,
                content=content,
                timeout=_remaining(deadline, current),
            )
            response = client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECTS or location is None:
                    return self._finish(response, current, chain, deadline)
                chain.append(str(current))
                if len(chain) > self.policy.max_redirects:
                    raise EgressBlocked(
                        f"more than {self.policy.max_redirects} redirects (last from {current})"
                    )
                following = self._follow(current, location)
            finally:
                response.close()
            method, content = _redirected_method(response.status_code, method, content)
            if following.origin != current.origin:
                for name in _CREDENTIAL_HEADERS:
                    sent_headers.pop(name, None)
            current = following

    def _check(self, url: ParsedURL, chain: list[str], deadline: float) -> Target:
        try:
            return self.guard.check(url, timeout=_remaining(deadline, url))
        except EgressBlocked as exc:
            if not chain:
                raise
            raise EgressBlocked(
                f"redirect from {chain[-1]} to {url} refused: {exc.reason}"
            ) from None

    def _follow(self, current: ParsedURL, location: str) -> ParsedURL:
        try:
            return resolve_reference(current, location, self.policy.schemes)
        except EgressBlocked as exc:
            raise EgressBlocked(
                f"redirect from {current} to {location!r} refused: {exc.reason}"
            ) from None

    def _finish(
        self, response: httpx.Response, url: ParsedURL, chain: list[str], deadline: float
    ) -> GuardedResponse:
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        limit = self.policy.max_bytes
        body = bytearray()
        truncated = False
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    del body[limit:]
                    truncated = True
                    break
                if time.monotonic() > deadline:
                    raise EgressTimeout(f"{url} took longer than {self.policy.timeout:.1f}s")
        except httpx.DecodingError as exc:
            raise EgressError(f"{url} sent a body that does not decode: {exc}") from exc
        return GuardedResponse(
            status=response.status_code,
            headers=response.headers,
            url=str(url),
            content=bytes(body),
            truncated=truncated,
            address=str(peer[0]) if peer else None,
            redirects=tuple(chain),
            encoding=response.charset_encoding,
        )


def _remaining(deadline: float, url: ParsedURL) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise EgressTimeout(f"deadline passed before {url} could be fetched")
    return left


def _redirected_method(status: int, method: str, content: bytes | None) -> tuple[str, bytes | None]:
    """303 always becomes GET; 301/302 turn POST into GET, as browsers do; 307/308 keep both."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET", None
    return method, content
