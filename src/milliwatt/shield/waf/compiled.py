"""Each phase's rules compiled, at load, into one step per rule, specialised by kind.

A step answers whether its rule matched (having run its actions, logged it and applied its
disruptive action, as `Transaction._evaluate` does). What a kind needs is bound once: the
TX key and constant of a numeric guard, the screen key and pattern bit of an `@rx`/`@pm` rule
the pattern set can rule out. Other rules step into the general evaluation.

Per request, a phase also asks the pattern set once for every screen key its rules use
(`screen_phase`), so rules it rules out are not visited at all: the walk goes from one
rule that can still fire (or that decides control flow) to the next. A run of rules that
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
from milliwatt.shield.waf.variables import Target

if TYPE_CHECKING:
    from milliwatt.shield.waf.transaction import Transaction

Step = Callable[["Transaction"], bool]


@dataclass
class Phase:
    """One phase's rules in order, their steps, and where each skipAfter marker lands."""

    rules: list[Rule]
    steps: list[Step]
    markers: dict[str, int]
    # per screen key: the rules (index, pattern bit) it decides, one rule that reads it, and
    # that rule's targets as (variable, target's screen key, index, target)
    screens: dict[str, tuple[list[tuple[int, int]], Rule, list[tuple[str, str, int, Target]]]]
    # per rule: the run of TX-only rules that starts there, replayed by its reads (replay.py)
    runs: list[Run | None]


def compile_phase(rules: list[Rule], markers: dict[str, int], *, replay: bool = True) -> Phase:
    screens: dict[str, tuple[list[tuple[int, int]], Rule, list[tuple[str, str, int, Target]]]] = {}
    for index, rule in enumerate(rules):
        if rule.prescreen is not None:
            key, bit = rule.prescreen
            if key not in screens:
                plan = [(t.name, rule.screen_keys[n], n, t) for n, t in enumerate(rule.targets)]
                screens[key] = ([], rule, plan)
            screens[key][0].append((index, bit))
    steps = [compile_step(rule) for rule in rules]
    runs: list[Run | None] = plan_runs(rules, markers) if replay else [None] * len(rules)
    return Phase(rules, steps, markers, screens, runs)


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


def screen_phase(tx: Transaction, phase: Phase) -> bytearray:
    """Per rule of the phase, 1 where the pattern set rules it out in this request: none of
    the values it reads matches its pattern (sound under ctl: target removal, which can only
    take values away)."""
    out = bytearray(len(phase.rules))
    unions, view_unions = tx._unions, tx._view_unions
    present = tx._present
    if present is None:
        present = tx._present = tx.data.present()
    for key, (members, reader, plan) in phase.screens.items():
        union = unions.get(key, UNKNOWN)
        if union is UNKNOWN:  # TargetMatching._union_of, inline
            union = 0
            for name, screen_key, index, target in plan:
                if name not in present:  # most requests: no XML, files or cookies
                    continue
                part = view_unions.get(screen_key, UNKNOWN)
                if part is UNKNOWN:
                    part = tx._view_union(reader, index, target)
                if part is None:
                    union = None
                    break
                union |= part
            unions[key] = union
        if union is None:
            continue
        for index, bit in members:
            if not union & bit:
                out[index] = 1
    return out
