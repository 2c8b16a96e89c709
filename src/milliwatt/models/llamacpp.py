"""llama.cpp (through llama-cpp-python) over a GGUF file: the default, CPU-only backend.

The prompt is rendered with the model's own chat template (read from the GGUF) and
tokenized once; generation streams token by token. Tool calls and JSON output are
grammar-constrained, so even a 135M model always emits something that parses.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_cpp import Llama, LlamaGrammar, LogitsProcessorList
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from milliwatt.models.base import (
    DEFAULT_GENERATION,
    ContextOverflowError,
    GenerationSettings,
    Message,
    Model,
    ModelError,
    ModelResponse,
    StreamChunk,
    ToolCall,
    ToolSpec,
    Usage,
)
from milliwatt.models.tool_prompt import render_tool_prompt, tool_choice_schema

_FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


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
    local = True

    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        context_length: int | None = None,
        threads: int | None = None,
        timeout_seconds: float = 120.0,
    ) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        self.path = path
        self.name = name or path.stem
        self.threads = threads or physical_cores()
        self.timeout_seconds = timeout_seconds
        # n_ctx=0 asks llama.cpp for the context length the model was trained with
        self._llama = Llama(
            str(path), n_ctx=context_length or 0, n_threads=self.threads, verbose=False
        )
        self.context_length = self._llama.n_ctx()
        self.trained_context_length = int(
            self._llama.metadata.get(
                f"{self._llama.metadata.get('general.architecture')}.context_length",
                self.context_length,
            )
        )
        self._formatter = self._chat_formatter()
        # respect the GGUF: SmolLM2's BOS is <|im_start|>, which its template already writes
        self._add_bos = self._llama.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false"
        self._lock = threading.Lock()  # a llama.cpp context serves one generation at a time
        self._grammars: dict[str, LlamaGrammar] = {}

    def _chat_formatter(self) -> Jinja2ChatFormatter:
        meta = self._llama.metadata
        vocab = self._llama.tokenizer_

        def token_text(key: str) -> str:
            token_id = meta.get(key)
            if token_id is None:
                return ""
            return vocab.decode([int(token_id)]) if vocab else ""

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
        tokens = self._llama.tokenize(rendered.prompt.encode(), add_bos=self._add_bos, special=True)
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or ""]
        return tokens, [s for s in stop if s]

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        return len(self._prompt(messages, tools)[0])

    def _grammar(self, schema: dict[str, Any]) -> LlamaGrammar:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            # the grammar writes properties in the schema's order: "tool" before "arguments",
            # so the model names the tool before it fills the arguments (not sorted keys)
            self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        return self._grammars[key]

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> Iterator[StreamChunk]:
        tokens, stop = self._prompt(messages, tools)
        if len(tokens) + 1 > self.context_length:
            raise ContextOverflowError(len(tokens), self.context_length)
        max_tokens = min(settings.max_tokens, self.context_length - len(tokens))
        schema = tool_choice_schema(tools) if tools else json_schema
        grammar = self._grammar(schema) if schema is not None else None
        deadline = time.monotonic() + self.timeout_seconds
        confidence = TokenLogprobs(len(tokens)) if settings.logprobs else None
        with self._lock:
            pieces: list[str] = []
            shown = ""  # the part of a constrained answer already streamed
            finish = "stop"
            for part in self._llama.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=settings.temperature,
                seed=settings.seed,
                stop=stop,
                grammar=grammar,
                logit_bias={self._llama.token_eos(): -1e9} if self.ignore_eos else None,
                stream=True,
                logits_processor=LogitsProcessorList([confidence]) if confidence else None,
            ):
                choice = part["choices"][0]
                text = choice["text"]
                if text:
                    pieces.append(text)
                    if not tools:
                        yield StreamChunk(text=text)
                    else:  # the JSON is not for the user's eyes, an answer inside it is
                        visible = _partial_answer("".join(pieces))
                        if len(visible) > len(shown) and visible.startswith(shown):
                            yield StreamChunk(text=visible[len(shown) :])
                            shown = visible
                finish = choice.get("finish_reason") or finish
                if time.monotonic() > deadline:
                    raise ModelError(f"{self.name}: no answer within {self.timeout_seconds:g} s")
        text = "".join(pieces)
        usage = Usage(len(tokens), len(pieces))
        response = ModelResponse(
            model=self.name,
            text=text,
            usage=usage,
            stop_reason="length" if finish == "length" else "stop",
            mean_logprob=confidence.mean() if confidence else None,
        )
        if tools:
            _apply_tool_choice(response)
            if response.text.startswith(shown) and len(response.text) > len(shown):
                yield StreamChunk(text=response.text[len(shown) :])
        yield StreamChunk(response=response)

    def close(self) -> None:
        self._llama.close()


class TokenLogprobs:
    """A logits processor that records how sure the model was of each token it produced.

    llama.cpp hands it the raw logits of each step (before the grammar masks them), and the
    token chosen at one step is the last input of the next, so each chosen token's
    log-probability under the model's own distribution is known one step later. A token the
    grammar forced against the model's preference scores low, which is the point. The final
    token (end of text, or the closing brace the grammar requires) is not scored.
    Cheaper than llama.cpp's own logprobs, which need logits kept for every position.
    """

    def __init__(self, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.logprobs: list[float] = []
        self._previous: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._previous is not None and len(input_ids) > self.prompt_tokens:
            self.logprobs.append(float(self._previous[int(input_ids[-1])]))
        top = float(scores.max())
        log_total = top + float(np.log(np.exp(scores - top).sum()))
        self._previous = scores - log_total  # a copy: llama.cpp reuses its buffer
        return scores

    def mean(self) -> float | None:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else None


def _to_template_messages(
    messages: Sequence[Message], tools: Sequence[ToolSpec]
) -> list[dict[str, str]]:
    """Small chat templates know only system/user/assistant: fold tool traffic into those."""
    out: list[dict[str, str]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "user", "content": f"Result of {m.name}: {m.content}"})
        elif m.role == "assistant" and m.tool_calls:
            calls = [{"tool": c.name, "arguments": c.arguments} for c in m.tool_calls]
            out.append(
                {"role": "assistant", "content": json.dumps(calls[0] if len(calls) == 1 else calls)}
            )
        else:
            out.append({"role": m.role, "content": m.content})
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
