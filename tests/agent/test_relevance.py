"""The relevance decision on terse, oddly named functions, with the real bundled embedder."""

from __future__ import annotations

import numpy as np
import pytest

from milliwatt.agent.relevance import RelevanceJudge, arguments_fit, function_texts, name_words
from milliwatt.models.base import ToolSpec
from milliwatt.models.embeddings import get_embedder


def spec(name: str, description: str, **props: str) -> ToolSpec:
    schema = {"type": "object", "properties": {p: {"type": t} for p, t in props.items()}}
    return ToolSpec(name, description, {**schema, "required": list(props)})


WEATHER = spec("weather_now", "Current conditions", location="string")
SMS = spec("sendSMS", "text msg", to="string", body="string")
CRYPTO = spec("crypto_px", "price", coin="string")
THERMO = spec("setThermo", "thermostat", temp="number")


@pytest.fixture(scope="module")
def judge() -> RelevanceJudge:
    return RelevanceJudge(get_embedder().embed)


def test_names_are_read_as_words() -> None:
    assert name_words("getCurrentWeather") == "get current weather"
    assert name_words("weather.get_now") == "weather get now"
    assert name_words("Restaurants_2_Reserve") == "restaurants 2 reserve"
    assert function_texts(SMS) == ["send sms: text msg", "send sms to body"]


def test_required_numbers_need_a_number_in_the_request() -> None:
    assert arguments_fit("make it twenty one degrees", THERMO)  # number words count
    assert not arguments_fit("make it warmer", THERMO)
    assert arguments_fit("anything at all", SMS)  # strings can come from any words


@pytest.mark.parametrize(
    ("request_text", "function"),
    [
        ("is it raining in Seattle right now?", WEATHER),
        ("text Bob that I'm running late", SMS),
        ("how much is bitcoin worth today?", CRYPTO),
        ("make it 21 degrees in the house", THERMO),
    ],
)
def test_terse_functions_meant_by_the_request_are_not_declined(
    judge: RelevanceJudge, request_text: str, function: ToolSpec
) -> None:
    """Scores of 0.4-0.5 here: an absolute gate at 0.45 declined half of them."""
    [judged] = judge.judge(request_text, [function])
    assert judged.verdict != "decline", judged


@pytest.mark.parametrize(
    ("request_text", "function"),
    [
        ("write me a limerick about cats", CRYPTO),
        ("translate hello into German", WEATHER),
        ("book a table for two tonight", THERMO),
    ],
)
def test_requests_no_function_serves_are_declined(
    judge: RelevanceJudge, request_text: str, function: ToolSpec
) -> None:
    [judged] = judge.judge(request_text, [function])
    assert judged.verdict == "decline", judged


def test_the_best_candidate_is_ranked_first_and_the_others_declined(
    judge: RelevanceJudge,
) -> None:
    ranked = judge.judge("how much is bitcoin worth today?", [SMS, WEATHER, CRYPTO])
    assert ranked[0].name == "crypto_px"
    assert ranked[0].verdict != "decline"
    assert all(r.verdict == "decline" for r in ranked[1:])
    assert ranked[0].margin > ranked[1].margin


def test_the_verdict_follows_the_margins() -> None:
    judge = RelevanceJudge(lambda texts: np.eye(len(texts), 4), call_margin=0.2, decline_margin=0.0)
    assert judge.verdict(0.3, fits=True) == "call"
    assert judge.verdict(0.1, fits=True) == "ask"
    assert judge.verdict(-0.1, fits=True) == "decline"
    assert judge.verdict(0.1, fits=False) == "decline"  # unsure, and its numbers are missing
    assert judge.verdict(0.3, fits=False) == "ask"


def test_bad_settings_and_requests_are_refused(judge: RelevanceJudge) -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        RelevanceJudge(get_embedder().embed, call_margin=0.0, decline_margin=0.1)
    with pytest.raises(ValueError, match="at least one function"):
        RelevanceJudge(get_embedder().embed, background=())
    with pytest.raises(ValueError, match="request is empty"):
        judge.judge("  ", [SMS])
    assert judge.judge("hello", []) == []
