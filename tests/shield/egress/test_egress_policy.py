"""The policy: names, domain lists, ports, DNS answers; each refusal says why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from milliwatt.shield.egress import EgressBlocked, EgressGuard, EgressPolicy, StaticResolver

PUBLIC = "93.184.215.14"


def guard(
    policy: EgressPolicy | None = None, names: dict[str, list[str]] | None = None
) -> EgressGuard:
    return EgressGuard(policy or EgressPolicy(), StaticResolver(names or {}))


def refused(g: EgressGuard, url: str) -> str:
    with pytest.raises(EgressBlocked) as caught:
        g.check(url)
    return caught.value.reason


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://localhost/", "loopback by definition"),
        ("http://localhost./", "loopback by definition"),
        ("http://api.localhost/", "loopback by definition"),
        ("http://LOCALHOST:80/", "loopback by definition"),
        ("http://intranet/", "single-label name"),
        ("http://metadata/", "single-label name"),
        ("http://metadata.google.internal/", "under .internal"),
        ("http://localhost4.localdomain4/", "loopback alias"),
        ("http://ip6-loopback.example.org/", "loopback alias"),
        ("http://kubernetes.default.svc/", "under .svc"),
        ("https://metadata.packet.net/userdata", "cloud metadata service"),
        ("http://printer.local/", "under .local"),
        ("http://router.home.arpa/", "under .home.arpa"),
        ("http://10.0.0.1.nip.io/", "spells an internal address"),
        ("http://app-192-168-0-1.example.com/", "spells an internal address (192.168.0.1"),
        ("http://1.2.3.4.nip.io/", "denied by rule '.nip.io'"),
        ("http://sub.localtest.me/", "denied by rule '.localtest.me'"),
        ("gopher://example.com/", "scheme 'gopher' is not allowed"),
        ("ftp://example.com/", "scheme 'ftp' is not allowed"),
        ("http://example.com:25/", "port 25 is not allowed"),
    ],
)
def test_refused_before_any_lookup(url: str, why: str) -> None:
    assert why in refused(guard(), url)


def test_every_dns_answer_is_checked() -> None:
    g = guard(None, {"mixed.example.com": [PUBLIC, "10.0.0.9"], "ok.example.com": [PUBLIC]})
    assert "resolves to a refused address: 10.0.0.9 is private" in refused(
        g, "http://mixed.example.com/"
    )
    target = g.check("http://ok.example.com/")
    assert [str(a) for a in target.addresses] == [PUBLIC]


def test_answers_in_mapped_form_are_unwrapped_and_dialled_as_ipv4() -> None:
    g = guard(
        None, {"v6.example.com": ["::ffff:127.0.0.1"], "good.example.com": ["::ffff:93.184.215.14"]}
    )
    assert "embeds IPv4 127.0.0.1" in refused(g, "http://v6.example.com/")
    assert [str(a) for a in g.check("http://good.example.com/").addresses] == [PUBLIC]


def test_international_names_are_checked_in_their_ascii_form() -> None:
    policy = EgressPolicy(deny_domains=("bücher.example",))
    g = guard(policy, {"xn--bcher-kva.example": [PUBLIC]})
    assert "denied by rule 'xn--bcher-kva.example'" in refused(g, "http://BÜCHER.example/")


def test_allow_and_deny_domains_with_wildcards() -> None:
    policy = EgressPolicy(
        allow_domains=("example.com", "*.docs.example.org"),
        deny_domains=(".secret.example.com",),
    )
    g = guard(
        policy,
        {
            "example.com": [PUBLIC],
            "a.docs.example.org": [PUBLIC],
            "docs.example.org": [PUBLIC],
            "www.example.com": [PUBLIC],
            "x.secret.example.com": [PUBLIC],
        },
    )
    assert g.check("https://example.com/").url.host.text == "example.com"
    assert g.check("https://a.docs.example.org/").url.host.text == "a.docs.example.org"
    assert "not in this policy's allowed domains" in refused(g, "https://docs.example.org/")
    assert "not in this policy's allowed domains" in refused(g, "https://www.example.com/")
    assert "denied by rule '.secret.example.com'" in refused(g, "https://x.secret.example.com/")


def test_ports_can_be_listed_or_opened() -> None:
    g = guard(EgressPolicy(ports=(8443,)), {"example.com": [PUBLIC]})
    assert g.check("https://example.com:8443/").url.port == 8443
    assert "port 443 is not allowed (allowed: 8443)" in refused(g, "https://example.com/")
    assert guard(EgressPolicy(ports=None), {"example.com": [PUBLIC]}).check("http://example.com:2/")


def test_policy_may_narrow_schemes_to_https() -> None:
    g = guard(EgressPolicy(schemes=("https",)), {"example.com": [PUBLIC]})
    assert "scheme 'http' is not allowed (allowed: https)" in refused(g, "http://example.com/")


def test_unknown_names_are_refused_when_offline() -> None:
    assert "not resolved offline" in refused(guard(), "http://nowhere.example.net/")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"schemes": ("http", "ftp")}, "not supported"),
        ({"ports": (0,)}, "outside 1-65535"),
        ({"allow_networks": ("127.0.0.1/8",)}, "not a CIDR network"),
        ({"allow_networks": ("localhost",)}, "not a CIDR network"),
        ({"deny_domains": ("exa mple.com",)}, "is not a host name"),
        ({"max_bytes": 0}, "greater than 0"),
        ({"timeout": -1}, "greater than 0"),
        ({"max_redirects": 99}, "less than or equal to 30"),
        ({"allow_everything": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_policies_are_named(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EgressPolicy(**settings)  # type: ignore[arg-type]


def test_defaults_are_strict() -> None:
    policy = EgressPolicy()
    assert policy.schemes == ("http", "https")
    assert policy.allow_networks == ()
    assert ".nip.io" in policy.deny_domains
