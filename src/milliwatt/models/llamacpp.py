"""llama.cpp (through llama-cpp-python) over a GGUF file: the default, CPU-only backend.

The prompt is rendered with the model's own chat template (read from the GGUF) and
tokenized here; a supervised worker process generates, streaming token by token. Tool
calls and JSON output are grammar-constrained, so even a 135M model always emits
something that parses.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import _logger, llama_types
from llama_cpp._internals import LlamaModel
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from milliwatt.models.base import (
    DEFAULT_GENERATION,
    DEFAULT_MODEL_SETTINGS,
    ContextOverflowError,
    GenerationSettings,
    Message,
    Model,
    ModelResponse,
    ModelSettings,
    StreamChunk,
    ToolCall,
    ToolSpec,
    Usage,
)
from milliwatt.models.llamacpp_engine import Finished, GenerateRequest
from milliwatt.models.tool_prompt import render_tool_prompt, tool_choice_schema
from milliwatt.models.worker import ModelWorker, WorkerSpec

_FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


DEFAULT_CONTEXT_LENGTH = 2048  # per sequence: enough for a small model's conversations


def physical_cores() -> int:
    """llama.cpp runs fastest with one thread per physical core, not per hyperthread."""
    try:
        siblings = {
            Path(p, "topology/thread_siblings_list").read_text().strip()
            for p in Path("/sys/devices/system/cpu").glob("cpu[0-9]*")
            if Path(p, "topology/thread_siblings_list").exists()
        }
        if siblings:
            return len(siblings)
    except OSError:
        pass
    return os.cpu_count() or 1


class LlamaCppModel(Model):
    """A GGUF model: prompts are rendered and tokenized here, tokens generated in a worker.

    The worker (models/worker.py) is a separate process holding the weights, so native code
    that crashes takes down that process, not this one. It decodes up to `parallel`
    sequences together; callers beyond that wait their turn, one line per user.
    """

    local = True
    provider = "llama.cpp"

    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        context_length: int | None = None,
        threads: int | None = None,
        timeout_seconds: float = 120.0,
        parallel: int = 16,
        max_waiting: int = 64,
        queue_timeout_seconds: float = 30.0,
        settings: ModelSettings = DEFAULT_MODEL_SETTINGS,
    ) -> None:
        self.apply_settings(settings)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        self.path = path
        self.name = name or path.stem
        self.threads = threads or physical_cores()
        self.timeout_seconds = timeout_seconds
        # the vocabulary alone: templates and token counts without the weights
        _logger.set_verbose(False)  # llama.cpp's load chatter would mix with our output
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self._vocab = LlamaModel(path_model=str(path), params=params, verbose=False)
        self.metadata = self._vocab.metadata()
        meta = self.metadata
        self.trained_context_length = int(
            meta.get(f"{meta.get('general.architecture')}.context_length", 4096)
        )
        # per sequence; every sequence of the worker's cache holds this many tokens
        self.context_length = min(
            context_length or DEFAULT_CONTEXT_LENGTH, self.trained_context_length
        )
        self._formatter = self._chat_formatter()
        # respect the GGUF: SmolLM2's BOS is <|im_start|>, which its template already writes
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "true") != "false"
        self._grammars: dict[str, str] = {}
        spec = WorkerSpec(path, parallel, self.context_length, self.threads,
                          max_waiting, queue_timeout_seconds)  # fmt: skip
        self.worker = ModelWorker(spec, name=self.name)

    def _chat_formatter(self) -> Jinja2ChatFormatter:
        meta = self.metadata

        def token_text(key: str) -> str:
            token_id = meta.get(key)
            return "" if token_id is None else self._vocab.token_get_text(int(token_id))

        return Jinja2ChatFormatter(
            template=meta.get("tokenizer.chat_template", _FALLBACK_TEMPLATE),
            eos_token=token_text("tokenizer.ggml.eos_token_id"),
            bos_token=token_text("tokenizer.ggml.bos_token_id"),
        )

    def _prompt(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> tuple[list[int], list[str]]:
        chat = _to_template_messages(messages, tools)
        rendered = self._formatter(messages=chat)
        tokens = self._vocab.tokenize(rendered.prompt.encode(), add_bos=self._add_bos, special=True)
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or ""]
        return tokens, [s for s in stop if s]

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        return len(self._prompt(messages, tools)[0])

    def _grammar(self, schema: dict[str, Any]) -> str:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            # the grammar writes properties in the schema's order: "tool" before "arguments",
            # so the model names the tool before it fills the arguments (not sorted keys)
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            self._grammars[key] = grammar._grammar
        return self._grammars[key]

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> Iterator[StreamChunk]:
        tokens, template_stop = self._prompt(messages, tools)
        if len(tokens) + 1 > self.context_length:
            raise ContextOverflowError(len(tokens), self.context_length)
        schema = tool_choice_schema(tools) if tools else json_schema
        request = GenerateRequest(
            tokens,
            max_tokens=min(settings.max_tokens, self.context_length - len(tokens)),
            temperature=settings.temperature,
            seed=settings.seed,
            grammar=self._grammar(schema) if schema is not None else None,
            # stop texts end plain answers; a grammar ends constrained ones by itself
            stop=() if schema is not None else (*template_stop, *settings.stop),
            logprobs=settings.logprobs,
            ignore_eos=self.ignore_eos,
            score=tuple(self._first_token(w) for w in settings.score_words),
            score_after=settings.score_after,
        )
        events = self.worker.generate(
            request,
            user=settings.user,
            cancel=settings.cancel,
            deadline=time.monotonic() + self.timeout_seconds,
        )
        with closing(events):  # a caller that stops reading stops the generation
            yield from self._chunks(events, len(tokens), bool(tools), settings.score_words)

    def _first_token(self, word: str) -> int:
        tokens = self._vocab.tokenize(word.encode(), add_bos=False, special=False)
        if not tokens:
            raise ValueError(f"score_words: {word!r} has no tokens")
        return int(tokens[0])

    def _chunks(
        self,
        events: Iterator[str | Finished],
        prompt_tokens: int,
        tools: bool,
        score_words: Sequence[str] = (),
    ) -> Iterator[StreamChunk]:
        pieces: list[str] = []
        shown = ""  # the part of a constrained answer already streamed
        finished: Finished | None = None
        for event in events:
            if isinstance(event, Finished):
                finished = event
                break
            pieces.append(event)
            if not tools:
                yield StreamChunk(text=event)
            else:  # the JSON is not for the user's eyes, an answer inside it is
                visible = _partial_answer("".join(pieces))
                if len(visible) > len(shown) and visible.startswith(shown):
                    yield StreamChunk(text=visible[len(shown) :])
                    shown = visible
        assert finished is not None, "a worker stream ends with Finished"
        response = ModelResponse(
            model=self.name,
            text="".join(pieces),
            usage=Usage(prompt_tokens, finished.completion_tokens),
            stop_reason="length" if finished.reason == "length" else "stop",
            mean_logprob=finished.mean_logprob,
            scores=dict(zip(score_words, finished.scores, strict=False)),
        )
        if tools:
            _apply_tool_choice(response)
            if response.text.startswith(shown) and len(response.text) > len(shown):
                yield StreamChunk(text=response.text[len(shown) :])
        yield StreamChunk(response=response)

    def status(self) -> dict[str, object]:
        return self.worker.status()

    def close(self) -> None:
        self.worker.close()
        self._vocab.close()


def _to_template_messages(
    messages: Sequence[Message], tools: Sequence[ToolSpec]
) -> list[llama_types.ChatCompletionRequestMessage]:
    """Small chat templates know only system/user/assistant: fold tool traffic into those."""
    out: list[llama_types.ChatCompletionRequestMessage] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "user", "content": f"Result of {m.name}: {m.content}"})
        elif m.role == "assistant" and m.tool_calls:
            calls = [{"tool": c.name, "arguments": c.arguments} for c in m.tool_calls]
            out.append(
                {"role": "assistant", "content": json.dumps(calls[0] if len(calls) == 1 else calls)}
            )
        elif m.role == "system":
            out.append({"role": "system", "content": m.content})
        elif m.role == "assistant":
            out.append({"role": "assistant", "content": m.content})
        else:
            out.append({"role": "user", "content": m.content})
    if tools:
        guide = render_tool_prompt(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{guide}"}
        else:
            out.insert(0, {"role": "system", "content": guide})
    return out


def _apply_tool_choice(response: ModelResponse) -> None:
    """Turn the constrained JSON into a tool call or a plain answer."""
    try:
        choice = json.loads(response.text)
    except json.JSONDecodeError:  # generation hit max_tokens mid-object
        response.text = _partial_answer(response.text)
        response.stop_reason = "length"
        return
    if "tool" in choice:
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        response.tool_calls = [ToolCall(call_id, choice["tool"], choice.get("arguments", {}))]
        response.text = ""
        response.stop_reason = "tool_calls"
    else:
        response.text = str(choice.get("answer", ""))


_PARTIAL_ANSWER = re.compile(r'^\s*\{\s*"answer"\s*:\s*"(.*)$', re.DOTALL)


def _partial_answer(text: str) -> str:
    """The readable part of an answer cut off by the token limit ("" for a cut tool call)."""
    match = _PARTIAL_ANSWER.match(text)
    if match is None:
        return ""
    body = match.group(1)
    for end in range(len(body), max(len(body) - 6, -1), -1):  # drop a half-written escape
        try:
            return str(json.loads(f'"{body[:end]}"'))
        except json.JSONDecodeError:
            continue
    return ""
