"""URL ingest through the egress guard, against a real HTTP server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from milliwatt.knowledge import CollectionKey, KnowledgeBase, LoadError
from milliwatt.knowledge.fetch import guarded_fetcher
from milliwatt.knowledge.ingest import UrlFetcher
from milliwatt.models.embeddings import Embedder
from milliwatt.shield.egress import EgressPolicy, GuardedClient

from .conftest import BICYCLE

KEY = CollectionKey("default", "helper", "web")
PAGES = {
    "/bicycle.html": ("text/html; charset=utf-8", BICYCLE.encode()),
    "/notes.md": ("text/markdown", b"# Notes\n\nThe meeting moved to Thursday at ten."),
    "/image.png": ("image/png", b"\x89PNG"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path not in PAGES:
            self.send_error(404)
            return
        media_type, body = PAGES[self.path]
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _loopback_fetcher() -> UrlFetcher:
    policy = EgressPolicy(allow_networks=("127.0.0.0/8",), ports=None)
    return guarded_fetcher(GuardedClient(policy))


def test_ingest_urls(tmp_path: Path, embedder: Embedder, server: str) -> None:
    kb = KnowledgeBase(tmp_path, embedder)
    urls = [f"{server}/bicycle.html", f"{server}/notes.md"]
    report = kb.ingest(urls, KEY, fetch_url=_loopback_fetcher())
    assert report.added == urls
    top = kb.search("tyre pressure", KEY, k=1)[0]
    assert top.source == urls[0] and top.heading == "Bicycle care > Tyres"
    assert kb.search("when is the meeting", KEY, k=1)[0].source == urls[1]
    again = kb.ingest(urls, KEY, fetch_url=_loopback_fetcher())
    assert again.unchanged == urls


def test_guard_refusals_and_bad_responses_store_nothing(
    tmp_path: Path, embedder: Embedder, server: str
) -> None:
    kb = KnowledgeBase(tmp_path, embedder)
    default_policy = guarded_fetcher(GuardedClient(EgressPolicy(ports=None)))
    with pytest.raises(LoadError, match=rf"^{server}/notes\.md: .*is loopback"):
        kb.ingest([f"{server}/notes.md"], KEY, fetch_url=default_policy)
    with pytest.raises(LoadError, match="answered HTTP 404"):
        kb.ingest([f"{server}/notes.md", f"{server}/missing"], KEY, fetch_url=_loopback_fetcher())
    with pytest.raises(LoadError, match="unsupported content type 'image/png'"):
        kb.ingest([f"{server}/image.png"], KEY, fetch_url=_loopback_fetcher())
    assert kb.collections("default", "helper") == []  # not even the collection was created
