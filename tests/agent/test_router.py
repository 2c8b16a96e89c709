"""The router end to end: real tools, real registry, the shipped workload, near-misses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from milliwatt.agent.router import Router, ToolAnswer
from milliwatt.evals.frugal import Outcome, default_workload, load_rows, score
from milliwatt.tools import arithmetic, dates, graph, scheduling, text, units
from milliwatt.tools.registry import ToolContext, ToolRegistry

FAMILIES = (arithmetic, units, dates, text, graph, scheduling)


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return ToolRegistry(t for family in FAMILIES for t in family.TOOLS)


@pytest.fixture(scope="module")
def router(registry: ToolRegistry) -> Router:
    routed = Router(registry)
    routed.warm()
    return routed


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    return ToolContext(user="ada", data_dir=tmp_path)


def test_tool_answer_shape(router: Router, context: ToolContext) -> None:
    found = router.resolve("convert 26.2 miles to km", context)
    assert isinstance(found, ToolAnswer)
    assert (found.tool, found.route, found.tokens, found.error) == (
        "units.convert",
        "tool",
        0,
        None,
    )
    assert found.arguments == {"value": 26.2, "from_unit": "miles", "to_unit": "km"}
    assert found.value["result"] == pytest.approx(42.1648128)
    assert found.answer == "26.2 miles = 42.1648128 kilometers"


def test_callable_form_for_the_agent_loop(router: Router, context: ToolContext) -> None:
    assert router("what is 234 * 567", context) == (
        "234 * 567 = 132678",
        "math.calculate",
        {"expression": "234 * 567"},
    )
    assert router("tell me a story", context) is None


def test_only_tools_in_the_registry_answer(registry: ToolRegistry, context: ToolContext) -> None:
    math_only = Router(registry.subset(["math.calculate"]))
    assert math_only.resolve("what is 2 + 2", context) is not None
    assert math_only.resolve("convert 26.2 miles to km", context) is None
    assert math_only.resolve("how many r's in strawberry", context) is None
    nothing = Router(ToolRegistry())
    assert nothing.resolve("what is 2 + 2", context) is None
    # a family with some of its tools: the missing one is never called
    weekday_only = Router(registry.subset(["dates.weekday"]))
    assert weekday_only.resolve("is 2024 a leap year", context) is None
    assert weekday_only.resolve("what day of the week was July 4, 1776", context) is not None


def test_a_refusal_is_the_answer_for_arithmetic(router: Router, context: ToolContext) -> None:
    for hostile in ("what is 9**9**9**9", "what is 1/0", "factorial of 100000"):
        found = router.resolve(hostile, context)
        assert found is not None and found.error is not None
        assert found.answer.startswith("That cannot be computed")


def test_a_bad_user_pattern_is_explained(router: Router, context: ToolContext) -> None:
    found = router.resolve(r"find all matches of /(\w)\1/ in: aa bb", context)
    assert found is not None and found.tool == "text.regex"
    assert found.answer.startswith("That pattern cannot be used: invalid regular expression")


def test_a_refusal_elsewhere_sends_the_request_to_the_model(
    router: Router, context: ToolContext
) -> None:
    # the regex tool refuses; its error is shown; a date out of range is a misreading
    assert router.resolve("what date is 1 day after December 31, 9999", context) is None


@pytest.mark.parametrize("text", ["", " ", "?", "x" * 5000, "2+2" * 1000])
def test_empty_and_oversized_requests_go_to_the_model(
    router: Router, context: ToolContext, text: str
) -> None:
    assert router.resolve(text, context) is None


NEAR_MISSES = [
    "tell me a story about 3 apples",
    "what is the meaning of 42",
    "how many people live in Paris",
    "convert this text to uppercase please",
    "write a poem with 4 lines about 2 cats",
    "who won the 2018 world cup",
    "what happened in 1969",
    "explain why 0.1 + 0.2 is not 0.3 in floating point",
    "I have 3 apples and eat 2, how many are left?",
    "If a train travels 60 miles in 1.5 hours, what is its speed?",
    "what is 42",
    "What is 42?",
    "42",
    "what is pi",
    "what is x + 5",
    "solve x + 5 = 12",
    "is 5 > 3",
    "what's 2 + 2 in roman numerals",
    "what is 3 of 4",
    "what's 2 plus 2 minus the meaning of life",
    "what is 10 times better than 5",
    "how do I calculate 15% tip",
    "top 10 movies of 2020",
    "call me at 555-1234",
    "my pin is 1234",
    "what is 5 dollars in euros",
    "convert 100 USD to EUR",
    "convert my resume into a cover letter",
    "convert this recipe to serve 4 people",
    "how many days in a year",
    "how many weeks are in a year",
    "how many days are in february",
    "how many calories are in a banana",
    "how many moons does Jupiter have",
    "how many legs does a spider have",
    "how many hours of sleep do I need",
    "how many minutes should I boil an egg",
    "how many letters are in the alphabet",
    "how many words should an essay have",
    "how many r's should I roll when speaking Spanish",
    "how tall is Mount Everest in feet",
    "is 100 degrees hot",
    "is 13 an unlucky number",
    "name 3 prime numbers",
    "what are the prime numbers between 1 and 20",
    "is 2024 going to be a good year?",
    "what time is it",
    "what day is it at the office",
    "what time does the sun rise in Tokyo",
    "what is the date of Easter 2027",
    "what day of the week is my birthday",
    "how many days until my vacation",
    "what is the distance from Paris to London",
    "shortest route from Berlin to Munich",
    "book a meeting tomorrow at 10",
    "cancel all my meetings",
    "what is 2 + 2 in binary",
    "what is 1e6 in binary",  # scientific notation, not the hex digits 1e6
    "what is the 3rd planet from the sun",
    "what does error 404 mean",
    "what's the square root of my problems",
    "give me the sum of all human knowledge",
    "the average person sleeps 8 hours",
    "count to 10",
    "extract the meaning from this poem",
    "find all matches in my inbox",
    "1 + 1 = 3 is wrong, right?",
    "hello",
    "thanks!",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_go_to_the_model(router: Router, context: ToolContext, text: str) -> None:
    found = router.resolve(text, context)
    assert found is None, (
        f"{text!r} was answered by {found and found.tool}: {found and found.answer}"
    )


def test_graph_routes_need_a_loaded_graph(router: Router, context: ToolContext) -> None:
    question = "what is the shortest path from A to D"
    assert router.resolve(question, context) is None
    edges = [
        {"source": "A", "target": "B", "weight": 4},
        {"source": "A", "target": "C", "weight": 1},
        {"source": "C", "target": "B", "weight": 2},
        {"source": "B", "target": "D", "weight": 5},
    ]
    assert graph.load.call({"edges": edges}, context).ok
    found = router.resolve(question, context)
    assert found is not None and found.tool == "graph.shortest_path"
    assert found.answer == "Shortest path: A -> C -> B -> D (distance 8, 3 hops)."
    assert router.resolve("shortest path from A to Zanzibar", context) is None
    other_user = ToolContext(user="bob", data_dir=context.data_dir)
    assert router.resolve(question, other_user) is None


def test_shipped_workload_precision_and_recall(router: Router, tmp_path: Path) -> None:
    rows = load_rows(default_workload())
    assert len(rows) >= 300
    assert sum(r.route == "model" for r in rows) >= 80
    context = ToolContext(user="eval", data_dir=tmp_path)

    def answer(prompt: str) -> Outcome:
        found = router.resolve(prompt, context)
        return Outcome("model", "") if found is None else Outcome("tool", found.answer, found.tool)

    report = score(rows, answer)
    problems = [(m.prompt, m.expected, m.answer) for m in report.wrong_answers + report.intruded]
    assert report.precision >= 0.99, problems
    assert report.recall >= 0.90, [m.prompt for m in report.missed]


_LONG = 1990
HOSTILE = [
    "what is " + "1" * _LONG,
    "what is " + "1+" * (_LONG // 2),
    "what is " + "(" * (_LONG // 2) + "1" + ")" * (_LONG // 2),
    "what is the sum of " + "1," * (_LONG // 2) + "x",
    "what is " + "2 squared " * (_LONG // 10),
    "what is " + "1% of " * (_LONG // 6) + "2",
    "average of " + "1 and " * (_LONG // 6) + "2",
    "how many times does '" + "a' " * (_LONG // 3),
    "count the occurrences of 'a' in '" + "'a" * (_LONG // 2),
    "how many words are in: " + "'" * _LONG,
    "convert 5 " + "km " * (_LONG // 3) + "to m",
    "how many days between " + "1 " * (_LONG // 2) + "and 2",
    "what is 3pm in " + "new york " * (_LONG // 9) + "in tokyo",
    "shortest path from " + "a " * (_LONG // 2) + "to b",
    "find all matches of /" + "a/" * (_LONG // 2) + " in: x",
    "one " * (_LONG // 4),
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_long_crafted_requests_cannot_stall_the_router(
    router: Router, context: ToolContext, text: str
) -> None:
    # a hang guard, not a speed figure (bench/router.py measures speed): the patterns are
    # possessive or bounded, so even 2,000-character inputs take milliseconds
    started = time.process_time()
    router.resolve(text, context)
    assert time.process_time() - started < 2.0


def test_a_failing_resolver_or_tool_hands_the_request_to_the_model(
    registry: ToolRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        tools = frozenset({"math.calculate"})

        def match(self, request: object, context: object) -> None:
            raise RuntimeError("bug")

    assert Router(registry, [Broken()]).resolve("what is 2 + 2") is None
    assert "resolver Broken failed" in caplog.text
    # the graph database is not a database: the tool raises, the model answers
    (tmp_path / "graphs.sqlite").write_bytes(b"not a database" * 100)
    damaged = ToolContext(user="ada", data_dir=tmp_path)
    assert Router(registry).resolve("shortest path from A to D", damaged) is None
