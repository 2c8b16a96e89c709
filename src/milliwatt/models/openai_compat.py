"""Any OpenAI-compatible chat server (vLLM, llama-server, Ollama, llama_cpp.server) by base URL.

Tools are passed natively (`tools=`); JSON output uses `response_format` with a schema.
Streaming reads the server-sent events of /chat/completions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from milliwatt.models.base import (
    DEFAULT_GENERATION,
    DEFAULT_MODEL_SETTINGS,
    ContextOverflowError,
    GenerationSettings,
    Message,
    Model,
    ModelError,
    ModelResponse,
    ModelSettings,
    StreamChunk,
    ToolCall,
    ToolSpec,
    Usage,
)

_WIRE_NAME = re.compile(r"[^a-zA-Z0-9_-]")


class OpenAICompatModel(Model):
    provider = "openai"
    local = False  # costed by tokens: the server's CPU/GPU time is not ours to measure

    def __init__(
        self,
        base_url: str,
        remote_name: str,
        *,
        name: str | None = None,
        api_key: str | None = None,
        context_length: int = 8192,
        timeout_seconds: float = 120.0,
        settings: ModelSettings = DEFAULT_MODEL_SETTINGS,
    ) -> None:
        self.apply_settings(settings)
        self.name = name or remote_name
        self.remote_name = remote_name
        self.context_length = context_length
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_seconds
        )

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        # The remote tokenizer is unknown; ~4 characters per token is the usual estimate.
        chars = sum(len(m.content) + 8 for m in messages)
        chars += sum(len(json.dumps(t.parameters)) + len(t.description) for t in tools)
        return chars // 4 + 1

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> Iterator[StreamChunk]:
        names = {_WIRE_NAME.sub("_", t.name): t.name for t in tools}
        body: dict[str, Any] = {
            "model": self.remote_name,
            "messages": [_wire_message(m) for m in messages],
            "max_tokens": settings.max_tokens,
            "temperature": settings.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if settings.seed is not None:
            body["seed"] = settings.seed
        if settings.stop:
            body["stop"] = list(settings.stop)[:4]  # the most OpenAI's API accepts
        if tools:
            body["tools"] = [_wire_tool(t) for t in tools]
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": json_schema},
            }
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage = Usage()
        finish = "stop"
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    self._raise_for(reply, messages, tools)
                for event in _sse_events(reply.iter_lines()):
                    if event.get("usage"):
                        usage = Usage(
                            event["usage"].get("prompt_tokens", 0),
                            event["usage"].get("completion_tokens", 0),
                        )
                    for choice in event.get("choices", []):
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            text.append(delta["content"])
                            yield StreamChunk(text=delta["content"])
                        for call in delta.get("tool_calls") or []:
                            slot = calls.setdefault(
                                call.get("index", 0), {"id": "", "name": "", "args": ""}
                            )
                            fn = call.get("function") or {}
                            slot["id"] = call.get("id") or slot["id"]
                            slot["name"] += fn.get("name") or ""
                            slot["args"] += fn.get("arguments") or ""
                        finish = choice.get("finish_reason") or finish
        except httpx.HTTPError as exc:
            raise ModelError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        response = ModelResponse(
            model=self.name,
            text="".join(text),
            tool_calls=[_parse_call(c, names) for c in calls.values()],
            usage=usage,
            stop_reason="length" if finish == "length" else "stop",
        )
        if response.tool_calls:
            response.stop_reason = "tool_calls"
        if usage.total_tokens == 0:
            response.usage = Usage(self.count_tokens(messages, tools), len(text))
        yield StreamChunk(response=response)

    def _raise_for(
        self, reply: httpx.Response, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> None:
        detail = reply.text[:300]
        if reply.status_code == 400 and "context" in detail.lower():
            raise ContextOverflowError(self.count_tokens(messages, tools), self.context_length)
        raise ModelError(f"{self.name}: server answered {reply.status_code}: {detail}")

    def close(self) -> None:
        self._client.close()


def _wire_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": _WIRE_NAME.sub("_", c.name),
                    "arguments": json.dumps(c.arguments),
                },
            }
            for c in m.tool_calls
        ]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    return out


def _wire_tool(t: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": _WIRE_NAME.sub("_", t.name),
            "description": t.description,
            "parameters": t.parameters,
        },
    }


def _parse_call(raw: dict[str, str], names: dict[str, str]) -> ToolCall:
    try:
        arguments = json.loads(raw["args"] or "{}")
    except json.JSONDecodeError:
        arguments = {"_unparsed": raw["args"]}  # the loop reports it back to the model
    return ToolCall(raw["id"] or "call_0", names.get(raw["name"], raw["name"]), arguments)


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except json.JSONDecodeError as exc:
            raise ModelError(f"malformed event from server: {data[:100]!r}") from exc
