"""Continuous batching over one llama.cpp model: what runs inside a model worker process.

Up to `parallel` generations share one loaded model and one KV cache of `parallel` x
`context_length` cells; each sequence is held to `context_length` tokens, so together they
always fit. Each `step()` decodes one batch holding the next token of every running
sequence and a chunk of any prompt still being read, so a new request starts while others
stream, and N streams cost far less than N times one. The caller owns admission: it never
submits more than `parallel` sequences.

Greedy decoding without a grammar picks the top logit in numpy; a grammar, a temperature
or a seed use llama.cpp's own sampler chain, one per sequence.
"""

from __future__ import annotations

import codecs
import ctypes
import math
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaContext, LlamaModel, LlamaSampler

# a prompt is read in chunks of at most this many tokens per step, so that the streams
# already running keep their pace while a long prompt is read
PROMPT_CHUNK = 256
GGML_TYPE_Q8_0 = 8  # ggml's enum value for 8-bit blocks of 32


@dataclass(frozen=True)
class GenerateRequest:
    """One generation, as the worker receives it: the prompt is already tokenized."""

    tokens: list[int]
    max_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    grammar: str | None = None  # GBNF text, root rule "root"
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    ignore_eos: bool = False
    # where the reply so far, spaces aside, is score_after: these tokens' log-probabilities
    # (Finished.scores), a choice read from the model's own distribution, not the grammar's
    score: tuple[int, ...] = ()
    score_after: str = ""


@dataclass(frozen=True)
class Finished:
    """The end of a generation: why it stopped and what it cost."""

    completion_tokens: int
    reason: str  # "stop" | "length" | "error"
    mean_logprob: float | None = None
    error: str | None = None
    scores: tuple[float, ...] = ()


@dataclass
class _Sequence:
    request_id: int
    seq_id: int
    request: GenerateRequest
    sampler: LlamaSampler | None
    pending: list[int]  # prompt tokens not yet decoded
    cached: list[int]  # the tokens whose cells the cache holds, position by position
    position: int = 0  # next position in the sequence
    last: int = -1  # the token sampled last, decoded in the next step
    generated: int = 0
    text: str = ""  # generated text not yet sent (held back while it may start a stop string)
    logprobs: list[float] = field(default_factory=list)
    produced: str = ""  # all generated text, for score_after
    scores: tuple[float, ...] = ()
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )


Event = tuple[int, str | Finished]  # (request id, a piece of text or the end)


