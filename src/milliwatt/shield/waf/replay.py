"""Runs of rules that read and write nothing but TX, replayed instead of walked.

CRS spends most of a request's rule visits on rules whose outcome depends only on a few TX
variables: its setup defaults (`&TX:x "@eq 0"` -> `setvar:tx.x=...`), the paranoia-level
guards (`TX:DETECTION_PARANOIA_LEVEL "@lt 2"` -> skipAfter) and score bookkeeping. A run of
such rules, from a given rule on, always ends the same way given the values of the TX
variables it can read: the same TX writes, the same MATCHED_VAR state, the same next rule.
So the first time a run is walked with some values its outcome is kept, and later
transactions meeting the same values apply it in one step.

A rule is replayable when it cannot log, disrupt, capture or chain, its targets are TX
variables by name (or none: SecAction), its operator is a numeric comparison with a
constant (or none), and its only actions are `setvar` on TX whose values read no more than
TX and MATCHED_VAR. A run one of whose rules `ctl:` removed, or after `ctl:` removed a TX
target, is walked the usual way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from milliwatt.shield.waf.actions import SetVar
from milliwatt.shield.waf.operators import NumericOperator
from milliwatt.shield.waf.rules import Rule

if TYPE_CHECKING:
    from milliwatt.shield.waf.compiled import Phase
    from milliwatt.shield.waf.transaction import Transaction

# outcomes kept per run start: a few cover ordinary traffic (one per paranoia level and
# setup); runs that read anomaly scores meet new values with every attack, so they fill up
KEPT_PER_RUN = 32
_SELF_MATCH = frozenset({"MATCHED_VAR", "MATCHED_VAR_NAME"})
# MATCHED_VAR state a run may leave: two scalars and two collections
MATCH_SCALARS = ("MATCHED_VAR", "MATCHED_VAR_NAME")
MATCH_COLLECTIONS = ("MATCHED_VARS", "MATCHED_VARS_NAMES")
# what a MATCHED_VAR slot holds while a run is walked, until a rule of the run sets it
_UNSET = "\x00not set by the run\x00"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What walking a run did: where the walk went on, and what it left."""

    next_index: int
    tx_writes: tuple[tuple[str, str | None], ...]  # None: deleted
    scalars: tuple[tuple[str, str], ...]  # MATCHED_VAR(_NAME), when the run set them
    collections: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # MATCHED_VARS(_NAMES)
    last_rule: Rule | None  # the transaction's current rule afterwards; None: unchanged
    captures_reset: bool


@dataclass(slots=True)
class Run:
    """The TX variables a run from one rule on may read, the rules it may visit (a run with
    one of them removed by `ctl:` is walked), and the outcomes seen so far."""

    reads: tuple[str, ...]
    members: tuple[Rule, ...]
    member_ids: frozenset[int]
    outcomes: dict[tuple[str | None, ...], Outcome] = field(default_factory=dict)

    def has_room(self) -> bool:
        return len(self.outcomes) < KEPT_PER_RUN


def tx_reads(rule: Rule) -> frozenset[str] | None:
    """The TX variables a replayable rule reads; None when the rule is not replayable."""
    if rule.chain is not None or rule.log or rule.auditlog or rule.disruptive != "pass":
        return None
    if rule.capture or rule.multi_match or rule.transforms:
        return None
    op = rule.operator
    if op is None:
        if rule.targets:
            return None
    elif not (isinstance(op, NumericOperator) and op.constant is not None):
        return None
    if rule.targets and rule.tx_keys is None:
        return None
    reads = {key for key, _ in rule.tx_keys or ()}
    for action in rule.actions:
        if not (isinstance(action, SetVar) and action.collection == "TX"):
            return None
        if not action.key.is_constant:
            return None
        if action.op in ("+", "-"):  # adds to the value it finds
            reads.add(action.key.text.lower())
        for part in action.value.parts:
            if isinstance(part, str) or part[0] in _SELF_MATCH:
                continue
            name, key = part
            if name != "TX" or key is None:
                return None
            reads.add(key)
    return frozenset(reads)


