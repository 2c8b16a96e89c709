"""A model's configured settings are given to its backend when it is built."""

from __future__ import annotations

from milliwatt.config import ModelConfig
from milliwatt.models.base import ModelSettings
from milliwatt.models.fake import FakeModel
from milliwatt.models.loader import load_model


def test_configured_settings_reach_the_built_model() -> None:
    config = ModelConfig(
        backend="openai",
        base_url="http://127.0.0.1:9/v1",
        max_tokens=77,
        joules_per_token=0.25,
        ignore_eos=True,
    )
    model = load_model("remote", config)
    assert (model.max_tokens, model.joules_per_token, model.ignore_eos) == (77, 0.25, True)


def test_a_backend_built_without_settings_has_the_defaults() -> None:
    model = FakeModel(lambda messages, tools: "hi")
    assert (model.max_tokens, model.joules_per_token, model.ignore_eos) == (512, 0.5, False)
    tuned = FakeModel(lambda messages, tools: "hi", settings=ModelSettings(max_tokens=8))
    assert tuned.max_tokens == 8
