"""The system resolver: absolute names, every answer kept, a deadline that holds.

getaddrinfo is replaced here only to play a DNS server (slow, or answering with a scoped
link-local address); the tests never send a query anywhere.
"""

from __future__ import annotations

import socket
import time
from ipaddress import IPv4Address, IPv6Address

import pytest

from milliwatt.shield.egress import EgressBlocked, EgressTimeout, StaticResolver, SystemResolver
from milliwatt.shield.egress.resolver import parse_resolve_entry


def _answer(*hosts: str):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    def getaddrinfo(name: str, *_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        asked.append(name)
        out: list[tuple[object, ...]] = []
        for host in hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            out.append((family, socket.SOCK_STREAM, 6, "", (host, 0)))
        return out

    return getaddrinfo, asked


def test_names_are_asked_as_absolute_and_answers_deduplicated(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fake, asked = _answer("93.184.215.14", "93.184.215.14", "fe80::1%eth0")
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    found = SystemResolver().resolve("example.com", timeout=2)
    assert asked == ["example.com."]  # the trailing dot: no search domains
    assert found == [IPv4Address("93.184.215.14"), IPv6Address("fe80::1")]


def test_a_slow_resolver_runs_into_the_deadline(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def slow(*_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        time.sleep(3)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    started = time.monotonic()
    with pytest.raises(EgressTimeout, match=r"resolving example\.com took longer"):
        SystemResolver().resolve("example.com", timeout=0.3)
    assert time.monotonic() - started < 2


def test_a_failed_lookup_blocks_with_the_reason(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def fail(*_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(EgressBlocked, match=r"does not resolve: .*not known"):
        SystemResolver().resolve("nowhere.example", timeout=1)


def test_static_answers_are_keyed_by_the_normalised_name() -> None:
    resolver = StaticResolver({"ＥＸＡＭＰＬＥ.com.": ["93.184.215.14"]})
    assert resolver.resolve("example.com", 1) == [IPv4Address("93.184.215.14")]
    with pytest.raises(EgressBlocked, match="not resolved offline"):
        resolver.resolve("other.example", 1)


@pytest.mark.parametrize(
    ("entry", "message"),
    [("example.com", "HOST=IP"), ("=1.2.3.4", "HOST=IP"), ("a.com=", "names no address")],
)
def test_bad_resolve_entries(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_resolve_entry(entry)
