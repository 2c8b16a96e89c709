"""Required literals of a regular expression, for prefiltering.

`required_literals(pattern)` gives a set S of lower-case strings such that every match of the
pattern contains at least one member of S (compared case-insensitively), or None when no
useful set exists. A value containing none of S cannot match, so the regex need not run.
The analysis walks Python's parse of the pattern, which reads the PCRE syntax CRS uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

try:  # the parser moved in Python 3.11; both expose the same parse()
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

from re import _constants as c  # type: ignore[attr-defined]

_LIMIT = 64  # alternatives kept in one set before giving up on exact expansion
_CLASS_LIMIT = 8  # a character class up to this size is expanded into its characters
MIN_LENGTH = 3  # a shorter required literal filters too little to be worth a lookup
_ASCII_LOWER = {c: c + 32 for c in range(65, 91)}


def ascii_lower(text: str) -> str:
    """ASCII-only lower case: Hyperscan's caseless matching folds nothing else."""
    return text.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class _Info:
    exact: frozenset[str] | None  # the element matches exactly one of these strings
    required: frozenset[str] | None  # otherwise: every match contains one of these


_NONE = _Info(None, None)
_EMPTY = _Info(frozenset({""}), None)


def required_literals(pattern: str) -> frozenset[str] | None:
    try:
        parsed = sre_parse.parse(pattern, re.DOTALL)
    except (re.error, OverflowError, RecursionError, ValueError):
        return None
    info = _sequence(list(parsed))
    best = info.exact if info.exact is not None else info.required
    if not best or min(len(s) for s in best) < MIN_LENGTH:
        return None
    return best


def _score(strings: frozenset[str]) -> tuple[int, int]:
    return (min(len(s) for s in strings), -len(strings))


def _sequence(items: list[tuple[object, object]]) -> _Info:
    current: set[str] | None = {""}
    candidates: list[frozenset[str]] = []
    exact_all = True
    for op, av in items:
        info = _element(op, av)
        if (
            info.exact is not None
            and current is not None
            and len(current) * len(info.exact) <= _LIMIT
        ):
            current = {a + b for a in current for b in info.exact}
            continue
        if current is not None and current != {""}:
            candidates.append(frozenset(current))
        exact_all = False
        if info.exact is not None:
            current = set(info.exact) if len(info.exact) <= _LIMIT else None
        else:
            current = {""}
            if info.required:
                candidates.append(info.required)
    if exact_all and current is not None:
        return _Info(frozenset(current), None)
    if current is not None and current != {""}:
        candidates.append(frozenset(current))
    useful = [s for s in candidates if s and "" not in s]
    if not useful:
        return _NONE
    return _Info(None, max(useful, key=_score))


def _element(op: object, av: object) -> _Info:
    if op is c.LITERAL:
        return _Info(frozenset({ascii_lower(chr(av))}), None)  # type: ignore[call-overload]
    if op is c.IN:
        chars = _class_chars(av)  # type: ignore[arg-type]
        return _Info(frozenset(chars), None) if chars else _NONE
    if op is c.SUBPATTERN:
        return _sequence(list(av[-1]))  # type: ignore[index]
    if op is c.BRANCH:
        return _branch(av[1])  # type: ignore[index]
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
        low, high, body = av  # type: ignore[misc]
        if low == 0:
            return _NONE
        inner = _sequence(list(body))
        if low == high == 1:
            return inner
        return _Info(None, inner.exact if inner.exact is not None else inner.required)
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return _EMPTY  # zero width: neither helps nor hurts
    if op is getattr(c, "ATOMIC_GROUP", None):
        return _sequence(list(av))  # type: ignore[arg-type]
    return _NONE


def _branch(seqs: list[object]) -> _Info:
    infos = [_sequence(list(s)) for s in seqs]  # type: ignore[call-overload]
    if all(i.exact is not None for i in infos):
        union = frozenset().union(*(i.exact for i in infos))  # type: ignore[arg-type]
        if len(union) <= _LIMIT:
            return _Info(union, None)
    required: set[str] = set()
    for i in infos:
        part = i.exact if i.exact is not None else i.required
        if not part or "" in part:
            return _NONE
        required |= part
    return _Info(None, frozenset(required))


def _class_chars(items: list[tuple[object, object]]) -> set[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is c.LITERAL:
            chars.add(ascii_lower(chr(av)))  # type: ignore[call-overload]
        elif op is c.RANGE and av[1] - av[0] < _CLASS_LIMIT:  # type: ignore[index,operator]
            chars |= {ascii_lower(chr(x)) for x in range(av[0], av[1] + 1)}  # type: ignore[index,operator]
        else:
            return None
        if len(chars) > _CLASS_LIMIT:
            return None
    return chars
