"""IP addresses: every textual IPv4 form a URL parser accepts, and which addresses are not public.

Python's `is_global` calls NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses global without
looking at the IPv4 address inside them, so embedded IPv4 is unwrapped here before any decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_RADIX_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}

# Never allowed, whatever allow_networks says: they hand out cloud credentials.
METADATA_ENDPOINTS: frozenset[IPAddress] = frozenset(
    {
        IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, DigitalOcean, OpenStack, Hetzner ...
        IPv4Address("169.254.170.2"),  # AWS ECS task credentials
        IPv4Address("169.254.170.23"),  # AWS EKS pod identity
        IPv4Address("100.100.100.200"),  # Alibaba Cloud
        IPv4Address("192.0.0.192"),  # Oracle Cloud
        IPv4Address("168.63.129.16"),  # Azure WireServer, a public-range address
        IPv6Address("fd00:ec2::254"),  # AWS IMDS over IPv6
        IPv6Address("fd00:ec2::23"),  # AWS EKS pod identity over IPv6
        IPv6Address("fd20:ce::254"),  # GCP metadata over IPv6
    }
)

_IPV4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), label)
    for net, label in (
        ("0.0.0.0/8", "unspecified ('this host')"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "carrier-grade NAT shared space"),
        ("169.254.0.0/16", "link-local"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("198.18.0.0/15", "benchmarking"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)

_IPV6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), label)
    for net, label in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "ORCHID"),
        ("2001:20::/28", "ORCHIDv2"),
        ("5f00::/16", "SRv6 segment identifiers"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)

_GLOBAL_UNICAST = IPv6Network("2000::/3")
_MAPPED = IPv6Network("::ffff:0:0/96")
_TRANSLATED = IPv6Network("::ffff:0:0:0/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_COMPATIBLE = IPv6Network("::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")
# These wrappers have no legitimate use for a web request even around a public address.
_DEAD_WRAPPERS = {"IPv4-compatible", "IPv4-translated", "Teredo"}


def _ipv4_number(part: str) -> int | None:
    """One dot-separated part, as URL parsers read it: 0x.. is hex, a leading 0 is octal."""
    if not part:
        return None
    radix = 10
    if len(part) >= 2 and part[:2] in ("0x", "0X"):
        radix, part = 16, part[2:]
    elif len(part) >= 2 and part[0] == "0":
        radix, part = 8, part[1:]
    if not part:
        return 0
    # int() alone would also take "1_0" and non-ASCII digits
    if any(c not in _RADIX_DIGITS[radix] for c in part):
        return None
    return int(part, radix)


def ends_in_number(host: str) -> bool:
    """WHATWG rule: a host whose last label is numeric must be an IPv4 address, or nothing."""
    parts = host.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    if last and all(c in "0123456789" for c in last):
        return True
    return _ipv4_number(last) is not None


def parse_ipv4(host: str) -> IPv4Address:
    """Dotted, short (127.1), decimal, octal and hex forms; ValueError names what is wrong."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise ValueError(f"{host!r} has more than four numeric parts")
    numbers: list[int] = []
    for part in parts:
        number = _ipv4_number(part)
        if number is None:
            raise ValueError(f"part {part!r} of {host!r} is not a decimal, octal or hex number")
        numbers.append(number)
    if any(n > 255 for n in numbers[:-1]):
        raise ValueError(f"{host!r} has a part over 255 (some parsers wrap it around)")
    if numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} overflows 32 bits (some parsers wrap it around)")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number * 256 ** (3 - index)
    return IPv4Address(value)


