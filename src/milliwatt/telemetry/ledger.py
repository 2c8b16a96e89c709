"""The cost ledger: one entry per step of a request (router, model call, tool call).

Joules are estimates and are labelled so everywhere: a local step costs the CPU seconds
it used times a configured watts-per-core figure; a remote model call costs its tokens
times a configured joules-per-token figure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StepKind = Literal["router", "model", "tool"]


@dataclass
class LedgerEntry:
    kind: StepKind
    name: str
    ms: float = 0.0
    cpu_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    joules_est: float = 0.0
    denied: str | None = None  # a tool call the information-flow policy refused: why
    # for the step's trace span: the model's backend, why its reply ended, when it ran
    system: str | None = None
    finish_reason: str | None = None
    ok: bool = True
    started_ns: int = 0
    ended_ns: int = 0


@dataclass
class Ledger:
    watts_per_core: float
    entries: list[LedgerEntry] = field(default_factory=list)

    @contextmanager
    def step(self, kind: StepKind, name: str) -> Iterator[LedgerEntry]:
        """Time a step; CPU time is the whole process's, which includes llama.cpp's threads.
        Its wall-clock start and end become its trace span later, off the request's path."""
        entry = LedgerEntry(kind, name)
        entry.started_ns = time.time_ns()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield entry
        finally:
            entry.ms = (time.perf_counter() - wall) * 1000
            entry.cpu_seconds = time.process_time() - cpu
            entry.ended_ns = entry.started_ns + int(entry.ms * 1e6)
            if entry.joules_est == 0.0:  # a remote step sets its own token-based figure
                entry.joules_est = entry.cpu_seconds * self.watts_per_core
            self.entries.append(entry)

    @property
    def prompt_tokens(self) -> int:
        return sum(e.prompt_tokens for e in self.entries)

    @property
    def completion_tokens(self) -> int:
        return sum(e.completion_tokens for e in self.entries)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def model_calls(self) -> int:
        return sum(1 for e in self.entries if e.kind == "model")

    @property
    def ms(self) -> float:
        return sum(e.ms for e in self.entries)

    @property
    def joules_est(self) -> float:
        return sum(e.joules_est for e in self.entries)

    def summary(self) -> dict[str, Any]:
        return {
            "ms": round(self.ms, 3),
            "joules_est": round(self.joules_est, 6),
            "steps": [asdict(e) for e in self.entries],
        }