class BatchEngine:
    def __init__(self, path: Path, *, parallel: int, context_length: int, threads: int) -> None:
        model_params = llama_cpp.llama_model_default_params()
        # llama.cpp's AMX kernels (0.3.16, built by GCC 12) give wrong results for batches
        # of tokens: a prompt read at once continues differently from one read token by
        # token. scripts/install.sh builds without AMX; a build that has it is kept off it.
        model_params.use_extra_bufts = b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info()
        self.model = LlamaModel(path_model=str(path), params=model_params, verbose=False)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context_length * parallel
        params.n_batch = params.n_ubatch = max(PROMPT_CHUNK, parallel)
        params.n_seq_max = parallel
        # one cache for all sequences: with separate ones this llama.cpp decodes the
        # sequences of a batch one after another, and batching gains nothing
        params.kv_unified = True
        # flash attention lets the cache be 8-bit: half the memory, and faster here
        params.flash_attn = True
        params.type_k = params.type_v = GGML_TYPE_Q8_0
        params.n_threads = params.n_threads_batch = threads
        self.context = LlamaContext(model=self.model, params=params, verbose=False)
        self.context_length = self.context.n_ctx() // parallel  # per sequence
        self.parallel = parallel
        vocab = self.model.vocab
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        self._pieces = [_piece(vocab, t) for t in range(self.n_vocab)]
        self._eog = np.array(
            [t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)], np.int32
        )
        self._batch = llama_cpp.llama_batch_init(params.n_batch, 0, 1)
        self._free_seq_ids = list(range(parallel))
        self._held: dict[int, list[int]] = {s: [] for s in range(parallel)}  # free ones' cells
        self.reused_tokens = 0  # prompt tokens not read again, thanks to cached cells
        self._running: dict[int, _Sequence] = {}

    @property
    def idle(self) -> bool:
        return not self._running

    def submit(self, request_id: int, request: GenerateRequest) -> None:
        if not self._free_seq_ids:
            raise RuntimeError("no free sequence: the worker admits at most `parallel`")
        if not request.tokens:
            raise ValueError("the prompt is empty")
        seq_id, reused = self._place(request.tokens)
        self.reused_tokens += reused
        self._running[request_id] = _Sequence(
            request_id,
            seq_id,
            request,
            self._sampler(request),
            pending=list(request.tokens[reused:]),
            cached=list(request.tokens[:reused]),
            position=reused,
        )

    def _place(self, tokens: list[int]) -> tuple[int, int]:
        """A free sequence for this prompt, and how many of its first tokens are cached.

        Prompts share their beginnings (instructions, the tool guide): a free sequence keeps
        the cells of what it last held, and a running one lends its cells (in one cache a
        cell may belong to several sequences), so only the new part is read again.
        """
        memory = self.context.memory
        seq_id = max(self._free_seq_ids, key=lambda s: _common(self._held[s], tokens))
        own = _common(self._held[seq_id], tokens)
        donor = max(
            self._running.values(),
            key=lambda r: _common(r.cached[: r.position], tokens),
            default=None,
        )
        lent = _common(donor.cached[: donor.position], tokens) if donor is not None else 0
        self._free_seq_ids.remove(seq_id)
        # at least the last prompt token is decoded again: its logits pick the first token
        limit = len(tokens) - 1
        if donor is not None and min(lent, limit) > min(own, limit):
            reused = min(lent, limit)
            llama_cpp.llama_memory_seq_rm(memory, seq_id, -1, -1)
            llama_cpp.llama_memory_seq_cp(memory, donor.seq_id, seq_id, 0, reused)
        else:
            reused = min(own, limit)
            llama_cpp.llama_memory_seq_rm(memory, seq_id, reused, -1)
        self._held[seq_id] = []
        return seq_id, reused

    def cancel(self, request_id: int) -> None:
        sequence = self._running.pop(request_id, None)
        if sequence is not None:
            self._release(sequence)

    def step(self) -> list[Event]:
        """Decode one batch; return the text each sequence produced and those that ended."""
        if not self._running:
            return []
        with_logits = self._fill_batch()
        status = llama_cpp.llama_decode(self.context.ctx, self._batch)
        if status != 0:
            return self._fail_all(f"llama.cpp could not decode the batch (status {status})")
        events: list[Event] = []
        for index, sequence in with_logits:
            token = self._sample(sequence, index)
            events.extend(self._advance(sequence, token))
        return events

    def close(self) -> None:
        llama_cpp.llama_batch_free(self._batch)
        self.context.close()
        self.model.close()

    # the batch: one token of every decoding sequence, then prompt chunks in arrival order

    def _fill_batch(self) -> list[tuple[int, _Sequence]]:
        batch = self._batch
        capacity = self.context.params.n_batch
        n = 0
        with_logits: list[tuple[int, _Sequence]] = []
        for sequence in self._running.values():
            if not sequence.pending:
                self._put(n, sequence.last, sequence, True)
                with_logits.append((n, sequence))
                n += 1
        for sequence in self._running.values():
            if not sequence.pending or n >= capacity:
                continue
            chunk = sequence.pending[: min(PROMPT_CHUNK, capacity - n)]
            del sequence.pending[: len(chunk)]
            for i, token in enumerate(chunk):
                last = i == len(chunk) - 1 and not sequence.pending
                self._put(n, token, sequence, last)
                n += 1
            if not sequence.pending:
                with_logits.append((n - 1, sequence))
        batch.n_tokens = n
        return with_logits

    def _put(self, i: int, token: int, sequence: _Sequence, logits: bool) -> None:
        batch = self._batch
        batch.token[i] = token
        batch.pos[i] = sequence.position
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = sequence.seq_id
        batch.logits[i] = logits
        sequence.cached.append(token)
        sequence.position += 1

    # sampling

    def _sampler(self, request: GenerateRequest) -> LlamaSampler | None:
        if request.grammar is None and request.temperature == 0:
            return None  # greedy: numpy's argmax is all it takes
        sampler = LlamaSampler()
        if request.ignore_eos:
            sampler.add_logit_bias(self.n_vocab, {int(t): -math.inf for t in self._eog})
        if request.grammar is not None:
            grammar = llama_cpp.llama_sampler_init_grammar(
                self.model.vocab, request.grammar.encode(), b"root"
            )
            if grammar is None:
                raise ValueError("the grammar does not parse")
            llama_cpp.llama_sampler_chain_add(sampler.sampler, grammar)
        if request.temperature == 0:
            sampler.add_greedy()
        else:
            sampler.add_temp(request.temperature)
            sampler.add_dist(request.seed if request.seed is not None else 0xFFFFFFFF)
        return sampler

    def _sample(self, sequence: _Sequence, index: int) -> int:
        logits = None
        request = sequence.request
        scoring = bool(request.score) and not sequence.scores
        scoring = scoring and "".join(sequence.produced.split()) == request.score_after
        if request.logprobs or sequence.sampler is None or scoring:
            pointer = llama_cpp.llama_get_logits_ith(self.context.ctx, index)
            logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        if sequence.sampler is not None:
            token = int(sequence.sampler.sample(self.context, index))
        else:
            assert logits is not None
            if sequence.request.ignore_eos:
                logits[self._eog] = -np.inf
            token = int(np.argmax(logits))
        if logits is not None and (scoring or request.logprobs):
            top = float(logits.max())
            log_total = top + math.log(float(np.exp(logits - top).sum()))
            if scoring:
                sequence.scores = tuple(float(logits[t]) - log_total for t in request.score)
            if request.logprobs and token not in self._eog:
                sequence.logprobs.append(float(logits[token]) - log_total)
        return token

    def _advance(self, sequence: _Sequence, token: int) -> list[Event]:
        """Take the sampled token: stream its text, or end the sequence."""
        request = sequence.request
        if token in self._eog:
            return self._finish(sequence, "stop")
        sequence.generated += 1
        sequence.last = token
        piece = sequence.decoder.decode(self._pieces[token])
        sequence.text += piece
        sequence.produced += piece
        for stop in request.stop:
            at = sequence.text.find(stop)
            if at >= 0:
                sequence.text = sequence.text[:at]
                return self._finish(sequence, "stop")
        if sequence.generated >= request.max_tokens:
            return self._finish(sequence, "length")
        if sequence.position >= self.context_length:
            return self._finish(sequence, "length")
        # hold back a tail that may be the start of a stop string
        keep = max((len(s) - 1 for s in request.stop), default=0)
        ready = sequence.text[: len(sequence.text) - keep] if keep else sequence.text
        if not ready:
            return []
        sequence.text = sequence.text[len(ready) :]
        return [(sequence.request_id, ready)]

    def _finish(self, sequence: _Sequence, reason: str) -> list[Event]:
        events: list[Event] = []
        tail = sequence.text + sequence.decoder.decode(b"", final=True)
        if tail:
            events.append((sequence.request_id, tail))
        mean = sum(sequence.logprobs) / len(sequence.logprobs) if sequence.logprobs else None
        finished = Finished(sequence.generated, reason, mean, scores=sequence.scores)
        events.append((sequence.request_id, finished))
        del self._running[sequence.request_id]
        self._release(sequence)
        return events

    def _fail_all(self, error: str) -> list[Event]:
        """A batch llama.cpp could not decode ends every running sequence (their callers
        answer 503 and may retry), and the cache is emptied, held cells too: whatever did
        not fit is not tried again on the same cells."""
        events: list[Event] = []
        for sequence in list(self._running.values()):
            events.append((sequence.request_id, Finished(sequence.generated, "error", error=error)))
            del self._running[sequence.request_id]
            self._release(sequence, keep=False)
        llama_cpp.llama_memory_clear(self.context.memory, True)
        self._held = {s: [] for s in self._held}
        return events

    def _release(self, sequence: _Sequence, *, keep: bool = True) -> None:
        """Free the sequence; its cells stay for a next prompt that starts the same way."""
        self._held[sequence.seq_id] = sequence.cached if keep else []
        if not keep:
            llama_cpp.llama_memory_seq_rm(self.context.memory, sequence.seq_id, -1, -1)
        if sequence.sampler is not None:
            sequence.sampler.close()
        self._free_seq_ids.append(sequence.seq_id)


def _common(a: list[int], b: list[int]) -> int:
    """How many tokens two sequences share from their start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _piece(vocab: llama_cpp.llama_vocab_p, token: int) -> bytes:
    buffer = ctypes.create_string_buffer(64)
    n = llama_cpp.llama_token_to_piece(vocab, token, buffer, 64, 0, False)
    return buffer.raw[: max(n, 0)]