@dataclass(frozen=True)
class Classification:
    """What an address is; `category` is None for a public address."""

    address: IPAddress
    category: str | None
    network: IPNetwork | None = None
    embedded: IPv4Address | None = None  # IPv4 found inside an IPv6 address
    wrapper: str | None = None  # how it was embedded: "IPv4-mapped", "NAT64" ...

    @property
    def public(self) -> bool:
        return self.category is None

    @property
    def metadata(self) -> bool:
        return self.address in METADATA_ENDPOINTS or self.embedded in METADATA_ENDPOINTS

    def describe(self) -> str:
        where = f" ({self.network})" if self.network is not None else ""
        if self.wrapper is not None and str(self.category).endswith(f"{self.wrapper} address"):
            return (
                f"{self.address} is {self.category} around {self.embedded}, a form refused outright"
            )
        if self.embedded is not None and self.wrapper not in (None, self.category):
            return (
                f"{self.address} embeds IPv4 {self.embedded} ({self.wrapper}), "
                f"which is {self.category}{where}"
            )
        return f"{self.address} is {self.category}{where}"


def _classify_ipv4(address: IPv4Address) -> tuple[str | None, IPv4Network | None]:
    if address in METADATA_ENDPOINTS:
        return "a cloud metadata endpoint", None
    for network, label in _IPV4_RANGES:
        if address in network:
            return label, network
    if not address.is_global:
        return "not globally reachable", None
    return None, None


def _embedded_ipv4(address: IPv6Address) -> tuple[str, list[IPv4Address]] | None:
    low32 = IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _MAPPED:
        return "IPv4-mapped", [low32]
    if address in _TRANSLATED:
        return "IPv4-translated", [low32]
    if address in _NAT64:
        return "NAT64", [low32]
    if address in _COMPATIBLE and int(address) > 1:
        return "IPv4-compatible", [low32]
    if address in _SIX_TO_FOUR and address.sixtofour is not None:
        return "6to4", [address.sixtofour]
    if address in _TEREDO and address.teredo is not None:
        server, client = address.teredo
        return "Teredo", [client, server]  # the client is stored XOR-ed, teredo undoes it
    return None


def classify(address: IPAddress) -> Classification:
    if isinstance(address, IPv4Address):
        category, network = _classify_ipv4(address)
        return Classification(address, category, network)
    if address in METADATA_ENDPOINTS:
        return Classification(address, "a cloud metadata endpoint")
    wrapped = _embedded_ipv4(address)
    if wrapped is not None:
        wrapper, inner = wrapped
        for ipv4 in inner:
            category, inner_network = _classify_ipv4(ipv4)
            if category is not None:
                return Classification(address, category, inner_network, ipv4, wrapper)
        if wrapper in _DEAD_WRAPPERS:
            article = "an" if wrapper.startswith("IPv4") else "a"
            return Classification(address, f"{article} {wrapper} address", None, inner[0], wrapper)
        return Classification(address, None, None, inner[0], wrapper)
    for v6_network, label in _IPV6_RANGES:
        if address in v6_network:
            return Classification(address, label, v6_network)
    if address not in _GLOBAL_UNICAST:
        return Classification(address, "outside global unicast", _GLOBAL_UNICAST)
    if not address.is_global:
        return Classification(address, "not globally reachable")
    return Classification(address, None)


def parse_networks(values: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """CIDR strings to networks; ValueError names the bad entry."""
    networks: list[IPNetwork] = []
    for value in values:
        if isinstance(value, IPv4Network | IPv6Network):
            networks.append(value)
            continue
        try:
            networks.append(ip_network(value.strip()))
        except ValueError as exc:
            raise ValueError(
                f"allow_networks entry {value!r} is not a CIDR network: {exc}"
            ) from None
    return tuple(networks)


def refusal(address: IPAddress, allow_networks: Iterable[IPNetwork] = ()) -> str | None:
    """Why this address may not be contacted, or None when it may."""
    found = classify(address)
    if found.metadata:
        return f"{found.describe()}; metadata endpoints are never allowed"
    if found.public:
        return None
    for network in allow_networks:
        if address in network or (found.embedded is not None and found.embedded in network):
            return None
    return found.describe()


def connect_address(address: IPAddress) -> IPAddress:
    """The address a socket should use: an IPv4-mapped address is dialled as plain IPv4."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
