"""The model worker process with the bundled model: batching, cancelling, crashing."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from milliwatt.models import llamacpp_engine
from milliwatt.models.base import GenerationCancelled, ModelError, ModelUnavailableError
from milliwatt.models.llamacpp_engine import BatchEngine, Finished, GenerateRequest
from milliwatt.models.worker import ModelWorker, WorkerSpec
from milliwatt.models.worker_process import WORKER_NICENESS

pytestmark = pytest.mark.slow

STORY = "Write a long story about a lighthouse keeper and a storm."


@pytest.fixture(scope="module")
def tokenize(bundled_model_path: Path):  # type: ignore[no-untyped-def]
    from llama_cpp import Llama

    vocab = Llama(str(bundled_model_path), vocab_only=True, verbose=False)

    def chat(text: str) -> list[int]:
        prompt = f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"
        return vocab.tokenize(prompt.encode(), add_bos=False, special=True)

    yield chat
    vocab.close()


@pytest.fixture
def worker(bundled_model_path: Path) -> Iterator[ModelWorker]:
    spec = WorkerSpec(bundled_model_path, parallel=4, context_length=1024, threads=2)
    worker = ModelWorker(spec, name="smollm2-135m")
    yield worker
    worker.close()


def _text(events: Iterator[str | Finished]) -> tuple[str, Finished]:
    pieces = []
    for event in events:
        if isinstance(event, Finished):
            return "".join(pieces), event
        pieces.append(event)
    raise AssertionError("the stream ended without Finished")


def test_sequences_decoded_together_say_what_each_says_alone(worker, tokenize) -> None:  # type: ignore[no-untyped-def]
    prompts = [STORY, "Name three colours.", "What is a lighthouse?", "Say hello."]
    alone = [_text(worker.generate(GenerateRequest(tokenize(p), 24)))[0] for p in prompts]
    together: dict[int, str] = {}

    def run(i: int) -> None:
        together[i] = _text(worker.generate(GenerateRequest(tokenize(prompts[i]), 24)))[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    # batched matrix kernels add up in another order, so a near tie may later go the other
    # way; a sequence that saw another's prompt, or a broken kernel, differs from the start
    for i, text in enumerate(alone):
        assert text and together[i][:24] == text[:24], (prompts[i], text, together[i])


def test_a_prompt_read_in_one_batch_continues_as_one_read_token_by_token(
    bundled_model_path: Path, tokenize, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Guards the llama.cpp build itself: a matrix kernel that is wrong for batches of
    tokens (as the AMX path of some builds is) changes what the model says."""
    prompt = tokenize(" ".join([STORY] * 8))
    assert len(prompt) > 64

    def greedy(chunk: int) -> str:
        monkeypatch.setattr(llamacpp_engine, "PROMPT_CHUNK", chunk)
        engine = BatchEngine(bundled_model_path, parallel=1, context_length=512, threads=2)
        try:
            engine.submit(1, GenerateRequest(prompt, 16))
            pieces = []
            while not engine.idle:
                pieces += [e for _, e in engine.step() if isinstance(e, str)]
            return "".join(pieces)
        finally:
            engine.close()

    assert greedy(256) == greedy(1)


def test_a_caller_that_stops_reading_frees_its_slot(bundled_model_path: Path, tokenize) -> None:  # type: ignore[no-untyped-def]
    spec = WorkerSpec(bundled_model_path, parallel=1, context_length=1024, threads=2)
    worker = ModelWorker(spec, name="one-slot")
    try:
        stream = worker.generate(GenerateRequest(tokenize(STORY), 400, ignore_eos=True))
        assert isinstance(next(stream), str)
        stream.close()
        started = time.monotonic()
        text, finished = _text(worker.generate(GenerateRequest(tokenize("Say hello."), 8)))
        assert time.monotonic() - started < 5
        assert text and finished.reason in {"stop", "length"}
        assert worker.status()["running"] == 0
    finally:
        worker.close()


