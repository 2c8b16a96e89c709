"""web.fetch and web.search against real servers on loopback, through the egress guard."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from milliwatt.shield.egress import EgressPolicy, StaticResolver
from milliwatt.tools.registry import Effect, ToolContext, ToolRegistry
from milliwatt.tools.search_providers import SearxngSearch
from milliwatt.tools.web import TOOLS, WebSettings, configure_web, reset_web

ARTICLE = """<!DOCTYPE html>
<html><head><title>Moss in Quiet Gardens</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/shop">Shop</a></nav>
<article>
<h1>Moss in Quiet Gardens</h1>
<p>Moss grows best in <b>shade</b> and damp soil, which is why north-facing walls
are often covered in it after a wet winter.</p>
<h2>Care</h2>
<ul><li>Water lightly in dry spells</li><li>Keep fallen leaves off the cushions</li></ul>
<p>See <a href="https://example.org/moss">the moss guide</a> for the species list.</p>
<p>{filler}</p>
</article>
<footer>Cookie settings. Copyright 2026.</footer>
</body></html>"""

LATIN_PAGE = (
    '<html><head><meta charset="windows-1252"><title>Café crème</title></head><body>'
    "<article><p>Un café crème coûte trois euros – deux si l'on reste au comptoir.</p>"
    "</article></body></html>"
).encode("cp1252")

HITS = {
    "results": [
        {"title": "Moss guide", "url": "https://example.org/moss", "content": "All about moss."},
        {"title": "Bad", "url": "javascript:alert(1)", "content": "dropped"},
        {"title": "Lichen", "url": "https://example.org/lichen", "content": "Not a moss."},
        {"title": "Ferns", "url": "https://example.org/ferns", "content": "Shade lovers."},
    ]
}


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        if url.path == "/article":
            page = ARTICLE.format(filler="Moss facts. " * int(query.get("filler", "1")))
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif url.path == "/latin":
            self._send(200, LATIN_PAGE, "text/html")  # no charset: the page's meta tag says it
        elif url.path == "/notes.txt":
            self._send(200, b"plain notes\nsecond line", "text/plain")
        elif url.path == "/file.pdf":
            self._send(200, b"%PDF-1.7", "application/pdf")
        elif url.path == "/to-metadata":
            self._send(302, b"", "text/plain", {"Location": "http://169.254.169.254/latest/"})
        elif url.path == "/search":
            if query.get("q") == "broken":
                self._send(200, b"<html>not json</html>", "text/html")
                return
            self._send(200, json.dumps({"query": query["q"], **HITS}).encode(), "application/json")
        else:
            self._send(404, b"no such page", "text/plain")

    def _send(
        self, status: int, body: bytes, kind: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def site() -> Iterator[tuple[int, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address[1], server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        reset_web()


@pytest.fixture()
def registry() -> ToolRegistry:
    return ToolRegistry(TOOLS)


def loopback(port: int, **extra: object) -> WebSettings:
    policy = EgressPolicy(allow_networks=("127.0.0.0/8",), ports=(port,))
    resolver = StaticResolver({"garden.example.com": ["127.0.0.1"]})
    return WebSettings(policy=policy, resolver=resolver, **extra)  # type: ignore[arg-type]


def test_tools_declare_network_and_untrusted_effects(registry: ToolRegistry) -> None:
    assert registry.names() == ["web.fetch", "web.search"]
    for t in registry:
        assert t.effects == {Effect.NETWORK, Effect.READS_UNTRUSTED}
        assert t.untrusted_output


def test_fetch_extracts_title_and_main_text_as_markdown(site, registry) -> None:  # type: ignore[no-untyped-def]
    port, seen = site
    configure_web(loopback(port))
    result = registry.call("web.fetch", {"url": f"http://garden.example.com:{port}/article"})
    assert result.ok, result.error
    assert result.untrusted
    page = result.value
    assert page["url"] == f"http://garden.example.com:{port}/article"
    assert page["title"] == "Moss in Quiet Gardens"
    assert "Moss grows best in **shade**" in page["text"]
    assert "- Water lightly in dry spells" in page["text"]
    assert "[the moss guide](https://example.org/moss)" in page["text"]
    assert "Cookie settings" not in page["text"]  # boilerplate is left out
    assert page["truncated"] is False
    assert seen == ["/article"]


def test_fetch_decodes_by_the_pages_own_charset(site, registry) -> None:  # type: ignore[no-untyped-def]
    port, _seen = site
    configure_web(loopback(port))
    page = registry.call("web.fetch", {"url": f"http://127.0.0.1:{port}/latin"}).value
    assert page["title"] == "Café crème"
    assert "Un café crème coûte trois euros – deux" in page["text"]


def test_fetch_caps_the_text_and_says_so(site, registry) -> None:  # type: ignore[no-untyped-def]
    port, _seen = site
    configure_web(loopback(port, max_chars=300))
    page = registry.call("web.fetch", {"url": f"http://127.0.0.1:{port}/article?filler=400"}).value
    assert len(page["text"]) == 300
    assert page["truncated"] is True


def test_fetch_passes_plain_text_and_refuses_binaries(site, registry) -> None:  # type: ignore[no-untyped-def]
    port, _seen = site
    configure_web(loopback(port))
    notes = registry.call("web.fetch", {"url": f"http://127.0.0.1:{port}/notes.txt"})
    assert notes.value == {
        "url": f"http://127.0.0.1:{port}/notes.txt",
        "title": "",
        "text": "plain notes\nsecond line",
        "truncated": False,
    }
    pdf = registry.call("web.fetch", {"url": f"http://127.0.0.1:{port}/file.pdf"})
    assert pdf.error is not None and "application/pdf, not a web page" in pdf.error
    missing = registry.call("web.fetch", {"url": f"http://127.0.0.1:{port}/nothing"})
    assert missing.error is not None and "answered HTTP 404" in missing.error


def test_fetch_is_refused_by_the_guard_with_the_reason(site, registry) -> None:  # type: ignore[no-untyped-def]
    port, seen = site
    configure_web(WebSettings())  # the default policy: loopback is not reachable
    direct = registry.call("web.fetch", {"url": f"http://127.0.0.1:{port}/article"})
    assert (
        direct.error == "blocked by the egress policy: address 127.0.0.1 is loopback (127.0.0.0/8)"
    )
    configure_web(loopback(port))
    hop = registry.call("web.fetch", {"url": f"http://127.0.0.1:{port}/to-metadata"})
    assert hop.error is not None
    assert (
        "redirect from" in hop.error and "169.254.169.254 is a cloud metadata endpoint" in hop.error
    )
    assert seen == ["/to-metadata"]


def test_policy_follows_the_calling_agent(site, registry) -> None:  # type: ignore[no-untyped-def]
    port, _seen = site
    configure_web(loopback(port), agent="gardener")
    url = f"http://127.0.0.1:{port}/notes.txt"
    assert registry.call("web.fetch", {"url": url}, ToolContext(agent="gardener")).ok
    other = registry.call("web.fetch", {"url": url}, ToolContext(agent="other"))
    assert other.error is not None and "loopback" in other.error


def test_search_through_a_searxng_style_provider(site, registry) -> None:  # type: ignore[no-untyped-def]
    port, seen = site
    provider = SearxngSearch(f"http://127.0.0.1:{port}/")
    configure_web(loopback(port, search=provider))
    result = registry.call("web.search", {"query": "  moss & shade ", "k": 2})
    assert result.ok, result.error
    assert result.untrusted
    assert result.value == {
        "query": "moss & shade",
        "results": [
            {
                "title": "Moss guide",
                "url": "https://example.org/moss",
                "snippet": "All about moss.",
            },
            {"title": "Lichen", "url": "https://example.org/lichen", "snippet": "Not a moss."},
        ],
    }
    assert seen == ["/search?q=moss+%26+shade&format=json"]


def test_search_errors_are_named(site, registry) -> None:  # type: ignore[no-untyped-def]
    port, _seen = site
    configure_web(loopback(port))
    assert "no web search provider" in (registry.call("web.search", {"query": "x"}).error or "")
    configure_web(loopback(port, search=SearxngSearch(f"http://127.0.0.1:{port}")))
    assert "did not answer JSON" in (registry.call("web.search", {"query": "broken"}).error or "")
    assert "non-empty query" in (registry.call("web.search", {"query": "  "}).error or "")
    assert "between 1 and 20" in (registry.call("web.search", {"query": "x", "k": 0}).error or "")
    configure_web(WebSettings(search=SearxngSearch(f"http://127.0.0.1:{port}")))
    blocked = registry.call("web.search", {"query": "moss"}).error or ""
    assert blocked.startswith("search provider blocked by the egress policy: address 127.0.0.1")


def test_provider_url_is_checked_when_configured() -> None:
    with pytest.raises(ValueError, match="credentials"):
        SearxngSearch("http://user:pw@search.example.com/")
