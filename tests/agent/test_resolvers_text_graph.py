"""Text and graph resolvers: the text to work on must be unmistakable; routes need a graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from milliwatt.agent.resolvers.common import Request
from milliwatt.agent.resolvers.graph import GraphResolver
from milliwatt.agent.resolvers.text import TextResolver
from milliwatt.tools.graph import load
from milliwatt.tools.registry import ToolContext


def text(request: str) -> tuple[str, dict[str, object]] | None:
    found = TextResolver().match(Request.of(request), ToolContext())
    return None if found is None else (found.tool, found.arguments)


@pytest.mark.parametrize(
    ("request_text", "tool", "arguments"),
    [
        ("how many r's in strawberry", "text.count", {"text": "strawberry", "substring": "r"}),
        ("How many r's are in strawberry?", "text.count", {"text": "strawberry", "substring": "r"}),
        (
            "how many times does the letter s appear in Mississippi",
            "text.count",
            {"text": "Mississippi", "substring": "s"},
        ),
        ("count the a's in banana", "text.count", {"text": "banana", "substring": "a"}),
        (
            "how many o's are in 'bookkeeper'",
            "text.count",
            {"text": "bookkeeper", "substring": "o"},
        ),
        ("how many z's in pizza?", "text.count", {"text": "pizza", "substring": "z"}),
        (
            "how many times does 'the' appear in 'the cat saw the other cat'",
            "text.count",
            {"text": "the cat saw the other cat", "substring": "the"},
        ),
        ("How many letters are in the word encyclopedia?", "text.stats", {"text": "encyclopedia"}),
        ("how many words are in 'one two three'", "text.stats", {"text": "one two three"}),
        ('how many characters are in "hello world"', "text.stats", {"text": "hello world"}),
        (
            "count the number of words in: To be or not to be",
            "text.stats",
            {"text": "To be or not to be"},
        ),
        (
            "extract the email addresses from: mail a@b.io now",
            "text.extract",
            {"text": "mail a@b.io now", "kind": "emails"},
        ),
        (
            "find all URLs in this text: see https://x.org",
            "text.extract",
            {"text": "see https://x.org", "kind": "urls"},
        ),
        (
            "list the phone numbers in: call (415) 555-2671",
            "text.extract",
            {"text": "call (415) 555-2671", "kind": "phone_numbers"},
        ),
        (
            "find all matches of /\\d{3}/ in: codes 123 and 6789",
            "text.regex",
            {"pattern": "\\d{3}", "text": "codes 123 and 6789"},
        ),
        (
            "find matches for `[A-Z]+` in ABC def GHI",
            "text.regex",
            {"pattern": "[A-Z]+", "text": "ABC def GHI"},
        ),
        (
            "In the word 'banana', how many a's are there?",
            "text.count",
            {"text": "banana", "substring": "a"},
        ),
        (
            "how many times does the word 'the' appear in 'the cat and the hat'",
            "text.count",
            {"text": "the cat and the hat", "substring": "the"},
        ),
        ("what is the length of 'hello world'", "text.stats", {"text": "hello world"}),
        ('how long is the string "abc"', "text.stats", {"text": "abc"}),
        ("how long is: hello world in characters", "text.stats", {"text": "hello world"}),
        ("how many letters does the word strawberry have", "text.stats", {"text": "strawberry"}),
    ],
)
def test_text_requests(request_text: str, tool: str, arguments: dict[str, object]) -> None:
    assert text(request_text) == (tool, arguments)


@pytest.mark.parametrize(
    "request_text",
    [
        "convert this text to uppercase please",
        "how many words should an essay have",
        "how many letters are in the alphabet",
        "how many words are in this sentence",
        "how many people live in Paris",
        "how many r's should I roll when speaking Spanish",
        "extract the meaning from this poem",
        "find all matches in my inbox",
        "count to 10",
        "how many syllables in banana",
        "reverse the word hello",
    ],
)
def test_text_near_misses(request_text: str) -> None:
    assert text(request_text) is None


def test_a_count_sentence_names_the_word() -> None:
    found = TextResolver().match(Request.of("how many r's in strawberry"), ToolContext())
    assert found is not None
    assert found.sentence({"substring": "r", "count": 3}) == (
        "3 — 'r' occurs 3 times in 'strawberry'."
    )


def test_graph_resolver_answers_only_for_nodes_of_a_loaded_graph(tmp_path: Path) -> None:
    context = ToolContext(user="ada", data_dir=tmp_path)
    resolver = GraphResolver()
    question = Request.of("what is the shortest route from Oslo to Rome")
    assert resolver.match(question, context) is None  # nothing loaded yet
    edges = [
        {"source": "Oslo", "target": "Berlin", "weight": 8.5},
        {"source": "Berlin", "target": "Rome", "weight": 11},
    ]
    assert load.call({"edges": edges}, context).ok
    found = resolver.match(question, context)
    assert found is not None
    assert (found.tool, found.arguments) == (
        "graph.shortest_path",
        {"source": "Oslo", "target": "Rome"},
    )
    for other in (
        "how far is it from oslo to berlin",
        "distance between Berlin and Oslo",
        "how do I get from Rome to Oslo",
        "how far is Rome from Oslo",
        "what's the fastest way to get from Oslo to Rome",
        "shortest distance between city Oslo and city Rome",
    ):
        assert resolver.match(Request.of(other), context) is not None, other
    for miss in (
        "shortest route from Oslo to Paris",
        "tell me about Oslo and Rome",
        "what is the distance from the sun to the moon",
    ):
        assert resolver.match(Request.of(miss), context) is None, miss
