from __future__ import annotations

import pytest

from milliwatt.shield.waf import MalformedRequest
from milliwatt.shield.waf.http1 import parse_request


def test_parses_a_request_with_body() -> None:
    r = parse_request(b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcdef")
    assert (r.method, r.uri, r.version, r.body) == ("POST", "/a?b=1", "HTTP/1.1", b"abc")
    assert r.headers == [("Host", "x"), ("Content-Length", "3")]


def test_chunked_body_is_joined() -> None:
    r = parse_request(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"  # noqa: E501
    )
    assert r.body == b"abcde"


def test_http09_simple_request() -> None:
    assert parse_request(b"GET /\r\n\r\n").version == "HTTP/0.9"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n",  # unterminated head
        b"  GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET / JUNK/1.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/0.9\r\nHost: x\r\n\r\n",
        b"GET www.example.org HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /#frag HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: local%00host\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\xff\xfe\r\n\r\n",
    ],
)
def test_malformed_requests_are_rejected(raw: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_request(raw)