def plan_runs(rules: list[Rule], markers: dict[str, int]) -> list[Run | None]:
    """Per rule: the run that starts there when the rule is replayable, else None.

    A run's reads are those of every replayable rule the walk can reach from it without
    meeting another kind (skips only go forward, so one pass from the end finds them)."""
    n = len(rules)
    own = [tx_reads(rule) for rule in rules]
    reach: list[frozenset[str] | None] = [None] * (n + 1)
    members: list[frozenset[int]] = [frozenset()] * (n + 1)
    for i in range(n - 1, -1, -1):
        mine = own[i]
        if mine is None:
            continue
        nexts = {i + 1, rules[i].after_match(i + 1, markers, n)}  # unmatched, matched
        total, visited = set(mine), {i}
        for j in nexts:
            total |= reach[j] or frozenset()
            visited |= members[j]
        reach[i], members[i] = frozenset(total), frozenset(visited)
    runs: list[Run | None] = []
    for i, reads in enumerate(reach[:n]):
        if reads is None:
            runs.append(None)
            continue
        met = tuple(rules[j] for j in sorted(members[i]))
        runs.append(Run(tuple(sorted(reads)), met, frozenset(r.id for r in met)))
    return runs


def replayable(tx: Transaction, run: Run) -> bool:
    """Whether `ctl:` left the run as it was loaded: no TX target and none of its rules
    removed."""
    if tx.tx_retargeted:
        return False
    if not tx.removing:
        return True
    if not (tx.removed_ranges or tx.removed_msgs or tx.removed_tags):
        return run.member_ids.isdisjoint(tx.removed_ids)  # the usual removal: by id
    return not any(tx._is_removed(rule) for rule in run.members)


def replay(tx: Transaction, program: Phase, run: Run, start: int) -> int:
    """The run from `start`: its kept outcome for these TX values, else walked (and kept
    while the run has room). Returns the index the phase's walk goes on from."""
    variables = tx.data.tx
    values = tuple([variables.get(key) for key in run.reads])
    outcome = run.outcomes.get(values)
    if outcome is None:
        if not run.has_room():  # values seldom seen again (attack scores): walk only
            return tx._walk(program, start)
        outcome = _walk_noting(tx, program, start)
        run.outcomes[values] = outcome
        return outcome.next_index
    for key, value in outcome.tx_writes:
        if value is None:
            variables.pop(key, None)
        else:
            variables[key] = value
    scalars, collections = tx.data.scalars, tx.data.collections
    for name, text in outcome.scalars:
        scalars[name] = text
    for name, pairs in outcome.collections:
        collections[name] = list(pairs)
    if outcome.last_rule is not None:
        tx._rule = outcome.last_rule
    if outcome.captures_reset:
        tx._captures = []
    return outcome.next_index


def _walk_noting(tx: Transaction, program: Phase, start: int) -> Outcome:
    """Walks the run the usual way, noting what it changed (the MATCHED_VAR slots are marked
    first, so a value the run sets equal to the one before still counts as set)."""
    variables, scalars, collections = tx.data.tx, tx.data.scalars, tx.data.collections
    before = dict(variables)
    saved_scalars = {name: scalars.get(name) for name in MATCH_SCALARS}
    saved_collections = {name: collections.get(name) for name in MATCH_COLLECTIONS}
    marks: dict[str, list[tuple[str, str]]] = {name: [] for name in MATCH_COLLECTIONS}
    for name in MATCH_SCALARS:
        scalars[name] = _UNSET
    for name in MATCH_COLLECTIONS:
        collections[name] = marks[name]
    # a rule is visited once per transaction: a run that sets the current rule leaves
    # another one there
    saved_rule, captures = tx._rule, tx._captures
    next_index = tx._walk(program, start)
    writes: list[tuple[str, str | None]] = [
        (key, value) for key, value in variables.items() if before.get(key) != value
    ]
    writes += [(key, None) for key in before if key not in variables]
    set_scalars: list[tuple[str, str]] = []
    for name, old in saved_scalars.items():
        text = scalars[name]
        if text is not _UNSET:
            set_scalars.append((name, text))
        elif old is None:
            del scalars[name]
        else:
            scalars[name] = old
    set_collections: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for name, old_pairs in saved_collections.items():
        pairs = collections[name]
        if pairs is not marks[name]:
            set_collections.append((name, tuple(pairs)))
        elif old_pairs is None:
            del collections[name]
        else:
            collections[name] = old_pairs
    last_rule = tx._rule if tx._rule is not saved_rule else None
    return Outcome(next_index, tuple(writes), tuple(set_scalars), tuple(set_collections),
                   last_rule, tx._captures is not captures)  # fmt: skip
