"""A rule set: directives in order -> per-phase rule lists, markers and engine settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import milliwatt.shield.waf.transformations as tf
from milliwatt.shield.waf.actions import DISRUPTIVE, PHASES
from milliwatt.shield.waf.api import RuleLoadError
from milliwatt.shield.waf.rules import Defaults, Rule, compile_rule
from milliwatt.shield.waf.seclang import Directive, split_actions, split_targets
from milliwatt.shield.waf.variables import compile_target

log = logging.getLogger(__name__)

# Directives about log files and storage that the host application handles; accepted and
# reported once, so a configuration written for ModSecurity loads without edits.
_HOST_DIRECTIVES = {
    "secauditengine", "secauditlog", "secauditlogparts", "secauditlogtype",
    "secauditlogformat", "secauditlogrelevantstatus", "secauditlogstoragedir",
    "secauditlogdirmode", "secauditlogfilemode", "secdebuglog", "secdebugloglevel",
    "sectmpdir", "secdatadir", "secuploaddir", "secuploadkeepfiles", "secuploadfilemode",
    "secstatusengine", "secpcrematchlimit", "secpcrematchlimitrecursion", "seccollectiontimeout",
    "secunicodemapfile", "secresponsebodylimitaction", "secrequestbodylimitaction",
    "secrequestbodyinmemorylimit", "secservertokens", "secserversignature",
}  # fmt: skip


@dataclass
class RuleSet:
    phases: dict[int, list[Rule | str]] = field(
        default_factory=lambda: {p: [] for p in range(1, 6)}
    )
    engine: str = "on"  # on | off | detectiononly
    request_body_access: bool = True
    response_body_access: bool = False
    request_body_limit: int = 13_107_200
    request_body_no_files_limit: int = 131_072
    arguments_limit: int = 0  # SecArgumentsLimit; 0: none, as ModSecurity without the directive
    response_body_limit: int = 524_288
    response_mime_types: tuple[str, ...] = ("text/plain", "text/html")
    component_signatures: list[str] = field(default_factory=list)
    defaults: dict[int, Defaults] = field(default_factory=dict)
    _chain_tail: Rule | None = None
    _chain_at: Directive | None = None

    @property
    def rule_count(self) -> int:
        return sum(isinstance(r, Rule) for rules in self.phases.values() for r in rules)

    def rules(self) -> list[Rule]:
        return [r for p in range(1, 6) for r in self.phases[p] if isinstance(r, Rule)]

    def add(self, directives: list[Directive]) -> None:
        for d in directives:
            try:
                self._add(d)
            except RuleLoadError:
                raise
            except (ValueError, KeyError) as exc:
                raise RuleLoadError(d.file, d.line, f"{d.name}: {exc}") from exc
        if self._chain_tail is not None and self._chain_at is not None:
            at = self._chain_at
            raise RuleLoadError(at.file, at.line, "rule says chain but no rule follows")

    def _add(self, d: Directive) -> None:
        name = d.name.lower()
        if self._chain_tail is not None and name != "secrule":
            raise ValueError("a chained rule must be followed by SecRule")
        if name == "secrule":
            if len(d.args) not in (2, 3):
                raise ValueError("SecRule takes VARIABLES OPERATOR [ACTIONS]")
            self._add_rule(d, d.args[0], d.args[1], d.args[2] if len(d.args) == 3 else "")
        elif name == "secaction":
            self._expect(d, 1)
            self._add_rule(d, None, None, d.args[0])
        elif name == "secmarker":
            self._expect(d, 1)
            for phase in range(1, 6):
                self.phases[phase].append(d.args[0])
        elif name == "secdefaultaction":
            self._expect(d, 1)
            self._default_action(d.args[0], d)
        elif name == "secruleengine":
            self.engine = self._choice(d, {"on", "off", "detectiononly"})
        elif name == "secrequestbodyaccess":
            self.request_body_access = self._choice(d, {"on", "off"}) == "on"
        elif name == "secresponsebodyaccess":
            self.response_body_access = self._choice(d, {"on", "off"}) == "on"
        elif name == "secrequestbodylimit":
            self.request_body_limit = self._number(d)
        elif name == "secrequestbodynofileslimit":
            self.request_body_no_files_limit = self._number(d)
        elif name == "secargumentslimit":
            self.arguments_limit = self._number(d)
        elif name == "secresponsebodylimit":
            self.response_body_limit = self._number(d)
        elif name == "secresponsebodymimetype":
            self.response_mime_types = tuple(a.lower() for a in d.args)
        elif name == "seccomponentsignature":
            self.component_signatures.extend(d.args)
        elif name == "secruleremovebyid":
            self.remove(lambda r: any(_id_in(r.id, spec) for spec in d.args))
        elif name == "secruleremovebytag":
            self.remove(lambda r: any(t in r.tags for t in d.args))
        elif name == "secruleremovebymsg":
            self.remove(lambda r: r.msg is not None and r.msg.text in d.args)
        elif name in ("secruleupdatetargetbyid", "secruleupdatetargetbytag"):
            if len(d.args) != 2:
                raise ValueError(
                    f"{d.name} takes a selector and targets (replacement is not supported)"
                )
            by_id = name.endswith("byid")
            self._update_targets(
                lambda r: _id_in(r.id, d.args[0]) if by_id else d.args[0] in r.tags, d
            )
        elif name in _HOST_DIRECTIVES:
            log.info(
                "%s:%d: %s has no effect here (the host handles logs and storage)",
                d.file,
                d.line,
                d.name,
            )
        else:
            raise ValueError("unsupported directive")

    @staticmethod
    def _expect(d: Directive, count: int) -> None:
        if len(d.args) != count:
            raise ValueError(f"expects {count} argument(s), got {len(d.args)}")

    def _choice(self, d: Directive, allowed: set[str]) -> str:
        self._expect(d, 1)
        value = d.args[0].lower()
        if value not in allowed:
            raise ValueError(f"must be one of {sorted(allowed)}, got {d.args[0]!r}")
        return value

    def _number(self, d: Directive) -> int:
        self._expect(d, 1)
        if not d.args[0].isdigit():
            raise ValueError(f"expects a number of bytes, got {d.args[0]!r}")
        return int(d.args[0])

    def _default_action(self, text: str, d: Directive) -> None:
        phase, disruptive, status, log_, audit = 2, "pass", 403, True, True
        transforms: list[tuple[str, tf.Transformation]] = []
        for name, value in split_actions(text, d.file, d.line):
            key = name.lower()
            if key == "phase":
                if value.lower() not in PHASES:
                    raise ValueError(f"bad phase {value!r}")
                phase = PHASES[value.lower()]
            elif key in DISRUPTIVE and key not in ("block", "proxy", "pause"):
                disruptive = key
            elif key == "status":
                status = int(value)
            elif key in ("log", "nolog"):
                log_ = key == "log"
            elif key in ("auditlog", "noauditlog"):
                audit = key == "auditlog"
            elif key == "t":
                fn = tf.lookup(value)
                if value.lower() == "none":
                    transforms.clear()
                elif fn is None:
                    raise ValueError(f"unsupported transformation t:{value}")
                else:
                    transforms.append((value.lower(), fn))
            elif key not in ("tag", "ver", "severity", "msg", "logdata"):
                raise ValueError(f"action {name!r} is not allowed in SecDefaultAction")
        self.defaults[phase] = Defaults(disruptive, status, log_, audit, tuple(transforms))

    def _add_rule(
        self, d: Directive, variables: str | None, operator: str | None, actions: str
    ) -> None:
        parent = self._chain_tail
        rule = compile_rule(
            variables, operator, actions, file=d.file, line=d.line, defaults=self.defaults,
            chained=parent is not None, head_phase=parent.phase if parent else 2,
        )  # fmt: skip
        has_chain = any(n.lower() == "chain" for n, _ in split_actions(actions, d.file, d.line))
        if parent is not None:
            parent.chain = rule
        else:
            self.phases[rule.phase].append(rule)
        self._chain_tail = rule if has_chain else None
        self._chain_at = d if has_chain else None

    def remove(self, predicate: object) -> None:
        test = predicate  # a callable Rule -> bool
        for phase, rules in self.phases.items():
            self.phases[phase] = [r for r in rules if not (isinstance(r, Rule) and test(r))]  # type: ignore[operator]

    def _update_targets(self, predicate: object, d: Directive) -> None:
        test = predicate
        specs = split_targets(d.args[1], d.file, d.line)
        for rule in self.rules():
            if test(rule):  # type: ignore[operator]
                for spec in specs:
                    target = compile_target(spec)
                    if spec.exclude:
                        rule.excluded = (*rule.excluded, target)
                    else:
                        rule.targets = (*rule.targets, target)


def _id_in(rule_id: int, spec: str) -> bool:
    """`942100` or a range `900000-900999`."""
    lo, dash, hi = spec.partition("-")
    try:
        if dash:
            return int(lo) <= rule_id <= int(hi)
        return rule_id == int(spec)
    except ValueError as exc:
        raise ValueError(f"bad rule id {spec!r}") from exc
