"""Host names that point inside the network whatever public DNS says about them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import IPv4Address

from .addresses import IPNetwork, refusal
from .hosts import libc_reading

# Special-use (RFC 6761, 6762, 8375), ICANN's private-use .internal, and the TLDs that
# name-collision studies found leaking from private networks.
INTERNAL_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "localdomain",
    "localdomain4",
    "localdomain6",
    "svc",  # Kubernetes services: name.namespace.svc
    "home.arpa",
    "invalid",
    "onion",
    "lan",
    "intranet",
    "corp",
    "home",
    "private",
)

# Public names of metadata services (most use addresses, caught in addresses.py).
METADATA_NAMES = ("metadata.packet.net", "metadata.platformequinix.com")

# Loopback aliases that /etc/hosts files carry: localhost4, localhost6.localdomain6, ip6-loopback
_LOOPBACK_ALIAS = re.compile(r"(localhost|ip6-localhost|ipv6-localhost|ip6-loopback)[0-9]*")

# Public services whose whole purpose is answering any address the name spells, or
# alternating answers (DNS rebinding): no agent needs them, attackers love them.
WILDCARD_DNS_SERVICES = (
    ".nip.io",
    ".sslip.io",
    ".xip.io",
    ".localtest.me",
    ".lvh.me",
    ".vcap.me",
    ".localh.st",
    ".fuf.me",
    ".lacolhost.com",
    ".traefik.me",
    ".1u.ms",
    ".rbndr.us",
)

# Four decimal octets joined by dots or dashes anywhere in a name: 10.0.0.1.nip.io, 127-0-0-1.x
_EMBEDDED_IPV4 = re.compile(
    r"(?=(?<![0-9])([0-9]{1,3})[.-]([0-9]{1,3})[.-]([0-9]{1,3})[.-]([0-9]{1,3})(?![0-9]))"
)


def name_refusal(name: str, allow_networks: Iterable[IPNetwork] = ()) -> str | None:
    """Why a canonical ASCII name may not be contacted before any DNS lookup, or None."""
    if name == "localhost" or name.endswith(".localhost"):
        return f"name {name} is loopback by definition (RFC 6761 .localhost)"
    if _LOOPBACK_ALIAS.fullmatch(name.split(".", 1)[0]):
        return f"name {name} is a loopback alias from /etc/hosts"
    if name in METADATA_NAMES:
        return f"name {name} is a cloud metadata service"
    if "." not in name:
        return (
            f"single-label name {name!r} only resolves inside a local network "
            "(search domains, /etc/hosts)"
        )
    for suffix in INTERNAL_SUFFIXES:
        if name == suffix or name.endswith("." + suffix):
            return f"name {name} is under .{suffix}, a local or internal domain"
    networks = tuple(allow_networks)
    for match in _EMBEDDED_IPV4.finditer(name):
        octets = [int(group) for group in match.groups()]
        if max(octets) > 255:
            continue
        embedded = IPv4Address(".".join(map(str, octets)))
        why = refusal(embedded, networks)
        if why is not None:
            return (
                f"name {name} spells an internal address ({why}); wildcard DNS "
                "services resolve such names to it"
            )
    libc = libc_reading(name)
    if libc is not None and (why := refusal(libc, networks)) is not None:
        return f"name {name} reads as an internal address to the C library: {why}"
    return None


def domain_matches(rule: str, host: str) -> bool:
    """`example.com`: that host only; `*.example.com`: its subdomains; `.example.com`: both."""
    if rule.startswith("*."):
        return host.endswith(rule[1:])
    if rule.startswith("."):
        return host == rule[1:] or host.endswith(rule)
    return host == rule
