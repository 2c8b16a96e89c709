"""Each phase's rules compiled, at load, into one step per rule, specialised by kind.

A step answers whether its rule matched (having run its actions, logged it and applied its
disruptive action, as `Transaction._evaluate` does). What a kind needs is bound once: the
TX key and constant of a numeric guard, the screen key and pattern bit of an `@rx`/`@pm` rule
the pattern set can rule out. Other rules step into the general evaluation.

Per request, a phase also asks which of its screened rules any value can fire (screen.py),
so rules no value fires are not visited at all: the walk goes from one rule that can still
fire (or that decides control flow) to the next. A run of rules that
read and write only TX is replayed from the outcome kept for its TX values (replay.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from milliwatt.shield.waf.caches import UNKNOWN
from milliwatt.shield.waf.operators import to_int
from milliwatt.shield.waf.replay import Run, plan_runs
from milliwatt.shield.waf.rules import Rule
from milliwatt.shield.waf.screen import PhaseScreen, build_screen

if TYPE_CHECKING:
    from milliwatt.shield.waf.transaction import Transaction

Step = Callable[["Transaction"], bool]


@dataclass
class Phase:
    """One phase's rules in order, their steps, and where each skipAfter marker lands."""

    rules: list[Rule]
    steps: list[Step]
    markers: dict[str, int]
    screen: PhaseScreen | None  # its screened rules, asked value by value (screen.py)
    # per rule: the run of TX-only rules that starts there, replayed by its reads (replay.py)
    runs: list[Run | None]


def compile_phase(rules: list[Rule], markers: dict[str, int], *, replay: bool = True) -> Phase:
    steps = [compile_step(rule) for rule in rules]
    runs: list[Run | None] = plan_runs(rules, markers) if replay else [None] * len(rules)
    return Phase(rules, steps, markers, build_screen(rules), runs)


def compile_step(rule: Rule) -> Step:
    if rule.comparison is not None:
        return _comparison(rule, *rule.comparison)
    if rule.prescreen is not None:
        return _screened(rule, *rule.prescreen)
    if rule.tx_keys is not None and rule.operator is not None and rule.chain is None:
        return _tx_only(rule, rule.tx_keys)

    def general(tx: Transaction) -> bool:
        return tx._evaluate(rule)

    return general


def _comparison(rule: Rule, key: str, test: Callable[[int, int], bool], constant: int) -> Step:
    """A rule comparing one TX variable with a number (CRS's paranoia-level guards)."""
    name = "TX:" + key

    def compare(tx: Transaction) -> bool:
        if tx.tx_retargeted:  # a ctl: removal may name this variable: the general way
            return tx._evaluate(rule)
        value = tx.data.tx.get(key)
        if value is None or not test(to_int(value), constant):
            tx.data.collections["MATCHED_VARS"] = []
            return False
        tx._rule = rule
        tx._set_matched([(name, value)])
        tx._conclude(rule)
        return True

    return compare


def _tx_only(rule: Rule, keys: tuple[tuple[str, bool], ...]) -> Step:
    """A rule reading TX variables by name only, with no chain (CRS's setup defaults and
    scoring checks): no selection, no caches, no chain walk."""
    op = rule.operator
    assert op is not None

    def tx_only(tx: Transaction) -> bool:
        if tx.tx_retargeted:
            return tx._evaluate(rule)
        tx._rule = rule
        tx._captures = []
        tx.data.collections["MATCHED_VARS"] = []  # as _evaluate leaves it while matching
        found = tx._match_tx(rule, op, keys)
        if not found:
            return False
        tx._matched(rule, found)
        tx._conclude(rule)
        return True

    return tx_only


def _screened(rule: Rule, key: str, bit: int) -> Step:
    """An @rx/@pm rule on request data: evaluated only when some value matches its pattern
    (the walk has usually passed it over already; this guards a rule reached by skip)."""

    def screened(tx: Transaction) -> bool:
        union = tx._unions.get(key, UNKNOWN)
        if union is UNKNOWN:
            union = tx._unions[key] = tx._union_of(rule)
        if union is not None and not union & bit:
            tx.data.collections["MATCHED_VARS"] = []
            return False
        return tx._evaluate(rule)

    return screened
