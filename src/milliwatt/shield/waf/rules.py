"""A compiled rule, and the compiler from SecRule/SecAction arguments to it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import milliwatt.shield.waf.transformations as tf
from milliwatt.shield.waf.actions import (
    DISRUPTIVE,
    PHASES,
    RUNTIME_ACTIONS,
    RuntimeAction,
    parse_severity,
)
from milliwatt.shield.waf.macros import Macro, compile_macro
from milliwatt.shield.waf.operator_base import Operator
from milliwatt.shield.waf.operators import NumericOperator, compile_operator
from milliwatt.shield.waf.seclang import split_actions, split_targets
from milliwatt.shield.waf.variables import Target, compile_target


@dataclass(frozen=True)
class Defaults:
    """What SecDefaultAction gives the rules of one phase."""

    disruptive: str = "pass"
    status: int = 403
    log: bool = True
    auditlog: bool = True
    transforms: tuple[tuple[str, tf.Transformation], ...] = ()


@dataclass(eq=False)
class Rule:
    id: int
    phase: int
    file: str
    line: int
    targets: tuple[Target, ...] = ()
    excluded: tuple[Target, ...] = ()
    operator: Operator | None = None  # None: SecAction, always matches once
    negated: bool = False
    transforms: tuple[tuple[str, tf.Transformation], ...] = ()
    multi_match: bool = False
    capture: bool = False
    disruptive: str = "pass"  # "block" is resolved to the phase default at run time
    status: int = 403
    redirect: Macro | None = None
    allow_scope: str = ""  # allow: "" (whole transaction), "phase" or "request"
    msg: Macro | None = None
    logdata: Macro | None = None
    tags: tuple[str, ...] = ()
    severity: str = ""
    log: bool = True
    auditlog: bool = True
    actions: list[RuntimeAction] = field(default_factory=list)
    skip: int = 0
    skip_after: str | None = None
    chain: Rule | None = None
    default_disruptive: str = "pass"
    default_status: int = 403
    # transformation names joined ("urldecodeuni,lowercase"): the cache key of transformed
    # values, interned text so that keying a cache by it hashes nothing
    tchain: str = ""
    screen_chain: str = ""  # tchain, marked for multiMatch: what a value's screen depends on
    tprefixes: tuple[str, ...] = ()  # the chains of the first one, two, ... transformations
    select_keys: tuple[str, ...] = ()  # per target: what it selects, shared by equal targets
    view_keys: tuple[str, ...] = ()  # per target: what it selects, transformed this rule's way
    screen_keys: tuple[str, ...] = ()  # view_keys, or for multiMatch its every stage's
    # the pattern set's id for the operator (@rx pattern or @pm list), when it answers for it
    screen_id: int | None = None
    screen_bit: int = 0  # 1 << screen_id: its bit in the set's answers
    # (all its targets' key, pattern-set bit): an @rx/@pm rule the set alone can rule out
    prescreen: tuple[str, int] | None = None
    # (key, counted) per target when the rule reads only TX variables by name, untransformed:
    # CRS's paranoia-level, setup and scoring checks, half of the rules a request meets
    tx_keys: tuple[tuple[str, bool], ...] | None = None
    # (key, test, constant) when the rule only compares one TX variable with a number and acts
    # on nothing but the match: CRS's paranoia-level guards, a third of a request's rules
    comparison: tuple[str, Callable[[int, int], bool], int] | None = None

    def after_match(self, i: int, markers: dict[str, int], n: int) -> int:
        """Where a phase's walk goes on once this rule matched, `i` being the index after it:
        its skipAfter marker, `skip` rules further, or the next rule."""
        if self.skip_after is not None:
            return markers.get(self.skip_after, n)
        if self.skip:
            return min(i + self.skip, n)
        return i

    def seal(self) -> None:
        """Final step once every directive is loaded (targets may have been updated since)."""
        self.select_keys = tuple(select_key(t, self.excluded) for t in self.targets)
        self.view_keys = tuple(f"{key}\x00{self.tchain}" for key in self.select_keys)
        stages = "\x00every stage" if self.multi_match else ""
        self.screen_keys = tuple(key + stages for key in self.view_keys)
        self.screen_chain = sys.intern(self.tchain + stages)
        tx_only = all(t.name == "TX" and t.key and t.key_regex is None for t in self.targets)
        if self.targets and tx_only and not (self.excluded or self.transforms or self.multi_match):
            self.tx_keys = tuple((t.key, t.count) for t in self.targets if t.key)
        op, keys = self.operator, self.tx_keys or ()
        plain = not (self.actions or self.capture or self.negated or self.chain)
        one_key = len(keys) == 1 and not keys[0][1]
        if plain and one_key and isinstance(op, NumericOperator) and op.constant is not None:
            self.comparison = (keys[0][0], op.test, op.constant)


def select_key(target: Target, excluded: tuple[Target, ...]) -> str:
    """What a target selects once exclusions apply (only those of its own variable do)."""
    drops = "|".join(target_ident(e) for e in excluded if e.name == target.name)
    return f"{target_ident(target)}!{drops}"


def target_ident(t: Target) -> str:
    """What a target selects, as text: equal texts select the same values."""
    key = t.key_regex.pattern if t.key_regex is not None else t.key
    return f"{'&' if t.count else ''}{t.name}:{'/' if t.key_regex is not None else ''}{key}"


@dataclass
class Draft:
    """A rule while its actions are read, with what is gathered before it is built."""

    rule: Rule
    transforms: list[tuple[str, tf.Transformation]]
    tags: list[str] = field(default_factory=list)
    saw_disruptive: bool = False


# action name (lower case) -> what it does to the rule being compiled: (draft, name, value)
RuleAction = Callable[[Draft, str, str], None]
RULE_ACTIONS: dict[str, RuleAction] = {}


def rule_action(*names: str) -> Callable[[RuleAction], RuleAction]:
    """Registers a metadata, flag, flow or disruptive action under its names."""

    def register(handler: RuleAction) -> RuleAction:
        for name in names:
            RULE_ACTIONS[name] = handler
        return handler

    return register


@rule_action("id")
def _id(d: Draft, name: str, value: str) -> None:
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"rule id must be a positive integer, got {value!r}")
    d.rule.id = int(value)


# read before the others (it picks the phase's defaults); chain is linked by the caller;
# ver, rev, maturity and accuracy describe the rule and change nothing in it
@rule_action("phase", "chain", "ver", "rev", "maturity", "accuracy")
def _read_elsewhere(d: Draft, name: str, value: str) -> None:
    return None


@rule_action("t")
def _transformation(d: Draft, name: str, value: str) -> None:
    if value.lower() == "none":
        d.transforms.clear()
        return
    fn = tf.lookup(value)
    if fn is None:
        raise ValueError(f"unsupported transformation t:{value}")
    d.transforms.append((value.lower(), fn))


@rule_action(*sorted(DISRUPTIVE))
def _disruptive(d: Draft, name: str, value: str) -> None:
    if name in ("proxy", "pause"):
        raise ValueError(f"unsupported disruptive action {name}")
    d.rule.disruptive, d.saw_disruptive = name, True
    if name == "allow":
        d.rule.allow_scope = value.lower()
    if name == "redirect":
        d.rule.redirect = compile_macro(value)
        if d.rule.status == 403:
            d.rule.status = 302


@rule_action("status")
def _status(d: Draft, name: str, value: str) -> None:
    if not value.isdigit():
        raise ValueError(f"status must be a number, got {value!r}")
    d.rule.status = int(value)


@rule_action("msg")
def _msg(d: Draft, name: str, value: str) -> None:
    d.rule.msg = compile_macro(value)


@rule_action("logdata")
def _logdata(d: Draft, name: str, value: str) -> None:
    d.rule.logdata = compile_macro(value)


@rule_action("tag")
def _tag(d: Draft, name: str, value: str) -> None:
    d.tags.append(value)


@rule_action("severity")
def _severity(d: Draft, name: str, value: str) -> None:
    d.rule.severity = parse_severity(value)


@rule_action("capture")
def _capture(d: Draft, name: str, value: str) -> None:
    d.rule.capture = True


@rule_action("multimatch")
def _multi_match(d: Draft, name: str, value: str) -> None:
    d.rule.multi_match = True


@rule_action("log", "nolog")
def _log(d: Draft, name: str, value: str) -> None:
    d.rule.log = name == "log"
    if name == "nolog":
        d.rule.auditlog = False


@rule_action("auditlog", "noauditlog")
def _auditlog(d: Draft, name: str, value: str) -> None:
    d.rule.auditlog = name == "auditlog"


@rule_action("skip")
def _skip(d: Draft, name: str, value: str) -> None:
    if not value.isdigit():
        raise ValueError(f"skip needs a count, got {value!r}")
    d.rule.skip = int(value)


@rule_action("skipafter")
def _skip_after(d: Draft, name: str, value: str) -> None:
    d.rule.skip_after = value


def compile_rule(
    variables: str | None,
    operator: str | None,
    actions: str,
    *,
    file: str,
    line: int,
    defaults: dict[int, Defaults],
    chained: bool = False,
    head_phase: int = 2,
) -> Rule:
    """Builds one rule (not its chain children); raises ValueError naming what is wrong."""
    rule = Rule(id=0, phase=head_phase, file=file, line=line)
    parsed = split_actions(actions, file, line)
    phase = head_phase
    for name, value in parsed:
        if name.lower() == "phase":
            if value.lower() not in PHASES:
                raise ValueError(f"bad phase {value!r}")
            phase = PHASES[value.lower()]
    rule.phase = phase
    base = defaults.get(phase, Defaults())
    rule.disruptive, rule.status = base.disruptive, base.status
    rule.default_disruptive, rule.default_status = base.disruptive, base.status
    rule.log, rule.auditlog = base.log, base.auditlog
    draft = Draft(rule, list(base.transforms))
    for name, value in parsed:
        key = name.lower()
        handler = RULE_ACTIONS.get(key)
        if handler is not None:
            handler(draft, key, value)
        elif key in RUNTIME_ACTIONS:
            rule.actions.append(RUNTIME_ACTIONS[key](value))
        else:
            raise ValueError(f"unsupported action {name!r}")
    transforms, tags, saw_disruptive = draft.transforms, draft.tags, draft.saw_disruptive
    rule.transforms = tuple(transforms)
    names = [name for name, _ in transforms]
    rule.tprefixes = tuple(sys.intern(",".join(names[: i + 1])) for i in range(len(names)))
    rule.tchain = rule.tprefixes[-1] if names else ""
    rule.tags = tuple(tags)
    if chained and (rule.id or saw_disruptive):
        raise ValueError("a chained rule may not carry id or a disruptive action")
    if not chained and rule.id == 0:
        raise ValueError("rule has no id")
    if variables is not None:
        targets: list[Target] = []
        excluded: list[Target] = []
        for spec in split_targets(variables, file, line):
            (excluded if spec.exclude else targets).append(compile_target(spec))
        if not targets:
            raise ValueError("rule has no variables to inspect")
        rule.targets, rule.excluded = tuple(targets), tuple(excluded)
    if operator is not None:
        rule.operator, rule.negated = compile_operator(operator, Path(file).parent)
    return rule
