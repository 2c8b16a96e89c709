"""Fetching documents by URL, only ever through the egress guard."""

from __future__ import annotations

from milliwatt.knowledge.ingest import UrlFetcher
from milliwatt.knowledge.loaders import LoadError
from milliwatt.shield.egress import EgressError, GuardedClient


def guarded_fetcher(client: GuardedClient) -> UrlFetcher:
    """A fetcher for `KnowledgeBase.ingest` that refuses what the client's policy refuses."""

    def fetch(url: str) -> tuple[bytes, str]:
        try:
            response = client.get(url)
        except EgressError as exc:
            raise LoadError(f"{url}: {exc}") from None
        if not 200 <= response.status < 300:
            raise LoadError(f"{url}: the server answered HTTP {response.status}")
        if response.truncated:
            # a cut document would be stored as if whole
            raise LoadError(f"{url}: larger than the {client.policy.max_bytes:,}-byte limit")
        return response.content, response.headers.get("content-type", "")

    return fetch
