"""Hosts: one strict normalisation (percent-decoding, IDNA/UTS 46, IPv4 forms) used everywhere.

The guard decides on the same canonical host it then connects to, sends as Host and as TLS SNI,
so a spelling that one parser reads differently from another never reaches the network.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Literal

import idna

from .addresses import IPAddress, ends_in_number, parse_ipv4
from .errors import InvalidURL

_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_LDH = re.compile(r"[a-z0-9_-]+")
# WHATWG forbidden domain code points, plus what UTS 46 may leave behind
_FORBIDDEN = set("\x00\t\n\r #%/:<>?@[\\]^|\x7f")
_IPV6_CHARS = set("0123456789abcdefABCDEF:.")


@dataclass(frozen=True)
class Host:
    """A canonical host: `text` is ASCII (punycode for names, no brackets for IPv6)."""

    kind: Literal["ipv4", "ipv6", "name"]
    text: str
    original: str
    address: IPAddress | None = None

    @property
    def for_url(self) -> str:
        return f"[{self.text}]" if self.kind == "ipv6" else self.text

    @property
    def rewritten(self) -> bool:
        """True when the input spelled this host differently (worth saying in a reason)."""
        return self.original.lower().strip("[]").rstrip(".") != self.text


def parse_host(raw: str) -> Host:
    """Normalise a URL host (without port); InvalidURL names what was wrong."""
    if not raw:
        raise InvalidURL("URL has an empty host")
    if raw.startswith("["):
        return _parse_ipv6_literal(raw)
    decoded = _percent_decode(raw)
    try:
        mapped = idna.uts46_remap(decoded, std3_rules=False, transitional=False)
    except idna.IDNAError as exc:
        raise InvalidURL(f"host {raw!r} is not a valid international name: {exc}") from None
    bad = sorted({c for c in mapped if c in _FORBIDDEN or ord(c) < 0x20})
    if bad:
        raise InvalidURL(f"host {raw!r} contains forbidden character(s) {''.join(bad)!r}")
    if ends_in_number(mapped):
        try:
            address = parse_ipv4(mapped)
        except ValueError as exc:
            raise InvalidURL(
                f"host {raw!r} ends in a number but is no IPv4 address: {exc}"
            ) from None
        return Host("ipv4", str(address), raw, address)
    return Host("name", _to_ascii(mapped, raw), raw)


def _parse_ipv6_literal(raw: str) -> Host:
    if not raw.endswith("]"):
        raise InvalidURL(f"host {raw!r} opens an IPv6 bracket but does not close it")
    inner = raw[1:-1]
    if "%" in inner:
        raise InvalidURL(f"host {raw!r} has an IPv6 zone identifier; zones are refused")
    if not inner or not set(inner) <= _IPV6_CHARS:
        raise InvalidURL(f"host {raw!r} is not an IPv6 address")
    try:
        address = IPv6Address(inner)
    except ValueError as exc:
        raise InvalidURL(f"host {raw!r} is not an IPv6 address: {exc}") from None
    return Host("ipv6", str(address), raw, address)


def _percent_decode(raw: str) -> str:
    if "%" not in raw:
        return raw
    if raw.count("%") != len(_PERCENT.findall(raw)):
        raise InvalidURL(f"host {raw!r} has a '%' that is not followed by two hex digits")
    data = bytearray()
    position = 0
    for match in _PERCENT.finditer(raw):
        data += raw[position : match.start()].encode("utf-8")
        data.append(int(match.group(1), 16))
        position = match.end()
    data += raw[position:].encode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidURL(f"host {raw!r} percent-decodes to bytes that are not UTF-8") from None


def _to_ascii(mapped: str, raw: str) -> str:
    """Labels to ASCII; one trailing dot (the DNS root) is dropped, empty labels refused."""
    name = mapped[:-1] if mapped.endswith(".") else mapped
    labels = name.split(".")
    if not name or "" in labels:
        raise InvalidURL(f"host {raw!r} has an empty label")
    ascii_labels: list[str] = []
    for label in labels:
        if label.isascii():
            if not _LDH.fullmatch(label):
                raise InvalidURL(f"host {raw!r} has label {label!r} with characters DNS names lack")
            if label.startswith("xn--"):
                _check_a_label(label, raw)
            ascii_labels.append(label)
            continue
        try:
            ascii_labels.append(idna.alabel(label).decode("ascii"))
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidURL(f"host {raw!r} has an invalid international label: {exc}") from None
    text = ".".join(ascii_labels)
    if len(text) > 253 or any(len(label) > 63 for label in ascii_labels):
        raise InvalidURL(f"host {raw!r} is longer than DNS allows")
    return text


def _check_a_label(label: str, raw: str) -> None:
    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        raise InvalidURL(f"host {raw!r} has label {label!r}, which is not valid punycode") from None


def libc_reading(name: str) -> IPv4Address | None:
    """The address libc's inet_aton would see in a name, if any (a resolver differential)."""
    try:
        return IPv4Address(socket.inet_aton(name))
    except OSError:
        return None
