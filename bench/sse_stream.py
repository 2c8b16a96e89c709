"""Reading an OpenAI-style SSE stream of chat-completion chunks: one `data:` line at a time,
and what one streamed completion showed (content chunks, usage, route, error). Shared by
`serve_load.py` and its own-client probe `tool_probe.py`, which runs without llama.cpp."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

DONE = "[DONE]"


def parse_sse_line(line: str) -> dict[str, Any] | str | None:
    """The JSON of a `data:` line, DONE for the end marker, None for anything else
    (blank separators, `:` comments such as sse-starlette's pings, `event:` lines)."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == DONE:
        return DONE
    try:
        value = json.loads(data)
    except json.JSONDecodeError:
        return {"error": {"message": f"unparsable SSE data: {data[:80]!r}"}}
    return value if isinstance(value, dict) else {"error": {"message": "SSE data not an object"}}


@dataclass
class StreamState:
    """What one streamed completion showed; fed one parsed `data:` payload at a time."""

    started: float
    window_end: float = math.inf  # chunks after it are not counted in window_chunks
    first_content: float | None = None
    chunks: int = 0  # chunks with non-empty content
    window_chunks: int = 0
    chars: int = 0  # characters of content, all and before window_end
    window_chars: int = 0
    usage_tokens: int | None = None
    finish: str | None = None
    route: str | None = None
    error: str | None = None
    done: bool = False

    def feed(self, payload: dict[str, Any] | str, now: float) -> None:
        if payload == DONE:
            self.done = True
            return
        assert isinstance(payload, dict)
        if "error" in payload:
            error = payload["error"]
            self.error = str(error.get("message", error) if isinstance(error, dict) else error)
            return
        for choice in payload.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                self.chunks += 1
                self.window_chunks += now <= self.window_end
                self.chars += len(content)
                self.window_chars += len(content) if now <= self.window_end else 0
                if self.first_content is None:
                    self.first_content = now
            self.finish = choice.get("finish_reason") or self.finish
        usage = payload.get("usage")
        if isinstance(usage, dict) and "completion_tokens" in usage:
            self.usage_tokens = int(usage["completion_tokens"])
        extra = payload.get("milliwatt")
        if isinstance(extra, dict):
            self.route = extra.get("route")

    @property
    def tokens(self) -> int:
        return self.usage_tokens if self.usage_tokens is not None else self.chunks

    @property
    def window_tokens(self) -> int:
        """Tokens streamed before window_end. A chunk may hold several tokens (milliwatt
        releases text a sentence at a time), so the request's tokens are shared out by the
        characters that arrived in time; without a usage count a chunk is one token."""
        if self.usage_tokens is None or not self.chars:
            return self.window_chunks
        return round(self.usage_tokens * self.window_chars / self.chars)
