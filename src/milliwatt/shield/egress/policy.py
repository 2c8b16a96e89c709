"""The egress policy (per agent) and the guard that applies it to one URL.

Order of checks: scheme and syntax, the host itself (address ranges, internal names, domain
lists), the port, then DNS, once, with every answer checked. The caller connects only to
the addresses returned here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator

from .addresses import IPAddress, IPNetwork, connect_address, parse_networks, refusal
from .errors import EgressBlocked, InvalidURL
from .hosts import Host, parse_host
from .names import WILDCARD_DNS_SERVICES, domain_matches, name_refusal
from .resolver import Resolver, SystemResolver
from .urls import ParsedURL, parse_url

SUPPORTED_SCHEMES = ("http", "https")
WEB_PORTS = (80, 443, 8080, 8443)


class EgressPolicy(BaseModel):
    """What one agent may reach. Loopback and private ranges are reachable only when listed
    in `allow_networks`, explicitly; cloud metadata endpoints never are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schemes: tuple[str, ...] = SUPPORTED_SCHEMES
    allow_domains: tuple[str, ...] = ()  # empty: any public host
    deny_domains: tuple[str, ...] = WILDCARD_DNS_SERVICES
    ports: tuple[int, ...] | None = WEB_PORTS  # None: any port
    allow_networks: tuple[
        IPv4Network | IPv6Network, ...
    ] = ()  # CIDRs, e.g. "127.0.0.0/8" for a test server
    max_bytes: PositiveInt = 5_000_000  # response body, after decompression
    timeout: PositiveFloat = 20.0  # seconds for the whole request, redirects included
    max_redirects: Annotated[int, Field(ge=0, le=30)] = 5

    @field_validator("schemes", mode="before")
    @classmethod
    def _known_schemes(cls, value: Sequence[str]) -> tuple[str, ...]:
        schemes = tuple(str(s).lower() for s in value)
        unknown = sorted(set(schemes) - set(SUPPORTED_SCHEMES))
        if unknown:
            raise ValueError(f"schemes {unknown} are not supported; the guard speaks http, https")
        return schemes

    @field_validator("allow_domains", "deny_domains", mode="before")
    @classmethod
    def _normalise_rules(cls, value: Sequence[str]) -> tuple[str, ...]:
        return tuple(_normalise_rule(str(rule)) for rule in value)

    @field_validator("ports", mode="before")
    @classmethod
    def _valid_ports(cls, value: Sequence[int] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        ports = tuple(int(p) for p in value)
        bad = [p for p in ports if not 1 <= p <= 65535]
        if bad:
            raise ValueError(f"ports {bad} are outside 1-65535")
        return ports

    @field_validator("allow_networks", mode="before")
    @classmethod
    def _networks(cls, value: Sequence[str | IPNetwork]) -> tuple[IPNetwork, ...]:
        return parse_networks(value)


def _normalise_rule(rule: str) -> str:
    prefix = "*." if rule.startswith("*.") else "." if rule.startswith(".") else ""
    try:
        return prefix + parse_host(rule[len(prefix) :].strip()).text
    except InvalidURL as exc:
        raise ValueError(f"domain rule {rule!r} is not a host name: {exc.reason}") from None


@dataclass(frozen=True)
class Target:
    """A URL that passed every check, and the only addresses it may be fetched from."""

    url: ParsedURL
    addresses: tuple[IPAddress, ...]


class EgressGuard:
    def __init__(self, policy: EgressPolicy | None = None, resolver: Resolver | None = None):
        self.policy = policy or EgressPolicy()
        self.resolver: Resolver = resolver or SystemResolver()

    def parse(self, url: str | ParsedURL) -> ParsedURL:
        if isinstance(url, ParsedURL):
            return url
        return parse_url(url, self.policy.schemes)

    def check(self, url: str | ParsedURL, timeout: float | None = None) -> Target:
        """Every check, DNS included; raises EgressBlocked with the reason."""
        parsed = self.parse(url)
        if parsed.scheme not in self.policy.schemes:
            raise EgressBlocked(f"scheme {parsed.scheme!r} is not allowed by this policy")
        self._check_host(parsed.host)
        self._check_port(parsed)
        if parsed.host.address is not None:
            return Target(parsed, (connect_address(parsed.host.address),))
        name = parsed.host.text
        answers = self.resolver.resolve(name, timeout or self.policy.timeout)
        if not answers:
            raise EgressBlocked(f"name {name} resolves to no address")
        for address in answers:
            why = refusal(address, self.policy.allow_networks)
            if why is not None:
                raise EgressBlocked(
                    f"name {name}{_spelling(parsed.host)} resolves to a refused address: {why}"
                )
        return Target(parsed, tuple(dict.fromkeys(connect_address(a) for a in answers)))

    def _check_host(self, host: Host) -> None:
        networks = self.policy.allow_networks
        if host.address is not None:
            why = refusal(host.address, networks)
            if why is not None:
                raise EgressBlocked(f"address {why}{_spelling(host)}")
        else:
            why = name_refusal(host.text, networks)
            if why is not None:
                raise EgressBlocked(why + _spelling(host))
        for rule in self.policy.deny_domains:
            if domain_matches(rule, host.text):
                raise EgressBlocked(f"host {host.text} is denied by rule {rule!r}")
        allow = self.policy.allow_domains
        if allow and not any(domain_matches(rule, host.text) for rule in allow):
            raise EgressBlocked(f"host {host.text} is not in this policy's allowed domains")

    def _check_port(self, parsed: ParsedURL) -> None:
        ports = self.policy.ports
        if ports is not None and parsed.port not in ports:
            allowed = ", ".join(map(str, ports))
            raise EgressBlocked(f"port {parsed.port} is not allowed (allowed: {allowed})")


def _spelling(host: Host) -> str:
    return f", from {host.original!r}" if host.rewritten else ""
