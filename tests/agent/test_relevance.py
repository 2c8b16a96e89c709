"""The relevance decision on terse, oddly named functions, with the real bundled embedder."""

from __future__ import annotations

import numpy as np
import pytest

from milliwatt.agent.relevance import RelevanceJudge, arguments_fit, function_texts, name_words
from milliwatt.agent.relevance_features import described, echo, near_miss_probability, words
from milliwatt.models.base import ToolSpec
from milliwatt.models.embeddings import get_embedder


def spec(name: str, description: str, **props: str) -> ToolSpec:
    schema = {"type": "object", "properties": {p: {"type": t} for p, t in props.items()}}
    return ToolSpec(name, description, {**schema, "required": list(props)})


WEATHER = spec("weather_now", "Current conditions", location="string")
SMS = spec("sendSMS", "text msg", to="string", body="string")
CRYPTO = spec("crypto_px", "price", coin="string")
THERMO = spec("setThermo", "thermostat", temp="number")
# functions that describe themselves, as BFCL's do
BMI = spec(
    "calculate_bmi",
    "Calculate the body mass index of a person from weight and height.",
    weight="number",
    height="number",
)
LOAN = spec(
    "loan.monthly_payment",
    "Monthly payment of a fixed-rate loan from its principal, annual interest rate and term.",
    principal="number",
    rate="number",
    years="integer",
)
FLIGHTS = spec(
    "flights.search",
    "Search for flights between two airports on a given date.",
    origin="string",
    destination="string",
    date="string",
)


@pytest.fixture(scope="module")
def judge() -> RelevanceJudge:
    return RelevanceJudge(get_embedder().embed)


def test_names_are_read_as_words() -> None:
    assert name_words("getCurrentWeather") == "get current weather"
    assert name_words("weather.get_now") == "weather get now"
    assert name_words("Restaurants_2_Reserve") == "restaurants 2 reserve"
    assert function_texts(SMS) == ["send sms: text msg", "send sms to body"]


def test_content_words_and_echo() -> None:
    assert words("What's the area of a Triangle?") == ["area", "triangle"]
    assert words("getStockQuote") == ["stock", "quote"]  # 'get' says how, not what
    # calculate_bmi's own words: bmi, body, mass, index, person, weight, height
    assert echo("my weight is 70 and my height 1.8", BMI) == pytest.approx(2 / 7)
    assert echo("weights and heights", BMI) == pytest.approx(2 / 7)  # by stem
    assert echo("write a poem", BMI) == 0.0
    roots = spec("find_roots", "Find the roots of a quadratic equation", a="number")
    assert echo("roots of a linear equation", roots) == pytest.approx(2 / 3)  # not quadratic
    assert described(BMI) and described(FLIGHTS)
    assert not described(WEATHER) and not described(SMS)  # "Current conditions", "text msg"


def test_the_probability_grows_with_each_kind_of_evidence() -> None:
    base = near_miss_probability(0.4, 0.1, True, 0.2)
    assert near_miss_probability(0.6, 0.1, True, 0.2) > base
    assert near_miss_probability(0.4, 0.3, True, 0.2) > base
    assert near_miss_probability(0.4, 0.1, True, 0.6) > base
    assert near_miss_probability(0.4, 0.1, False, 0.2) < base
    assert 0.0 < near_miss_probability(0.0, -1.0, False, 0.0) < 0.01
    assert 0.99 < near_miss_probability(0.9, 0.6, True, 1.0) < 1.0


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


@pytest.mark.parametrize(
    ("request_text", "function"),
    [
        # interest on savings is not a loan's monthly payment
        ("How much interest will 1000 dollars earn in a savings account at 2% in 3 years?", LOAN),
        ("Which airline has the most legroom?", FLIGHTS),
        ("How many calories did I burn running 5 km?", BMI),
    ],
)
def test_near_misses_are_declined_where_the_margin_alone_lets_them_through(
    judge: RelevanceJudge, request_text: str, function: ToolSpec
) -> None:
    [judged] = judge.judge(request_text, [function])
    assert judged.verdict == "decline" and judged.meant is not None, judged
    assert judged.margin > judge.decline_margin  # above the margin floor: a near miss
    margin_only = RelevanceJudge(get_embedder().embed, decline_below=None)
    assert margin_only.judge(request_text, [function])[0].verdict != "decline"


@pytest.mark.parametrize(
    ("request_text", "function"),
    [
        ("What is my BMI if I weigh 70 kg and am 1.8 m tall?", BMI),
        ("What would I pay each month on a 200000 loan at 5% over 30 years?", LOAN),
        ("Find flights from SFO to JFK on June 3", FLIGHTS),
    ],
)
def test_described_functions_meant_by_the_request_are_not_declined(
    judge: RelevanceJudge, request_text: str, function: ToolSpec
) -> None:
    [judged] = judge.judge(request_text, [function])
    assert judged.meant is not None and judge.decline_below is not None
    assert judged.meant >= judge.decline_below
    assert judged.verdict != "decline", judged


def test_terse_functions_are_judged_by_the_margin_alone(judge: RelevanceJudge) -> None:
    """The near-miss weights were fit on functions that describe themselves; a terse one
    echoes few words of any request, so only the margin can decline it."""
    [judged] = judge.judge("how much is bitcoin worth today?", [CRYPTO])
    assert judged.meant is None and judged.echo == 0.0 and judged.verdict != "decline"


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
    assert judge.verdict(0.3, fits=True, meant=0.9) == "call"
    assert judge.verdict(0.3, fits=True, meant=0.2) == "decline"  # a near miss
    assert judge.verdict(0.3, fits=True, meant=None) == "call"  # terse: the margin decides
    lenient = RelevanceJudge(lambda texts: np.eye(len(texts), 4), decline_below=None)
    assert lenient.verdict(0.3, fits=True, meant=0.01) == "ask"


def test_bad_settings_and_requests_are_refused(judge: RelevanceJudge) -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        RelevanceJudge(get_embedder().embed, call_margin=0.0, decline_margin=0.1)
    with pytest.raises(ValueError, match="must be a probability"):
        RelevanceJudge(get_embedder().embed, decline_below=1.5)
    with pytest.raises(ValueError, match="at least one function"):
        RelevanceJudge(get_embedder().embed, background=())
    with pytest.raises(ValueError, match="request is empty"):
        judge.judge("  ", [SMS])
    assert judge.judge("hello", []) == []
