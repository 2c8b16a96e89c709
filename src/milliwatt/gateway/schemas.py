"""The OpenAI chat-completions request, validated; errors in OpenAI's error shape."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.responses import JSONResponse

from milliwatt.config import ServerConfig
from milliwatt.memory.sessions import check_session_name
from milliwatt.models.base import Message

MAX_ERROR_CHARS = 500  # an error quotes what it refuses; a 1 MB value is not echoed back


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send name, refusal, audio ...
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""

    def to_message(self) -> Message:
        role = "system" if self.role == "developer" else self.role
        return Message(role, self.text())


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown sampling options are accepted, unused
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    user: str | None = Field(None, max_length=128)
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0, le=2)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role != "user" or not messages[-1].text().strip():
            raise ValueError("the last message must be a non-empty user message")
        return messages


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS] + "..."
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        body = {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def parse_chat_request(raw: bytes, limits: ServerConfig | None = None) -> ChatRequest:
    limits = limits or ServerConfig()
    try:
        data: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_json")
    if b"\\ud" in raw.lower():  # only a JSON escape can carry a surrogate
        _check_no_surrogates(data)
    _check_limits(data, limits)
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, f"{param}: {first['msg']}", param=param, code="invalid_value") from None


def check_chat_limits(raw: bytes, limits: ServerConfig) -> None:
    """Refuses a chat request over the message limits before the WAF inspects it (the rules'
    work grows with each value's length); anything else, bad JSON included, passes on."""
    try:
        data: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return
    if isinstance(data, dict):
        _check_limits(data, limits)
        _check_string_lengths(data, limits.max_message_chars)


def _check_limits(data: dict[str, Any], limits: ServerConfig) -> None:
    messages = data.get("messages")
    if not isinstance(messages, list):
        return
    if len(messages) > limits.max_messages:
        text = f"messages: at most {limits.max_messages}"
        raise ApiError(400, text, param="messages", code="too_large")
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        parts = content if isinstance(content, list) else [{"text": content}]
        texts = [p.get("text") for p in parts if isinstance(p, dict)]
        if sum(len(t) for t in texts if isinstance(t, str)) > limits.max_message_chars:
            param = f"messages.{i}.content"
            text = f"{param}: at most {limits.max_message_chars} characters"
            raise ApiError(400, text, param=param, code="too_large")


def session_name(value: str | None) -> str | None:
    """The session a request continues, in its one normal form; it is the caller's identity."""
    if value is None:
        return None
    try:
        return check_session_name(value)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="user", code="invalid_value") from None


def _check_no_surrogates(data: object) -> None:
    """JSON's \\ud800 escape alone is no character: tokenizers and SQLite cannot take it."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400, "the body holds a lone surrogate (\\ud800-\\udfff), not text", code="invalid_json"
        ) from None


def _check_string_lengths(document: object, limit: int) -> None:
    """No string anywhere (`user`, `model`, tool descriptions ...) longer than a message."""
    stack = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and len(value) > limit:
            param = path.lstrip(".") or None
            text = f"{param}: at most {limit} characters"
            raise ApiError(400, text, param=param, code="too_large")
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", v) for i, v in enumerate(value))
