"""Name resolution, done once per hop and injectable (tests and `--resolve` stand in for DNS)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Mapping
from ipaddress import ip_address
from typing import Protocol

from .addresses import IPAddress
from .errors import EgressBlocked, EgressTimeout, InvalidURL
from .hosts import parse_host

# one getaddrinfo() answer: family, type, proto, canonical name, socket address
_AddrInfo = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
]


class Resolver(Protocol):
    def resolve(self, name: str, timeout: float) -> list[IPAddress]:
        """Every address of `name` (canonical ASCII); raise EgressBlocked when there is none."""
        ...


class SystemResolver:
    """getaddrinfo on the absolute name: the trailing dot keeps resolv.conf search domains
    (Kubernetes' ndots:5 and the like) from turning a public-looking name into an internal one."""

    def resolve(self, name: str, timeout: float) -> list[IPAddress]:
        answers: list[_AddrInfo] = []
        failures: list[OSError] = []
        done = threading.Event()

        def lookup() -> None:
            try:
                answers.extend(socket.getaddrinfo(name + ".", None, type=socket.SOCK_STREAM))
            except OSError as exc:
                failures.append(exc)
            finally:
                done.set()

        # getaddrinfo cannot be cancelled; a daemon thread lets the deadline hold regardless
        threading.Thread(target=lookup, name=f"resolve {name}", daemon=True).start()
        if not done.wait(timeout):
            raise EgressTimeout(f"resolving {name} took longer than {timeout:.1f}s")
        if failures:
            raise EgressBlocked(f"name {name} does not resolve: {failures[0]}")
        found: list[IPAddress] = []
        for family, _type, _proto, _canon, sockaddr in answers:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
        if not found:
            raise EgressBlocked(f"name {name} has no IPv4 or IPv6 address")
        return found


class StaticResolver:
    """Fixed answers, as curl's --resolve; other names go to `fallback`, or are refused."""

    def __init__(
        self,
        table: Mapping[str, Iterable[IPAddress | str]],
        fallback: Resolver | None = None,
    ) -> None:
        self._table: dict[str, list[IPAddress]] = {}
        for name, addresses in table.items():
            key = parse_host(name).text
            self._table.setdefault(key, []).extend(_addresses(addresses, name))
        self._fallback = fallback

    def resolve(self, name: str, timeout: float) -> list[IPAddress]:
        if name in self._table:
            return list(self._table[name])
        if self._fallback is not None:
            return self._fallback.resolve(name, timeout)
        raise EgressBlocked(f"name {name} is not resolved offline (give it with --resolve)")


def _addresses(values: Iterable[IPAddress | str], name: str) -> list[IPAddress]:
    found: list[IPAddress] = []
    for value in values:
        try:
            found.append(ip_address(str(value).strip()))
        except ValueError:
            raise InvalidURL(
                f"resolve entry for {name!r}: {value!r} is not an IP address"
            ) from None
    if not found:
        raise InvalidURL(f"resolve entry for {name!r} names no address")
    return found


def parse_resolve_entry(entry: str) -> tuple[str, list[IPAddress]]:
    """`HOST=IP[,IP...]`, as given to `--resolve`; ValueError names what is wrong."""
    name, equals, addresses = entry.partition("=")
    if not equals or not name.strip():
        raise ValueError(f"--resolve {entry!r} must look like HOST=IP (e.g. example.com=1.2.3.4)")
    try:
        values = _addresses([a for a in addresses.split(",") if a.strip()], name)
        return parse_host(name.strip()).text, values
    except InvalidURL as exc:
        raise ValueError(f"--resolve {entry!r}: {exc.reason}") from None
