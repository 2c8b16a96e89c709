"""HTTP/1.x request parsing as strict as Apache httpd's (HttpProtocolOptions Strict).

Used where raw request bytes reach the WAF (the regression runner); anything it cannot
accept raises MalformedRequest, which the caller answers with 400.
"""

from __future__ import annotations

import re

from milliwatt.shield.waf.api import HttpRequest, MalformedRequest

_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SCHEME_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*:")
_AUTHORITY = re.compile(rb"[^/:\s]+:[0-9]+")
_HOST = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")
_MAX_HEADERS = 100


def parse_request(raw: bytes) -> HttpRequest:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
        if not sep:
            raise MalformedRequest("request head is not terminated by an empty line")
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    simple = lines[0].rstrip(b" ").split(b" ")
    if len(simple) == 2 and all(simple) and simple[1].startswith(b"/"):
        # HTTP/0.9 "simple request": a method and a path, nothing else is read
        method, uri, _ = _request_line(b" ".join(simple) + b" HTTP/1.0")
        return HttpRequest(method, uri, "HTTP/0.9", [], b"")
    method, uri, version = _request_line(lines[0])
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise MalformedRequest("obsolete header line folding")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise MalformedRequest(f"bad header line {line[:40]!r}")
        value = value.strip(b" \t")
        if any((c < 0x20 and c != 0x09) or c == 0x7F for c in value):
            raise MalformedRequest(f"control character in header {name.decode('latin-1')}")
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    if len(headers) > _MAX_HEADERS:
        raise MalformedRequest("too many header fields")
    hosts = [v for k, v in headers if k.lower() == "host"]
    if version == "HTTP/1.1" and not hosts:
        raise MalformedRequest("HTTP/1.1 request without Host")
    if any(h and not _HOST.fullmatch(h) for h in hosts):
        raise MalformedRequest("bad Host header")
    lengths = {v for k, v in headers if k.lower() == "content-length"}
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
    if chunked:
        body = _dechunk(body)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    elif lengths:
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            raise MalformedRequest("bad Content-Length")
        body = body[: int(next(iter(lengths)))]
    else:  # HTTP/1.1: no length and not chunked means no body
        body = b""
    return HttpRequest(method, uri, version, headers, body)


def _request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise MalformedRequest(f"bad request line {line[:80]!r}")
    method, uri, version = parts
    if not _METHOD.fullmatch(method):
        raise MalformedRequest("bad method")
    m = _VERSION.fullmatch(version)
    if m is None or m.group(1) == b"0":
        raise MalformedRequest(f"unsupported protocol {version[:20]!r}")
    if any(c <= 0x20 or c == 0x7F for c in uri) or b"#" in uri:
        raise MalformedRequest("bad character in request target")
    authority = method == b"CONNECT" and _AUTHORITY.fullmatch(uri) is not None
    if not (uri.startswith(b"/") or uri == b"*" or _SCHEME_FORM.match(uri) or authority):
        raise MalformedRequest("request target is neither a path nor an absolute URI")
    return method.decode("latin-1"), uri.decode("latin-1"), version.decode("latin-1")


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise MalformedRequest("bad chunked body")
        size_text = body[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise MalformedRequest("bad chunk size") from exc
        if size == 0:
            return bytes(out)
        out += body[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2
