"""text.*: counting, extraction, and user regular expressions that cannot hang."""

from __future__ import annotations

import time
from typing import Any

import pytest

from milliwatt.tools.registry import ToolResult
from milliwatt.tools.text import count, extract, regex, stats


def ok(outcome: ToolResult) -> Any:
    assert outcome.ok, outcome.error
    return outcome.value


@pytest.mark.parametrize(
    ("text", "substring", "expected"),
    [
        ("strawberry", "r", 3),
        ("Mississippi", "s", 4),
        ("Mississippi", "S", 4),
        ("banana", "a", 3),
        ("The cat and the hat", "the", 2),
        ("aaa", "b", 0),
        ("naïve café", "é", 1),
    ],
)
def test_count(text: str, substring: str, expected: int) -> None:
    assert ok(count.call({"text": text, "substring": substring}))["count"] == expected


def test_count_case_sensitive_and_overlapping() -> None:
    assert ok(count.call({"text": "Aa", "substring": "a", "case_sensitive": True}))["count"] == 1
    value = ok(count.call({"text": "banana", "substring": "ana"}))
    assert (value["count"], value["overlapping_count"]) == (1, 2)
    assert "must not be empty" in (count.call({"text": "x", "substring": ""}).error or "")


def test_stats() -> None:
    value = ok(stats.call({"text": "Hello world. How are you? Fine!\nBye 42"}))
    assert value["characters"] == 38
    assert value["words"] == 8
    assert value["letters"] == 26
    assert value["digits"] == 2
    assert value["sentences"] == 4
    assert value["lines"] == 2
    assert value["vowels"] == 11
    assert ok(stats.call({"text": "don't stop-me now"}))["words"] == 3
    assert ok(stats.call({"text": ""})) == {
        "characters": 0,
        "characters_without_spaces": 0,
        "letters": 0,
        "digits": 0,
        "vowels": 0,
        "words": 0,
        "sentences": 0,
        "lines": 0,
    }


def test_extract() -> None:
    text = (
        "Write to bob@example.com or Alice.Smith+tag@mail.co.uk (not bob@localhost). "
        "See https://example.org/a?b=1, www.test.com. and ftp://nope. "
        "Call (415) 555-2671 or +44 20 7946 0958. Totals: 1,234.5 and -7 and 3e3."
    )
    emails = ok(extract.call({"text": text, "kind": "emails"}))["items"]
    assert emails == ["bob@example.com", "Alice.Smith+tag@mail.co.uk"]
    urls = ok(extract.call({"text": text, "kind": "urls"}))["items"]
    assert urls == ["https://example.org/a?b=1", "www.test.com"]
    phones = ok(extract.call({"text": text, "kind": "phone_numbers"}))["items"]
    assert phones == ["+14155552671", "+442079460958"]
    numbers = ok(extract.call({"text": text, "kind": "numbers"}))["items"]
    assert "1234.5" in numbers and "-7" in numbers and "3e3" in numbers


def test_extract_deduplicates_and_checks_arguments() -> None:
    value = ok(extract.call({"text": "a@b.io a@b.io", "kind": "emails"}))
    assert value == {"kind": "emails", "count": 1, "items": ["a@b.io"]}
    assert not extract.call({"text": "x", "kind": "passwords"}).ok
    bad_region = extract.call({"text": "555 1234", "kind": "phone_numbers", "region": "USA"})
    assert "two-letter" in (bad_region.error or "")


def test_regex_matches_with_positions() -> None:
    value = ok(regex.call({"pattern": r"\d+", "text": "order 66 and 99"}))
    assert value["count"] == 2
    assert value["matches"][0] == {"match": "66", "start": 6, "end": 8}
    value = ok(regex.call({"pattern": "HELLO", "text": "hello", "ignore_case": True}))
    assert value["count"] == 1


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(\w)\1", "invalid escape sequence"),
        ("(?=a)", "invalid perl operator"),
        ("(a", "missing )"),
        ("a{1000}{1000}", "bad repetition"),
        ("", "1 to 1000 characters"),
        ("a" * 1001, "1 to 1000 characters"),
    ],
)
def test_regex_refusals(pattern: str, reason: str) -> None:
    assert reason in (regex.call({"pattern": pattern, "text": "aa"}).error or "")


@pytest.mark.parametrize(
    "pattern", [r"(a+)+$", r"(a|a)*b", r"(a|aa)+$", r"^(\w+\s?)*$", r"(.*a){20}"]
)
def test_backtracking_patterns_run_in_linear_time(pattern: str) -> None:
    text = "a" * 200_000 + "!"
    started = time.perf_counter()
    regex.call({"pattern": pattern, "text": text})
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("pattern", ["((a{100}){100}){100}", r"(\w{100}){100}"])
def test_patterns_too_large_to_compile_are_refused(pattern: str) -> None:
    outcome = regex.call({"pattern": pattern, "text": "abc"})
    assert not outcome.ok and "invalid repetition size" in (outcome.error or "")


def test_text_size_limit() -> None:
    outcome = stats.call({"text": "a" * 1_000_001})
    assert "too long" in (outcome.error or "")
