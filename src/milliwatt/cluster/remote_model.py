"""A model tier served by another Ray Serve deployment, used by the gateway as a local Model.

The agent loop runs on its own thread (gateway.agent_thread); from there the tier's
DeploymentHandle is called synchronously and its chunks streamed back as they come. A
cancelled turn (its client gone) cancels the remote generation too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from milliwatt.errors import MilliwattError, ModelUnavailableError
from milliwatt.models.base import (
    DEFAULT_GENERATION,
    GenerationCancelled,
    GenerationSettings,
    Message,
    Model,
    ModelSettings,
    StreamChunk,
    ToolSpec,
)


class RemoteModel(Model):
    def __init__(self, handle: Any, info: dict[str, Any], pop: str) -> None:
        self.handle = handle  # ray.serve.handle.DeploymentHandle of a ModelTier
        self.name = str(info["name"])
        self.context_length = int(info["context_length"])
        self.local = bool(info["local"])
        self.provider = str(info["provider"])
        self.pop = pop
        self.apply_settings(
            ModelSettings(
                max_tokens=int(info["max_tokens"]),
                joules_per_token=float(info["joules_per_token"]),
                ignore_eos=bool(info["ignore_eos"]),
            )
        )

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        try:
            return int(self.handle.count_tokens.remote(list(messages), list(tools)).result())
        except MilliwattError:
            raise
        except Exception as exc:  # Ray's own failures: the tier is unreachable or restarting
            raise ModelUnavailableError(f"{self.name}: tier deployment failed ({exc})") from exc

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> Iterator[StreamChunk]:
        cancel = settings.cancel
        portable = dataclasses.replace(settings, cancel=None)  # an Event does not travel
        try:
            chunks = self.handle.options(stream=True).stream.remote(
                list(messages), list(tools), json_schema, portable
            )
        except Exception as exc:
            raise ModelUnavailableError(f"{self.name}: tier deployment failed ({exc})") from exc
        finished = False
        try:
            for chunk in _relayed(chunks, self.name):
                if cancel is not None and cancel.is_set():
                    raise GenerationCancelled(self.name)
                yield chunk
            finished = True
        finally:
            if not finished:
                chunks.cancel()

    def status(self) -> dict[str, object]:
        return {"state": "ready", "backend": "ray-serve", "pop": self.pop}


def _relayed(chunks: Any, name: str) -> Iterator[StreamChunk]:
    try:
        yield from chunks
    except MilliwattError:  # Ray re-raises the tier's own error as a subclass of it
        raise
    except Exception as exc:
        raise ModelUnavailableError(f"{name}: tier deployment failed ({exc})") from exc
