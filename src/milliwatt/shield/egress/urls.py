"""URLs: parsed exactly once, strictly; whatever two parsers could read differently is refused.

Only the canonical form built here travels further (to the resolver, the socket, the Host header
and SNI), so the guard and the connection can never disagree about where a request goes.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin

from .errors import EgressBlocked, InvalidURL
from .hosts import Host, parse_host

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 8192

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_PATH_SAFE = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/")
_QUERY_SAFE = _PATH_SAFE | {"?"}
_HEX = frozenset(string.hexdigits)
# backslash, controls (Cc), spaces and separators (Zs, Zl, Zp) and lone surrogates (Cs)
_AMBIGUOUS = re.compile(
    "[\\\\\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ud800-\udfff]"
)


@dataclass(frozen=True)
class ParsedURL:
    scheme: str
    host: Host
    port: int
    target: str  # path and query, percent-encoded, always starting with "/"
    original: str

    @property
    def authority(self) -> str:
        if self.port == DEFAULT_PORTS.get(self.scheme):
            return self.host.for_url
        return f"{self.host.for_url}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host.text, self.port


def parse_url(
    text: str, schemes: Iterable[str] = ("http", "https"), max_length: int = MAX_URL_LENGTH
) -> ParsedURL:
    """The one URL parser of the guard; raises InvalidURL or EgressBlocked (scheme) with why."""
    if not isinstance(text, str):
        raise InvalidURL(f"URL must be text, not {type(text).__name__}")
    original = text
    text = text.strip(" \t\r\n")
    if not text:
        raise InvalidURL("URL is empty")
    if len(text) > max_length:
        raise InvalidURL(f"URL is longer than {max_length} characters")
    _refuse_ambiguous_characters(text)
    scheme, _, rest = text.partition(":")
    if not _ or not _SCHEME.fullmatch(scheme):
        raise InvalidURL(f"URL {text!r} does not start with a scheme such as https://")
    scheme = scheme.lower()
    allowed = sorted(schemes)
    if scheme not in allowed:
        raise EgressBlocked(f"scheme {scheme!r} is not allowed (allowed: {', '.join(allowed)})")
    if not rest.startswith("//") or rest.startswith("///"):
        raise InvalidURL(f"URL {text!r} must have exactly two slashes after '{scheme}:'")
    rest = rest[2:]
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, remainder = rest[:cut], rest[cut:]
    if "@" in authority:
        raise InvalidURL(
            f"URL {text!r} carries credentials (user@host); refused, they can hide the real host"
        )
    host_text, port_text = _split_authority(authority, text)
    port = _parse_port(port_text, scheme, text)
    host = parse_host(host_text)
    return ParsedURL(scheme, host, port, _encode_target(remainder, text), original)


def resolve_reference(base: ParsedURL, location: str, schemes: Iterable[str]) -> ParsedURL:
    """A redirect's Location, made absolute against the current URL, then parsed strictly."""
    return parse_url(urljoin(str(base), location.strip(" \t")), schemes)


def _refuse_ambiguous_characters(text: str) -> None:
    found = _AMBIGUOUS.search(text)
    if found is None:
        return
    if found.group() == "\\":
        raise InvalidURL(f"URL {text!r} has a backslash; parsers disagree on it (slash or not)")
    raise InvalidURL(f"URL {text!r} contains whitespace or a control character {found.group()!r}")


def _split_authority(authority: str, text: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidURL(f"URL {text!r} opens an IPv6 bracket but does not close it")
        host, after = authority[: end + 1], authority[end + 1 :]
        if after and not after.startswith(":"):
            raise InvalidURL(f"URL {text!r} has text after the IPv6 address: {after!r}")
        return host, after[1:] if after else None
    if authority.count(":") > 1:
        raise InvalidURL(f"URL {text!r} has more than one ':' in its host; IPv6 needs brackets")
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def _parse_port(port_text: str | None, scheme: str, text: str) -> int:
    if not port_text:
        return DEFAULT_PORTS[scheme]
    if not all(c in string.digits for c in port_text):
        raise InvalidURL(f"URL {text!r} has port {port_text!r}, which is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise InvalidURL(f"URL {text!r} has port {port}, outside 1-65535")
    return port


def _encode_target(remainder: str, text: str) -> str:
    """Path and query percent-encoded as UTF-8; the fragment is never sent, so it is dropped."""
    remainder, _, fragment = remainder.partition("#")
    if "@" in fragment:
        raise InvalidURL(f"URL {text!r} has '@' after '#'; some parsers read a host there")
    path, question, query = remainder.partition("?")
    encoded = _percent_encode(path or "/", _PATH_SAFE)
    if question:
        encoded += "?" + _percent_encode(query, _QUERY_SAFE)
    return encoded if encoded.startswith("/") else "/" + encoded


def _percent_encode(text: str, safe: frozenset[str]) -> str:
    out: list[str] = []
    for index, char in enumerate(text):
        if char == "%" and set(text[index + 1 : index + 3]) <= _HEX and index + 2 < len(text):
            out.append(char)  # an existing escape stays exactly as written
        elif char in safe:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)
