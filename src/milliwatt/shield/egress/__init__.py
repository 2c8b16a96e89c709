"""The egress guard: every outbound request of every tool goes through `GuardedClient`.

from milliwatt.shield.egress import EgressPolicy, GuardedClient
page = GuardedClient(EgressPolicy(allow_domains=("example.org",))).get("https://example.org/")
"""

from .addresses import classify, parse_ipv4
from .client import GuardedClient, GuardedResponse
from .errors import EgressBlocked, EgressError, EgressTimeout, InvalidURL
from .hosts import Host, parse_host
from .policy import EgressGuard, EgressPolicy, Target
from .resolver import Resolver, StaticResolver, SystemResolver
from .urls import ParsedURL, parse_url

__all__ = [
    "EgressBlocked",
    "EgressError",
    "EgressGuard",
    "EgressPolicy",
    "EgressTimeout",
    "GuardedClient",
    "GuardedResponse",
    "Host",
    "InvalidURL",
    "ParsedURL",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
    "Target",
    "classify",
    "parse_host",
    "parse_ipv4",
    "parse_url",
]
