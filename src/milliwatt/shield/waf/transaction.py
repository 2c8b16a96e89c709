"""One HTTP exchange through the rules: phases 1-5, its variables, matches and verdict.

A transaction owns all of its state; many may run at once on one WAF.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from milliwatt.shield.waf.actions import CtlSetting
from milliwatt.shield.waf.api import HttpRequest, HttpResponse, Interruption, MatchedRule
from milliwatt.shield.waf.audit import DATA_LIMIT, audit_record
from milliwatt.shield.waf.compiled import Phase
from milliwatt.shield.waf.controls import CONTROLS, as_int
from milliwatt.shield.waf.macros import Macro
from milliwatt.shield.waf.matching import CAPTURE_KEYS, TargetMatching, View
from milliwatt.shield.waf.operators import to_int
from milliwatt.shield.waf.replay import replay, replayable
from milliwatt.shield.waf.request_data import load_request, load_request_body, load_response
from milliwatt.shield.waf.rules import Rule
from milliwatt.shield.waf.ruleset import RuleSet
from milliwatt.shield.waf.screen import ruled_out as screen_values
from milliwatt.shield.waf.variables import Target, TxData

if TYPE_CHECKING:
    from milliwatt.shield.waf.engine import WAF


class Transaction(TargetMatching):
    def __init__(
        self,
        waf: WAF,
        client_ip: str = "127.0.0.1",
        client_port: int = 0,
        server_ip: str = "127.0.0.1",
        server_port: int = 80,
        request_id: str | None = None,
    ) -> None:
        self.waf = waf
        self.request_id = request_id or os.urandom(16).hex()  # as unique as a uuid4, cheaper
        self.data = TxData()
        self.engine = waf.ruleset.engine
        self.request_body_access = waf.ruleset.request_body_access
        self.response_body_access = waf.ruleset.response_body_access
        self.body_processor: str | None = None
        self.force_request_body = False
        self.matched_rules: list[MatchedRule] = []
        self.log_lines: list[str] = []
        self.interruption: Interruption | None = None
        self.removed_ids: set[int] = set()
        self.removed_ranges: list[tuple[int, int]] = []
        self.removed_tags: set[str] = set()
        self.removed_targets: dict[int, list[Target]] = {}
        self.removed_targets_by_tag: list[tuple[str, Target]] = []
        self.removed_targets_by_msg: list[tuple[str, Target]] = []
        self.removed_msgs: set[str] = set()
        self.request_body_limit = waf.ruleset.request_body_limit
        self.response_body_limit = waf.ruleset.response_body_limit
        self.audit_engine = "relevantonly"  # ctl:auditEngine; the audit log keeps what it says
        self.removing = False  # any rule removed by ctl: so far (most requests: none)
        self.retargeting = False  # any target removed by ctl: so far
        self.tx_retargeted = False  # ... and any of them a TX variable
        self._allowed_through = 0  # phases up to this one are skipped after an allow
        self._rule: Rule | None = None
        self._captures: list[tuple[str, ...]] = []
        waf.caches.make_room()
        self._tcache = waf.caches.transformed
        # (target, exclusions) -> selected pairs; cleared whenever request/response data loads
        self._selected: dict[str, list[tuple[str, str]]] = {}
        # (target, exclusions, transformations) -> the transformed values, same lifetime
        self._views: dict[str, View] = {}
        self._unions: dict[str, int | None] = {}  # same, per rule
        self._view_unions: dict[str, int | None] = {}  # same, per target
        self._present: frozenset[str] | None = None
        self._retargets = waf.retargets  # rules' keys after ctl: removed targets
        self.removals: tuple[str, ...] = ()  # the ctl: target removals, in order
        self._pcache = waf.caches.matched
        # values too large to keep beyond this transaction (bodies) have caches of their own
        self._big_tcache: dict[tuple[str, str], str] = {}
        self._big_pcache: dict[str, int | None] = {}
        self._scache = waf.caches.screened
        self._big_scache: dict[tuple[str, str], int | None] = {}
        self._started = time.perf_counter()
        self._request: HttpRequest | None = None
        self._finished = False
        s = self.data.scalars
        s.update(REMOTE_ADDR=client_ip, REMOTE_PORT=str(client_port), SERVER_ADDR=server_ip,
                 SERVER_PORT=str(server_port), UNIQUE_ID=self.request_id, REQBODY_ERROR="0",
                 REQBODY_PROCESSOR_ERROR="0", INBOUND_DATA_ERROR="0", OUTBOUND_DATA_ERROR="0",
                 TIME_EPOCH=str(int(time.time())), HIGHEST_SEVERITY="255")  # fmt: skip

    @property
    def ruleset(self) -> RuleSet:
        return self.waf.ruleset

    # -- public API -----------------------------------------------------------------------

    def process_request(self, request: HttpRequest) -> Interruption | None:
        """Phases 1 (headers) and 2 (body); returns the interruption, if the rules ask for one."""
        self._request = request
        load_request(self, request)
        if self._run_phase(1):
            return self.interruption
        load_request_body(self, request.body)
        self._run_phase(2)
        return self.interruption

    def process_response(self, response: HttpResponse) -> Interruption | None:
        """Phases 3 (headers) and 4 (body)."""
        if self._interrupted():
            return self.interruption
        load_response(self, response, with_body=False)
        if self._run_phase(3):
            return self.interruption
        load_response(self, response, with_body=True)
        self._run_phase(4)
        return self.interruption

    def finish(self) -> dict[str, Any]:
        """Phase 5 (logging) once; returns the audit record."""
        if not self._finished:
            self._finished = True
            self._run_phase(5)
        return audit_record(self, self._request, time.perf_counter() - self._started)

    # -- the phase pipeline -----------------------------------------------------------------

    def _run_phase(self, phase: int) -> bool:
        """Runs one phase; True when the transaction was interrupted."""
        if self.engine == "off" or self._interrupted():
            return self._interrupted()
        if phase <= self._allowed_through and phase != 5:
            return False
        program = self.waf.phases.get(phase)
        if program is None:
            return False
        rules, steps, markers, runs = program.rules, program.steps, program.markers, program.runs
        collections = self.data.collections
        n, i = len(rules), 0
        # the rules no value can fire are passed over, asked once for the phase
        screen = program.screen
        ruled_out = screen_values(self, screen) if screen is not None else bytearray(n)
        while i < n:
            run = runs[i]
            if run is not None and replayable(self, run):
                i = replay(self, program, run, i)
                continue
            if ruled_out[i]:
                # as its evaluation would leave it (a removed rule is not evaluated at all)
                if not (self.removing and self._is_removed(rules[i])):
                    collections["MATCHED_VARS"] = []
                i += 1
                continue
            rule = rules[i]
            i += 1
            if self.removing and self._is_removed(rule):
                continue
            if not steps[i - 1](self):
                continue
            if self._interrupted():
                return True
            if rule.disruptive == "allow":
                self._allowed_through = {"phase": phase, "request": 2}.get(rule.allow_scope, 4)
                return False
            i = rule.after_match(i, markers, n)
        return False

    def _walk(self, program: Phase, start: int) -> int:
        """Walks the run from `start` rule by rule (none of them can interrupt or be removed)."""
        rules, steps, markers, runs = program.rules, program.steps, program.markers, program.runs
        n, i = len(rules), start
        while i < n and runs[i] is not None:
            rule = rules[i]
            i += 1
            if steps[i - 1](self):
                i = rule.after_match(i, markers, n)
        return i

    def _interrupted(self) -> bool:
        # a call, not `self.interruption is not None` inline: the type checker (and the
        # compiler built on it) would keep that narrowing across the rules' calls that set it
        return self.interruption is not None

    def _is_removed(self, rule: Rule) -> bool:
        if rule.id in self.removed_ids:
            return True
        if self.removed_ranges and any(lo <= rule.id <= hi for lo, hi in self.removed_ranges):
            return True
        if self.removed_msgs and rule.msg is not None and rule.msg.text in self.removed_msgs:
            return True
        return bool(self.removed_tags) and any(t in self.removed_tags for t in rule.tags)

    def _evaluate(self, head: Rule) -> bool:
        self._rule = head
        if head.comparison is not None and not self.tx_retargeted:
            return self._compare(head, *head.comparison)
        self.data.collections["MATCHED_VARS"] = []
        rule: Rule | None = head
        while rule is not None:
            found = self._match(rule)
            if not found:
                return False
            self._matched(rule, found)
            rule = rule.chain
        self._conclude(head)
        return True

    def _matched(self, rule: Rule, found: list[tuple[str, str]]) -> None:
        """A chain member matched: its actions run, and MATCHED_VAR(S) say what matched."""
        # as in ModSecurity, a member's actions run at once: later members may read them
        if rule.actions:
            for n, (name, value) in enumerate(found):
                if rule.capture and n < len(self._captures):
                    self.set_captures(self._captures[n])
                self.data.scalars["MATCHED_VAR"] = value
                self.data.scalars["MATCHED_VAR_NAME"] = name
                for action in rule.actions:
                    action.apply(self)
        self._set_matched(found)

    def _compare(
        self, rule: Rule, key: str, test: Callable[[int, int], bool], constant: int
    ) -> bool:
        """`_evaluate` for a rule that compares one TX variable with a number, inline."""
        value = self.data.tx.get(key)
        if value is None or not test(to_int(value), constant):
            self.data.collections["MATCHED_VARS"] = []
            return False
        self._set_matched([("TX:" + key, value)])
        self._conclude(rule)
        return True

    def _set_matched(self, found: list[tuple[str, str]]) -> None:
        name, value = found[-1]
        s, c = self.data.scalars, self.data.collections
        s["MATCHED_VAR"], s["MATCHED_VAR_NAME"] = value, name
        if len(found) == 1:  # the usual case, without building lists to filter
            c["MATCHED_VARS"] = found if name else []
            c["MATCHED_VARS_NAMES"] = [(name, name)] if name else []
            return
        c["MATCHED_VARS"] = [(n, v) for n, v in found if n]
        c["MATCHED_VARS_NAMES"] = [(n, n) for n, _ in found if n]

    def _conclude(self, rule: Rule) -> None:
        """Logs the match and applies the rule's disruptive action."""
        action, status = rule.disruptive, rule.status
        if action == "block":
            action, status = rule.default_disruptive, rule.default_status
        if rule.log or rule.auditlog:
            msg = self.expand(rule.msg) if rule.msg else ""
            data = self.expand(rule.logdata) if rule.logdata else ""
            var = self.data.scalars.get("MATCHED_VAR_NAME", "")
            value = self.data.scalars.get("MATCHED_VAR", "")[: DATA_LIMIT * 4]
            data = data[: DATA_LIMIT * 4]  # the log line keeps more than the audit record
            entry = MatchedRule(
                rule.id, msg, data, rule.severity, rule.tags, rule.phase, var, value
            )
            self.matched_rules.append(entry)
            if rule.log:
                self.log_lines.append(entry.log_line())
        if action in ("deny", "drop", "redirect") and self.engine == "on":
            url = self.expand(rule.redirect) if rule.redirect else None
            msg = self.expand(rule.msg) if rule.msg else ""
            self.interruption = Interruption(status, rule.id, action, msg, url)

    # -- what operators and actions call back ------------------------------------------------

    def expand(self, macro: Macro) -> str:
        return macro.text if macro.is_constant else macro.expand(self._lookup)

    def _lookup(self, name: str, key: str | None) -> str:
        if name == "RULE" and self._rule is not None:
            rule = self._rule
            if key == "id":
                return str(rule.id)
            if key == "msg":
                return self.expand(rule.msg) if rule.msg else ""
            if key == "severity":
                return rule.severity
            return ""
        value = self.data.get(name, key)
        return value if value is not None else ""

    def set_captures(self, groups: tuple[str, ...]) -> None:
        self.data.tx.update(zip(CAPTURE_KEYS, groups, strict=False))

    def set_var(self, collection: str, key: str, value: str | None, op: str) -> None:
        store = (
            self.data.tx if collection == "TX" else self.data.persistent.setdefault(collection, {})
        )
        if op == "delete":
            store.pop(key, None)
        elif op == "=":
            store[key] = value or ""
        else:
            current = as_int(store.get(key, "0"))
            delta = as_int(value or "0")
            store[key] = str(current + delta if op == "+" else current - delta)

    def init_collection(self, collection: str, key: str) -> None:
        self.data.persistent.setdefault(collection, {})

    def control(self, setting: CtlSetting, value: str) -> None:
        CONTROLS[setting](self, value)
