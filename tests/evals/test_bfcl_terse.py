"""The terse, real-world-style function set: loads, and its answers score as BFCL's do."""

from __future__ import annotations

from pathlib import Path

from milliwatt.evals.bfcl import categories, expected_calls, load_category, run_bfcl
from milliwatt.evals.bfcl_ast import category_kind

TERSE = Path(__file__).resolve().parents[2] / "src" / "milliwatt" / "evals" / "bfcl_terse"


def test_the_terse_set_has_relevant_and_irrelevant_questions_with_one_function() -> None:
    assert categories(TERSE) == ["terse_irrelevance", "terse_simple"]
    simple, irrelevant = (
        load_category(TERSE, "terse_simple"),
        load_category(TERSE, "terse_irrelevance"),
    )
    assert (len(simple), len(irrelevant)) == (32, 16)
    assert category_kind("terse_simple") == "simple"
    assert category_kind("terse_irrelevance") == "irrelevance"
    assert all(len(case.functions) == 1 for case in simple + irrelevant)
    assert all(case.expected is None for case in irrelevant)


def test_its_possible_answers_are_right_and_no_call_is_right_for_irrelevance() -> None:
    simple = load_category(TERSE, "terse_simple")
    answers = {case.messages[0]["content"]: expected_calls(case) for case in simple}
    assert run_bfcl(simple, lambda m, f: answers[m[0]["content"]]).accuracy == 1.0
    irrelevant = load_category(TERSE, "terse_irrelevance")
    assert run_bfcl(irrelevant, lambda m, f: []).accuracy == 1.0
    called = run_bfcl(irrelevant, lambda m, f: expected_calls(simple[0]))
    assert called.correct == 0
