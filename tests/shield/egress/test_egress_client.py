"""The guarded client against real servers on loopback (127.0.0.0/8 allowed on purpose)."""

from __future__ import annotations

import socket
import ssl
from ipaddress import IPv4Address
from pathlib import Path
from urllib.parse import quote

import pytest
from loopback_servers import http_server, self_signed, tls_server_context

from milliwatt.shield.egress import (
    EgressBlocked,
    EgressError,
    EgressPolicy,
    EgressTimeout,
    GuardedClient,
    StaticResolver,
)
from milliwatt.shield.egress.addresses import IPAddress

LOOPBACK = EgressPolicy(allow_networks=("127.0.0.0/8",), ports=None)


class CountingResolver:
    """Answers from a table and counts lookups, to show a name is resolved once per hop."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def resolve(self, name: str, timeout: float) -> list[IPAddress]:
        self.calls.append(name)
        return [IPv4Address(a) for a in self.table[name]]


def test_fetches_from_the_checked_address_and_keeps_the_host_header() -> None:
    resolver = CountingResolver({"www.example.com": ["127.0.0.1"]})
    with http_server() as (port, seen):
        response = GuardedClient(LOOPBACK, resolver).get(f"http://WWW.Example.com:{port}/host")
    assert response.status == 200
    assert response.text == f"www.example.com:{port}"
    assert response.address == "127.0.0.1"
    assert seen.requests == [("/host", f"www.example.com:{port}")]
    assert resolver.calls == ["www.example.com"]


def test_loopback_is_refused_without_an_explicit_allow_network() -> None:
    with (
        http_server() as (port, seen),
        pytest.raises(EgressBlocked, match=r"127\.0\.0\.1 is loopback"),
    ):
        GuardedClient(EgressPolicy(ports=None)).get(f"http://127.0.0.1:{port}/")
    assert seen.requests == []


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/latest/",
        "http://0xA9FEA9FE/",
        "http://10.0.0.1/",
        "http://metadata.google.internal/",
        "file:///etc/passwd",
    ],
)
def test_redirect_to_a_blocked_target_is_refused(target: str) -> None:
    client = GuardedClient(LOOPBACK)
    with (
        http_server() as (port, seen),
        pytest.raises(EgressBlocked, match=r"redirect from .* refused"),
    ):
        client.get(f"http://127.0.0.1:{port}/redirect?to={quote(target, safe='')}")
    assert [path for path, _ in seen.requests] == [f"/redirect?to={quote(target, safe='')}"]


def test_redirect_to_a_name_resolving_inside_is_refused_after_a_new_lookup() -> None:
    resolver = CountingResolver({"a.example.com": ["127.0.0.1"], "b.example.com": ["10.1.2.3"]})
    with http_server() as (port, _seen):
        hop = quote(f"http://b.example.com:{port}/", safe="")
        with pytest.raises(EgressBlocked, match=r"b\.example\.com resolves to .*10\.1\.2\.3"):
            GuardedClient(LOOPBACK, resolver).get(f"http://a.example.com:{port}/redirect?to={hop}")
    assert resolver.calls == ["a.example.com", "b.example.com"]


def test_allowed_redirects_are_followed_and_recorded() -> None:
    with http_server() as (port, seen):
        start = f"http://127.0.0.1:{port}/redirect?status=307&to=%2Fhost"
        response = GuardedClient(LOOPBACK).get(start)
    assert response.status == 200
    assert response.url == f"http://127.0.0.1:{port}/host"
    assert response.redirects == (start,)
    assert [path for path, _ in seen.requests] == ["/redirect?status=307&to=%2Fhost", "/host"]


def test_redirect_loop_stops_at_the_hop_limit() -> None:
    policy = LOOPBACK.model_copy(update={"max_redirects": 3})
    with (
        http_server() as (port, seen),
        pytest.raises(EgressBlocked, match="more than 3 redirects"),
    ):
        GuardedClient(policy).get(f"http://127.0.0.1:{port}/loop")
    assert len(seen.requests) == 4


def test_body_is_cut_at_max_bytes() -> None:
    policy = LOOPBACK.model_copy(update={"max_bytes": 1000})
    with http_server() as (port, _seen):
        big = GuardedClient(policy).get(f"http://127.0.0.1:{port}/bytes?n=500000")
        small = GuardedClient(policy).get(f"http://127.0.0.1:{port}/bytes?n=1000")
    assert (len(big.content), big.truncated) == (1000, True)
    assert (len(small.content), small.truncated) == (1000, False)


def test_total_deadline_holds_against_a_slow_drip() -> None:
    policy = LOOPBACK.model_copy(update={"timeout": 1.0})
    with http_server() as (port, _seen), pytest.raises(EgressTimeout):
        GuardedClient(policy).get(f"http://127.0.0.1:{port}/drip?every=0.05")


def test_the_connection_goes_only_to_pinned_addresses() -> None:
    # the name answers with a closed port's address only; nothing else may be tried
    resolver = StaticResolver({"www.example.com": ["127.0.0.2"]})
    with http_server() as (port, seen), pytest.raises(EgressError, match="could not connect"):
        GuardedClient(LOOPBACK, resolver).get(f"http://www.example.com:{port}/")
    assert seen.requests == []


@pytest.fixture()
def tls_site(tmp_path: Path):  # type: ignore[no-untyped-def]
    cert, key = self_signed("www.example.com", tmp_path)
    sni: list[str | None] = []
    with http_server(tls_server_context(cert, key, sni)) as (port, seen):
        yield port, seen, sni, ssl.create_default_context(cafile=str(cert))


def test_https_keeps_sni_and_verifies_the_certificate_for_the_name(tls_site) -> None:  # type: ignore[no-untyped-def]
    port, seen, sni, trust = tls_site
    resolver = StaticResolver({"www.example.com": ["127.0.0.1"]})
    client = GuardedClient(LOOPBACK, resolver, verify=trust)
    response = client.get(f"https://www.example.com:{port}/host")
    assert response.text == f"www.example.com:{port}"
    assert response.address == "127.0.0.1"
    assert sni == ["www.example.com"]
    assert seen.requests == [("/host", f"www.example.com:{port}")]


def test_https_to_a_name_the_certificate_does_not_cover_fails(tls_site) -> None:  # type: ignore[no-untyped-def]
    port, seen, sni, trust = tls_site
    resolver = StaticResolver({"other.example.com": ["127.0.0.1"]})
    client = GuardedClient(LOOPBACK, resolver, verify=trust)
    with pytest.raises(EgressError):
        client.get(f"https://other.example.com:{port}/host")
    assert sni == ["other.example.com"]
    assert seen.requests == []


@pytest.mark.parametrize("method", ["CONNECT", "TRACE", "GET / HTTP/1.1\r\nX:"])
def test_only_ordinary_methods_are_sent(method: str) -> None:
    with pytest.raises(EgressBlocked, match="is not allowed"):
        GuardedClient(LOOPBACK).request(method, "http://127.0.0.1:9/")


def test_post_body_is_sent() -> None:
    with http_server() as (port, seen):
        response = GuardedClient(LOOPBACK).request(
            "post", f"http://127.0.0.1:{port}/echo", content=b"moss=green"
        )
    assert (response.status, response.content) == (200, b"POST moss=green")
    assert seen.requests == [("/echo", f"127.0.0.1:{port}")]


def test_a_hand_set_host_header_is_refused() -> None:
    with (
        http_server() as (port, seen),
        pytest.raises(EgressBlocked, match="Host header comes from the URL"),
    ):
        GuardedClient(LOOPBACK).get(f"http://127.0.0.1:{port}/", headers={"Host": "admin.local"})
    assert seen.requests == []


def test_connections_are_reused_across_requests_of_one_client() -> None:
    with http_server() as (port, seen), GuardedClient(LOOPBACK) as client:
        first = client.get(f"http://127.0.0.1:{port}/host")
        second = client.get(f"http://127.0.0.1:{port}/host")
    assert first.text == second.text == f"127.0.0.1:{port}"
    assert len(seen.requests) == 2
    assert len(set(seen.peers)) == 1  # one TCP connection served both


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_literal_and_ipv6_answers_over_loopback() -> None:
    policy = EgressPolicy(allow_networks=("::1/128",), ports=None)
    client = GuardedClient(policy, StaticResolver({"v6.example.com": ["::1"]}))
    with http_server(host="::1") as (port, seen):
        literal = client.get(f"http://[0:0::1]:{port}/host")
        named = client.get(f"http://v6.example.com:{port}/host")
    assert (literal.text, literal.address) == (f"[::1]:{port}", "::1")
    assert (named.text, named.address) == (f"v6.example.com:{port}", "::1")
    assert len(seen.requests) == 2
