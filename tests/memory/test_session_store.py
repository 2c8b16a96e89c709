"""The session-store contract, on every backend `[storage] url` can select."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from milliwatt.errors import InvalidRequestError, InvalidSessionNameError
from milliwatt.memory.sessions import SessionStore, TurnCost
from milliwatt.memory.stores import open_session_store
from milliwatt.models.base import Message, ToolCall


@pytest.fixture
def store(tmp_path: Path, storage_url: str | None) -> Iterator[SessionStore]:
    opened = open_session_store(tmp_path, storage_url)
    yield opened
    opened.close()


def turn(text: str) -> list[Message]:
    return [Message("user", text), Message("assistant", f"re: {text}")]


def test_a_new_session_is_empty(store: SessionStore) -> None:
    assert store.history("nobody") == []
    assert store.info("nobody") is None
    assert store.list() == []


def test_turns_come_back_whole_and_in_order(store: SessionStore) -> None:
    call = ToolCall("c1", "math.calculate", {"expression": "2+2", "nested": {"a": [1, 2]}})
    first = [
        Message("user", "what is 2+2"),
        Message("assistant", "", [call]),
        Message("tool", "4", tool_call_id="c1", name="math.calculate"),
        Message("assistant", "4 — «four»\n\ttabbed \x1b[31m"),
    ]
    store.append_turn("ada", "milliwatt", first, TurnCost(10, 2, 0.5, 1.25))
    store.append_turn("ada", "milliwatt", turn("again"), TurnCost(3, 1, 0.25, 0.5))
    assert store.history("ada") == [*first, *turn("again")]
    info = store.info("ada")
    assert info is not None
    assert (info.name, info.agent, info.turns, info.messages) == ("ada", "milliwatt", 2, 6)
    assert info.cost == TurnCost(13, 3, 0.75, 1.75)
    assert info.created <= info.updated and info.updated.endswith("+00:00")


def test_sessions_are_kept_apart_and_listed(store: SessionStore) -> None:
    store.append_turn("ada", "milliwatt", turn("one"), TurnCost(1))
    store.append_turn("bob", "helper", turn("two"), TurnCost(2))
    store.append_turn("bob", "helper", turn("three"), TurnCost(3))
    assert [m.content for m in store.history("ada")] == ["one", "re: one"]
    listed = {s.name: (s.agent, s.turns, s.messages, s.cost.tokens) for s in store.list()}
    assert listed == {"ada": ("milliwatt", 1, 2, 1), "bob": ("helper", 2, 4, 5)}


def test_a_session_name_is_checked_and_normalised(store: SessionStore) -> None:
    with pytest.raises(InvalidSessionNameError):
        store.append_turn("no spaces", "milliwatt", turn("x"), TurnCost())
    store.append_turn("ａｄａ", "milliwatt", turn("fullwidth"), TurnCost())
    assert [s.name for s in store.list()] == ["ada"]


def test_a_failed_write_leaves_no_half_turn(store: SessionStore) -> None:
    store.append_turn("ada", "milliwatt", turn("kept"), TurnCost(1))
    # the second message cannot be written: the session row and the turn go with it
    broken = [Message("user", "lost"), Message("assistant", object())]  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 (each driver names the failure its own way)
        store.append_turn("ada", "milliwatt", broken, TurnCost(100))
    with pytest.raises(Exception):  # noqa: B017
        store.append_turn("new", "milliwatt", broken, TurnCost(100))
    assert [m.content for m in store.history("ada")] == ["kept", "re: kept"]
    info = store.info("ada")
    assert info is not None and (info.turns, info.cost.tokens) == (1, 1)
    assert store.info("new") is None


def test_concurrent_turns_are_each_whole(store: SessionStore) -> None:
    def write(worker: int) -> None:
        for i in range(10):
            store.append_turn(f"s{worker % 2}", "milliwatt", turn(f"{worker}-{i}"), TurnCost(1))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in ("s0", "s1"):
        history = store.history(name)
        assert len(history) == 40
        pairs = list(zip(history[::2], history[1::2], strict=True))
        assert all(a.role == "user" and b.content == f"re: {a.content}" for a, b in pairs)
        info = store.info(name)
        assert info is not None and (info.turns, info.cost.tokens) == (20, 20)


def test_a_second_store_on_the_same_data_sees_every_turn(
    store: SessionStore, tmp_path: Path, storage_url: str | None
) -> None:
    store.append_turn("ada", "milliwatt", turn("from node one"), TurnCost())
    other = open_session_store(tmp_path, storage_url)
    other.append_turn("ada", "milliwatt", turn("from node two"), TurnCost())
    assert [m.content for m in store.history("ada")][::2] == ["from node one", "from node two"]
    other.close()


def test_postgres_refuses_nul_rather_than_alter_it(postgres_url: str, tmp_path: Path) -> None:
    store = open_session_store(tmp_path, postgres_url)
    with pytest.raises(InvalidRequestError, match="NUL"):
        store.append_turn("ada", "milliwatt", turn("a\x00b"), TurnCost())
    assert store.info("ada") is None


def test_postgres_refuses_nul_in_tool_calls_too(postgres_url: str, tmp_path: Path) -> None:
    store = open_session_store(tmp_path, postgres_url)
    call = ToolCall("c1", "text.count", {"text": ["fine", {"deep": "a\x00b"}]})
    with pytest.raises(InvalidRequestError, match="NUL"):
        store.append_turn("ada", "milliwatt", [Message("assistant", "", [call])], TurnCost())
    assert store.info("ada") is None
