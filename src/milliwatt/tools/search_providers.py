"""Web search providers behind one small interface; each talks through the guarded client.

A provider never opens a connection of its own: `web.search` hands it the agent's
GuardedClient, so the provider's own address must pass the same egress policy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from milliwatt.shield.egress import EgressBlocked, GuardedClient, parse_url


class SearchError(Exception):
    """The provider failed or answered something unusable; the message says which."""


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class SearchProvider(Protocol):
    name: str

    def search(self, query: str, k: int, client: GuardedClient) -> list[SearchResult]:
        """At most k results for query, best first."""
        ...


class SearxngSearch:
    """A SearXNG instance (or anything speaking its JSON API: GET /search?q=..&format=json)."""

    name = "searxng"

    def __init__(self, base_url: str) -> None:
        try:
            parse_url(base_url)
        except EgressBlocked as exc:
            raise ValueError(f"search base URL {base_url!r}: {exc.reason}") from None
        self.base_url = base_url.rstrip("/")

    def search(self, query: str, k: int, client: GuardedClient) -> list[SearchResult]:
        url = f"{self.base_url}/search?{urlencode({'q': query, 'format': 'json'})}"
        response = client.get(url, headers={"accept": "application/json"})
        if response.status != 200:
            raise SearchError(f"search provider {self.base_url} answered HTTP {response.status}")
        if response.truncated:
            raise SearchError(f"search provider {self.base_url} sent more than the size limit")
        try:
            data: Any = json.loads(response.content)
        except ValueError:
            raise SearchError(f"search provider {self.base_url} did not answer JSON") from None
        items = data.get("results") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise SearchError(f"search provider {self.base_url} answered without a results list")
        results: list[SearchResult] = []
        for item in items:
            result = _result(item)
            if result is not None:
                results.append(result)
            if len(results) == k:
                break
        return results


def _result(item: object) -> SearchResult | None:
    """One result; entries without a plain web URL (javascript:, data:, junk) are dropped."""
    if not isinstance(item, dict):
        return None
    url = item.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        return None
    title = item.get("title")
    snippet = item.get("content")
    return SearchResult(
        title=title.strip() if isinstance(title, str) else "",
        url=url,
        snippet=snippet.strip() if isinstance(snippet, str) else "",
    )
