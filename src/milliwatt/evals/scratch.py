"""An agent for an evaluation run: the configured models, a scratch data directory.

Tools that keep state (calendar, memory) write to a temporary directory, not the user's, and
one-off loading happens before the first row, so it is not counted as a row's cost.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from milliwatt.agent.runner import Agent
from milliwatt.agent.runtime import Runtime
from milliwatt.config import AgentConfig, Settings


@contextmanager
def scratch_agent(settings: Settings, config: AgentConfig, **model_options: Any) -> Iterator[Agent]:
    """`config` as the only agent; `model_options` (threads, max_tokens) override every
    model's configuration where given (None leaves it)."""
    update = {k: v for k, v in model_options.items() if v is not None}
    with tempfile.TemporaryDirectory(prefix="milliwatt-eval-") as scratch:
        models = {n: m.model_copy(update=update) for n, m in settings.models.items()}
        eval_settings = settings.model_copy(
            update={"data_dir": Path(scratch), "agents": [config], "models": models}
        )
        runtime = Runtime(eval_settings)
        try:
            agent = runtime.agent(config.name)
            agent.warm()
            yield agent
        finally:
            runtime.close()