def test_the_worker_yields_the_cpu_to_the_gateway(worker) -> None:  # type: ignore[no-untyped-def]
    # the model's threads run at the lowest priority, under the idle policy (both inherited
    # from the worker's main thread, set before llama.cpp starts them)
    tasks = list(Path(f"/proc/{worker.pid}/task").iterdir())
    assert len(tasks) > 1  # llama.cpp's threads are among them
    for task in tasks:
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        assert int(fields[16]) == WORKER_NICENESS, task.name  # field 19 of stat: nice
        assert os.sched_getscheduler(int(task.name)) == os.SCHED_IDLE, task.name
    assert os.nice(0) < WORKER_NICENESS  # this process, the gateway's side, is not lowered
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_a_cancelled_caller_stops_within_a_moment(worker, tokenize) -> None:  # type: ignore[no-untyped-def]
    cancel = threading.Event()
    stream = worker.generate(GenerateRequest(tokenize(STORY), 900, ignore_eos=True), cancel=cancel)
    assert isinstance(next(stream), str)
    cancel.set()
    started = time.monotonic()
    with pytest.raises(GenerationCancelled):
        for _ in stream:
            pass
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_worker_killed_mid_generation_fails_that_call_and_comes_back(
    worker, tokenize, sig: signal.Signals
) -> None:  # type: ignore[no-untyped-def]
    stream = worker.generate(GenerateRequest(tokenize(STORY), 900, ignore_eos=True))
    assert isinstance(next(stream), str)
    os.kill(worker.pid, sig)
    with pytest.raises(ModelError, match=f"killed by {sig.name}"):
        for _ in stream:
            pass
    with pytest.raises(ModelUnavailableError):  # while it restarts: 503 + Retry-After
        next(worker.generate(GenerateRequest(tokenize("Say hello."), 8)))
    deadline = time.monotonic() + 60
    while worker.status()["state"] != "ready":
        assert time.monotonic() < deadline, worker.status()
        time.sleep(0.1)
    text, _ = _text(worker.generate(GenerateRequest(tokenize("Say hello."), 8)))
    assert text
    assert worker.status()["restarts"] == 1
    assert worker.status()["last_exit"] == f"was killed by {sig.name}"


def test_a_prompt_that_starts_as_another_reads_only_its_new_part(
    bundled_model_path: Path, tokenize
) -> None:  # type: ignore[no-untyped-def]
    engine = BatchEngine(bundled_model_path, parallel=2, context_length=512, threads=2)

    def run(request_id: int, tokens: list[int]) -> str:
        engine.submit(request_id, GenerateRequest(tokens, 12))
        pieces = []
        while not engine.idle:
            pieces += [e for _, e in engine.step() if isinstance(e, str)]
        return "".join(pieces)

    try:
        first = run(1, tokenize(STORY))
        assert engine.reused_tokens == 0
        again = run(2, tokenize(STORY))  # the same prompt: its cells are still held
        assert again == first
        assert engine.reused_tokens == len(tokenize(STORY)) - 1
        # a running sequence lends the beginning both prompts share
        engine.submit(3, GenerateRequest(tokenize(STORY + " Make it sad."), 40))
        engine.step()
        before = engine.reused_tokens
        engine.submit(4, GenerateRequest(tokenize(STORY + " Make it happy."), 40))
        assert engine.reused_tokens - before >= len(tokenize(STORY)) - 4
    finally:
        engine.close()


def test_a_batch_llama_cpp_refuses_fails_its_sequences_and_the_next_one_works(
    bundled_model_path: Path, tokenize
) -> None:  # type: ignore[no-untyped-def]
    engine = BatchEngine(bundled_model_path, parallel=2, context_length=256, threads=2)
    try:
        engine.submit(1, GenerateRequest([engine.n_vocab + 7], 4))  # no such token
        events = engine.step()
        assert [(i, e.reason) for i, e in events if isinstance(e, Finished)] == [(1, "error")]
        assert engine.idle
        engine.submit(2, GenerateRequest(tokenize("Say hello."), 6))
        pieces = []
        while not engine.idle:
            pieces += [e for _, e in engine.step() if isinstance(e, str)]
        assert "".join(pieces).strip()
    finally:
        engine.close()
