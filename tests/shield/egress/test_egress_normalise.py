"""Normalisation: every spelling of an address or name reaches one canonical host."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from milliwatt.shield.egress import InvalidURL, classify, parse_host, parse_ipv4, parse_url
from milliwatt.shield.egress.addresses import connect_address, ends_in_number, refusal


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7F.0.0.0x1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("0251.00376.000251.0000376", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("127.0.0.1.", "127.0.0.1"),
        ("4294967295", "255.255.255.255"),
    ],
)
def test_ipv4_forms(text: str, address: str) -> None:
    assert parse_ipv4(text) == IPv4Address(address)


@pytest.mark.parametrize(
    "text",
    [
        "425.510.425.510",  # a part over 255: some parsers wrap it around
        "7147006462",  # over 32 bits
        "0x41414141A9FEA9FE",
        "1.2.3.4.5",
        "09.0.0.1",  # 9 is no octal digit
        "1_0.0.0.1",  # int() would accept the underscore
        "\u0661\u0662\u0667.0.0.1",  # Arabic-Indic digits
        "127..1",
    ],
)
def test_ipv4_forms_that_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ipv4(text)


@pytest.mark.parametrize(
    ("host", "expected"),
    [("example.com", False), ("1.com", False), ("a.0x1", True), ("a.09", True), ("x.1.", True)],
)
def test_ends_in_number(host: str, expected: bool) -> None:
    assert ends_in_number(host) is expected


@pytest.mark.parametrize(
    ("raw", "kind", "text"),
    [
        ("①②⑦.⓪.⓪.①", "ipv4", "127.0.0.1"),  # enclosed digits
        ("１２７．０．０．１", "ipv4", "127.0.0.1"),  # fullwidth digits and dots
        ("127%2e0%2e0%2e1", "ipv4", "127.0.0.1"),  # percent-encoded dots
        ("0x7f%2E1", "ipv4", "127.0.0.1"),
        ("ⓔⓧⓐⓜⓟⓛⓔ.ⓒⓞⓜ", "name", "example.com"),
        ("EXAMPLE.com.", "name", "example.com"),  # the root dot is dropped
        ("exa\u00admple.com", "name", "example.com"),  # soft hyphen is ignored by UTS 46
        ("bücher.de", "name", "xn--bcher-kva.de"),
        ("localhost。", "name", "localhost"),  # ideographic full stop
        ("[0:0:0:0:0:ffff:7f00:1]", "ipv6", "::ffff:7f00:1"),
        ("[::FFFF:127.0.0.1]", "ipv6", "::ffff:7f00:1"),
    ],
)
def test_hosts_normalise(raw: str, kind: str, text: str) -> None:
    host = parse_host(raw)
    assert (host.kind, host.text) == (kind, text)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("[fe80::1%25eth0]", "zone identifier"),
        ("[127.0.0.1]", "not an IPv6 address"),
        ("[::1", "does not close"),
        ("a..b", "empty label"),
        ("ex ample.com", "forbidden"),
        ("exa%mple.com", "two hex digits"),
        ("%ff.com", "not UTF-8"),
        ("xn--zz.com", "not valid punycode"),
        ("ex!ample.com", "characters DNS names lack"),
        ("o177.0.0.1", "ends in a number"),
        ("1.2.3.256", "ends in a number"),
        ("a" * 64 + ".com", "longer than DNS allows"),
    ],
)
def test_hosts_refused(raw: str, why: str) -> None:
    with pytest.raises(InvalidURL, match=why):
        parse_host(raw)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:0080/", "http://example.com/"),
        ("http://example.com:8080?q", "http://example.com:8080/?q"),
        ("http://example.com/a b".replace(" ", "%20"), "http://example.com/a%20b"),
        ("http://example.com/ä?x=ü#frag", "http://example.com/%C3%A4?x=%C3%BC"),
        ("http://example.com/%2561dmin", "http://example.com/%2561dmin"),
        ("http://example.com/100%", "http://example.com/100%25"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("  https://example.com/  ", "https://example.com/"),
    ],
)
def test_urls_canonicalise(url: str, canonical: str) -> None:
    assert str(parse_url(url)) == canonical


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.1.1.1:80\\@127.2.2.2:80/", "backslash"),
        ("http://1.1.1.1 &@2.2.2.2# @3.3.3.3/", "whitespace"),
        ("http://example.com\t.evil.com/", "whitespace"),
        ("http://user:pass@example.com/", "credentials"),
        ("http://example.com@evil.com/", "credentials"),
        ("http://example.com:80:80/", "more than one ':'"),
        ("http://::1/", "more than one ':'"),
        ("http://example.com:8o/", "not a number"),
        ("http://example.com:65536/", "outside 1-65535"),
        ("http:example.com", "exactly two slashes"),
        ("http:///example.com", "exactly two slashes"),
        ("example.com/path", "does not start with a scheme"),
        ("0://evil.com:80;http://google.com:80/", "does not start with a scheme"),
        ("http://[::1]x/", "text after the IPv6 address"),
        ("http://evil.com#@127.0.0.1/", "'@' after '#'"),
        ("http:///", "exactly two slashes"),
        ("http://", "empty host"),
        ("", "empty"),
    ],
)
def test_urls_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidURL, match=why):
        parse_url(url)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("::ffff:127.0.0.1", ["embeds IPv4 127.0.0.1", "IPv4-mapped", "loopback"]),
        ("::ffff:0:a00:1", ["embeds IPv4 10.0.0.1", "IPv4-translated", "private"]),
        ("::7f00:1", ["embeds IPv4 127.0.0.1", "IPv4-compatible", "loopback"]),
        ("64:ff9b::a9fe:a9fe", ["169.254.169.254", "NAT64", "metadata"]),
        ("64:ff9b::c0a8:1", ["192.168.0.1", "NAT64", "private"]),
        ("2002:7f00:1::", ["127.0.0.1", "6to4", "loopback"]),
        ("2002:a9fe:a9fe::1", ["169.254.169.254", "6to4", "metadata"]),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", ["127.0.0.1", "Teredo", "loopback"]),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", ["a Teredo address"]),  # client 8.8.8.8
        ("::7f00:1", ["loopback"]),
        ("::ffff:8.8.8.8", []),
        ("64:ff9b::808:808", []),
        ("2002:808:808::1", []),
        ("fd00:ec2::254", ["metadata"]),
        ("fc00::1", ["unique-local"]),
        ("fe80::1", ["link-local"]),
        ("fec0::1", ["site-local"]),
        ("ff02::1", ["multicast"]),
        ("2001:db8::1", ["documentation"]),
        ("::", ["unspecified"]),
        ("::1", ["loopback"]),
        ("100.64.0.1", ["carrier-grade NAT"]),
        ("100.100.100.200", ["metadata"]),
        ("192.0.0.192", ["metadata"]),
        ("168.63.129.16", ["metadata"]),
        ("255.255.255.255", ["broadcast"]),
        ("240.0.0.1", ["reserved"]),
        ("224.0.0.1", ["multicast"]),
        ("198.18.0.1", ["benchmarking"]),
        ("172.31.255.255", ["private"]),
        ("0.1.2.3", ["unspecified"]),
        ("8.8.8.8", []),
        ("2606:4700:4700::1111", []),
    ],
)
def test_classification_unwraps_embedded_ipv4(address: str, words: list[str]) -> None:
    found = classify(ip_address(address))
    if not words:
        assert found.public, found.describe()
        return
    assert not found.public
    for word in words:
        assert word in found.describe()


def test_python_is_global_misses_what_the_guard_catches() -> None:
    # the reason unwrapping exists: the standard library calls these global
    for text in ("64:ff9b::7f00:1", "2002:7f00:1::"):
        assert IPv6Address(text).is_global
        assert refusal(IPv6Address(text)) is not None


def test_allow_networks_open_ranges_but_not_metadata() -> None:
    from ipaddress import ip_network

    loopback = [ip_network("127.0.0.0/8")]
    assert refusal(IPv4Address("127.0.0.1"), loopback) is None
    assert refusal(IPv6Address("::ffff:127.0.0.1"), loopback) is None
    assert refusal(IPv4Address("10.0.0.1"), loopback) is not None
    link_local = [ip_network("169.254.0.0/16")]
    assert refusal(IPv4Address("169.254.1.1"), link_local) is None
    assert "never allowed" in (refusal(IPv4Address("169.254.169.254"), link_local) or "")


def test_mapped_addresses_are_dialled_as_ipv4() -> None:
    assert connect_address(IPv6Address("::ffff:8.8.8.8")) == IPv4Address("8.8.8.8")
    assert connect_address(IPv6Address("2606:4700::1")) == IPv6Address("2606:4700::1")
