"""The stream guard: stop sequences, loops and empty runs are caught while the reply streams."""

from __future__ import annotations

import re

from milliwatt.agent.loops import EMPTY_CHUNKS, StreamGuard, periodic_tail


def feed_all(guard: StreamGuard, text: str) -> str:
    """Feed `text` token-like (words and spaces) until the guard stops; return what it showed."""
    shown = ""
    for piece in re.findall(r"\S+|\s+", text):
        shown += guard.feed(piece)
        if guard.stopped:
            return shown
    return shown + guard.finish()


def test_a_repeated_sentence_is_a_loop_and_is_never_shown_twice() -> None:
    loop = "Why did the cat sit? It was warm. The cat sat on the mat all day. " * 10
    guard = StreamGuard()
    shown = feed_all(guard, loop)
    assert guard.stopped == "loop"
    assert (
        shown == guard.text == "Why did the cat sit? It was warm. The cat sat on the mat all day."
    )
    assert guard.chunks < 60  # stopped early, not at the token limit


def test_short_sentences_may_repeat_once() -> None:
    guard = StreamGuard()
    assert feed_all(guard, "Rain. Rain. Go away, rain.") == "Rain. Rain. Go away, rain."
    assert guard.stopped is None
    guard = StreamGuard()
    feed_all(guard, "Ha! Ha! Ha! Ha! Ha!")
    assert guard.stopped == "loop" and guard.text == "Ha! Ha!"


def test_a_block_repeated_within_a_sentence_is_a_loop() -> None:
    guard = StreamGuard()
    feed_all(guard, "Sure: " + "la la " * 40)
    assert guard.stopped == "loop"
    assert guard.text.startswith("Sure: la") and len(guard.text) < 20
    assert periodic_tail("1, 2, 3, " * 10) is not None
    assert periodic_tail("a perfectly ordinary sentence without repeats") is None


def test_a_stop_sequence_ends_the_reply_and_is_not_shown() -> None:
    guard = StreamGuard(["\nUser:"])
    shown = ""
    for piece in ["Hello", " there", "!", "\n", "User", ":", " and more"]:
        shown += guard.feed(piece)
    assert guard.stopped == "stop sequence"
    assert shown == guard.text == "Hello there!"
    other = StreamGuard(["\nUser:"])
    assert feed_all(other, "Hello there!\nUsed it. Ok.") == "Hello there!\nUsed it. Ok."


def test_a_run_of_whitespace_is_empty() -> None:
    guard = StreamGuard()
    for _ in range(EMPTY_CHUNKS):
        assert guard.feed("\n") == ""
    assert guard.stopped == "empty" and guard.text == ""


def test_a_reply_cut_by_the_token_limit_keeps_what_was_shown() -> None:
    guard = StreamGuard()
    shown = guard.feed("The sea is wide. ") + guard.feed("The waves roll in and")
    shown += guard.finish()
    assert shown == guard.text == "The sea is wide. The waves roll in and"


def test_ordinary_text_is_shown_as_it_comes() -> None:
    guard = StreamGuard(["\nUser:"])
    assert guard.feed("Once") == "Once"
    assert guard.feed(" upon a") == " upon a"
    assert guard.feed(" time,") == " time,"
    # held: it may be the start of the stop sequence, then of a repeated sentence
    assert guard.feed(" there.\n") == " there."
    assert guard.feed("Once upon") == "\n"
    assert guard.feed(" a hill") == "Once upon a hill"


def test_a_block_repeating_at_the_end_is_held_until_it_stops() -> None:
    guard = StreamGuard()
    assert guard.feed("It was la") == "It was la"
    assert guard.feed(" la") == ""  # "la la": perhaps a loop starting
    assert guard.feed(" land.") == " la land."
    assert guard.stopped is None
