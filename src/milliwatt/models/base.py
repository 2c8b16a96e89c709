"""The one small interface every model backend implements.

Messages (and optionally tools or a JSON schema) go in; text, tool calls, usage and a
stop reason come out, either at once (`complete`) or as streamed chunks (`stream`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# the model errors, importable from here as before
from milliwatt.errors import (
    ContextOverflowError as ContextOverflowError,
)
from milliwatt.errors import (
    ModelBusyError as ModelBusyError,
)
from milliwatt.errors import (
    ModelError as ModelError,
)
from milliwatt.errors import (
    ModelUnavailableError as ModelUnavailableError,
)

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["stop", "length", "tool_calls"]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Message:
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # set on role="tool" replies
    name: str | None = None  # the tool's name on role="tool" replies


@dataclass(frozen=True)
class ToolSpec:
    """What a model is told about a tool: its name, description and argument schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass
class ModelResponse:
    model: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: StopReason = "stop"
    # mean log-probability of the generated tokens, when the backend reports it;
    # the cascade escalates when it is below a threshold
    mean_logprob: float | None = None
    # GenerationSettings.score_words -> their log-probabilities (local backends)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class StreamChunk:
    """A piece of streamed text; the last chunk of a stream carries the whole response."""

    text: str = ""
    response: ModelResponse | None = None


class GenerationCancelled(Exception):
    """The caller gave up (its client went away); the generation was stopped."""


@dataclass(frozen=True)
class GenerationSettings:
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None
    # report ModelResponse.mean_logprob (costs a little per token: only the cascade asks)
    logprobs: bool = False
    # where the reply so far (spaces aside) is score_after, the log-probability of each word's
    # first token is reported in ModelResponse.scores: the model's own choice between words,
    # read before a grammar narrows it (local backends only; others report nothing)
    score_words: tuple[str, ...] = ()
    score_after: str = ""
    # end the reply where one of these would begin (not included); the chat template's own
    # end-of-turn marker applies whether listed or not
    stop: tuple[str, ...] = ()
    # who is asking: local backends serve waiting callers in turn, one line per user
    user: str = "anonymous"
    # set by the caller when its client has gone: the generation stops within a token
    cancel: threading.Event | None = None


DEFAULT_GENERATION = GenerationSettings()


@dataclass(frozen=True)
class ModelSettings:
    """A model's own settings, from its configuration, given to its backend when built."""

    max_tokens: int = 512  # generated tokens per call
    joules_per_token: float = 0.5  # the estimate for remote models
    ignore_eos: bool = False  # generate exactly max_tokens: for benchmarks


DEFAULT_MODEL_SETTINGS = ModelSettings()


class Model(ABC):
    """A chat model. Backends live one per module beside this one."""

    name: str
    context_length: int
    # local models are costed by CPU time, remote ones by tokens
    local: bool = True
    provider: str = "unknown"  # the backend, as traces name it (gen_ai.provider.name)
    max_tokens: int = DEFAULT_MODEL_SETTINGS.max_tokens  # each backend sets these three
    joules_per_token: float = DEFAULT_MODEL_SETTINGS.joules_per_token  # from the ModelSettings
    ignore_eos: bool = DEFAULT_MODEL_SETTINGS.ignore_eos  # it is built with (apply_settings)

    def apply_settings(self, settings: ModelSettings) -> None:
        """Take the configured settings; backends call this from their constructor."""
        self.max_tokens = settings.max_tokens
        self.joules_per_token = settings.joules_per_token
        self.ignore_eos = settings.ignore_eos

    @abstractmethod
    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """Tokens the prompt built from these messages (and tools) takes, template included."""

    @abstractmethod
    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> Iterator[StreamChunk]:
        """Yield text as it is generated; the final chunk carries the ModelResponse.

        With `tools`, a small model's output is constrained so that every call parses and
        fits its tool's schema. With `json_schema`, the text is constrained to the schema.
        """

    def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> ModelResponse:
        for chunk in self.stream(messages, tools=tools, json_schema=json_schema, settings=settings):
            if chunk.response is not None:
                return chunk.response
        raise ModelError(f"{self.name}: the stream ended without a response")

    def status(self) -> dict[str, object]:
        """How the backend is doing, for /healthz (local models report their worker)."""
        return {"state": "ready"}

    def close(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Release the backend's resources."""
