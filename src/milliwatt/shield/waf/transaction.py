"""One HTTP exchange through the rules: phases 1-5, its variables, matches and verdict.

A transaction owns all of its state; many may run at once on one WAF.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from milliwatt.shield.waf.api import HttpRequest, HttpResponse, Interruption, MatchedRule
from milliwatt.shield.waf.audit import DATA_LIMIT, audit_record
from milliwatt.shield.waf.macros import Macro
from milliwatt.shield.waf.operators import Rx
from milliwatt.shield.waf.regexes import Regex
from milliwatt.shield.waf.request_data import load_request, load_request_body, load_response
from milliwatt.shield.waf.rules import Rule
from milliwatt.shield.waf.seclang import split_targets
from milliwatt.shield.waf.variables import Target, TxData, compile_target

if TYPE_CHECKING:
    from milliwatt.shield.waf.engine import WAF

_SHARED_CACHE_ENTRIES = 50_000
_SHARED_VALUE_MAX = 4096  # characters: larger values are cached per transaction only
_UNKNOWN = frozenset({-1})  # a cache miss (None is a cached answer: "ask each pattern")


class Transaction:
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
        self.request_id = request_id or uuid.uuid4().hex
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
        self._allowed_through = 0  # phases up to this one are skipped after an allow
        self._rule: Rule | None = None
        self._captures: list[tuple[str, ...]] = []
        # transformed values and pattern-set answers are pure functions of the value: shared
        # by all transactions (header values repeat across requests), bounded by a periodic reset
        if len(waf.transform_cache) > _SHARED_CACHE_ENTRIES:
            waf.transform_cache.clear()
            waf.match_cache.clear()
        self._tcache = waf.transform_cache
        # (target, exclusions) -> selected pairs; cleared whenever request/response data loads
        self._selected: dict[str, list[tuple[str, str]]] = {}
        # (target, exclusions, transformations) -> the transformed values, same lifetime
        self._views: dict[str, _View] = {}
        self._pcache = waf.match_cache
        # values too large to keep beyond this transaction (bodies) have caches of their own
        self._big_tcache: dict[tuple[str, tuple[str, ...]], str] = {}
        self._big_pcache: dict[str, frozenset[int] | None] = {}
        self._started = time.perf_counter()
        self._request: HttpRequest | None = None
        self._finished = False
        s = self.data.scalars
        s.update(REMOTE_ADDR=client_ip, REMOTE_PORT=str(client_port), SERVER_ADDR=server_ip,
                 SERVER_PORT=str(server_port), UNIQUE_ID=self.request_id, REQBODY_ERROR="0",
                 REQBODY_PROCESSOR_ERROR="0", INBOUND_DATA_ERROR="0", OUTBOUND_DATA_ERROR="0",
                 TIME_EPOCH=str(int(time.time())), HIGHEST_SEVERITY="255")  # fmt: skip

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
        if self.interruption is not None:
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
        if self.engine == "off" or self.interruption is not None:
            return self.interruption is not None
        if phase <= self._allowed_through and phase != 5:
            return False
        items = self.waf.ruleset.phases[phase]
        markers = self.waf.markers[phase]
        n, i = len(items), 0
        while i < n:
            rule = items[i]
            i += 1
            if isinstance(rule, str) or self._is_removed(rule):
                continue
            if not self._evaluate(rule):
                continue
            if self.interruption is not None:
                return True
            if rule.disruptive == "allow":
                self._allowed_through = {"phase": phase, "request": 2}.get(rule.allow_scope, 4)
                return False
            if rule.skip_after is not None:
                i = markers.get(rule.skip_after, n)
            elif rule.skip:
                left = rule.skip
                while i < n and left:
                    left -= not isinstance(items[i], str)
                    i += 1
        return False

    def _is_removed(self, rule: Rule) -> bool:
        if rule.id in self.removed_ids:
            return True
        if self.removed_ranges and any(lo <= rule.id <= hi for lo, hi in self.removed_ranges):
            return True
        return bool(self.removed_tags) and any(t in self.removed_tags for t in rule.tags)

    def _evaluate(self, head: Rule) -> bool:
        self._rule = head
        self.data.collections["MATCHED_VARS"] = []
        rule: Rule | None = head
        while rule is not None:
            found = self._match(rule)
            if not found:
                return False
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
            rule = rule.chain
        self._conclude(head)
        return True

    def _set_matched(self, found: list[tuple[str, str]]) -> None:
        name, value = found[-1]
        s = self.data.scalars
        s["MATCHED_VAR"], s["MATCHED_VAR_NAME"] = value, name
        self.data.collections["MATCHED_VARS"] = [(n, v) for n, v in found if n]
        self.data.collections["MATCHED_VARS_NAMES"] = [(n, n) for n, _ in found if n]

    def _match(self, rule: Rule) -> list[tuple[str, str]]:
        op = rule.operator
        if op is None:
            return [("", "")]
        excluded = rule.excluded
        extra = self.removed_targets.get(rule.id)
        if extra:
            excluded = (*excluded, *extra)
        if self.removed_targets_by_tag and rule.tags:
            by_tag = [t for tag, t in self.removed_targets_by_tag if tag in rule.tags]
            if by_tag:
                excluded = (*excluded, *by_tag)
        found: list[tuple[str, str]] = []
        self._captures = []
        negated, capture = rule.negated, rule.capture
        transforms, tchain = rule.transforms, rule.tchain
        shared_t, big_t, shared_p = self._tcache, self._big_tcache, self._pcache
        multi = rule.multi_match
        selected = self._selected
        static = excluded is rule.excluded
        sid = op.regex.set_id if isinstance(op, Rx) else None
        for index, target in enumerate(rule.targets):
            if static and target.cacheable and not multi:
                view = self._views.get(rule.view_keys[index])
                if view is None:
                    view = self._view(rule, index, target)
                if sid is not None:
                    answers = view.answers if view.answers is not None else self._answer(view)
                    if answers:  # the set knows every value's patterns
                        if not negated and sid not in view.union:
                            continue
                        if not capture:
                            for pair, ids in zip(view.pairs, answers, strict=True):
                                if (sid in ids) != negated:  # type: ignore[operator]
                                    found.append(pair)
                            continue
                for pair in view.pairs:
                    if op.evaluate(self, pair[1], capture) != negated:
                        found.append(pair)
                        self._keep_captures(capture)
                continue
            if static and target.cacheable:
                key_ = rule.select_keys[index]
                pairs = selected.get(key_)
                if pairs is None:
                    pairs = selected[key_] = self.data.select(target, excluded)
            else:
                pairs = self.data.select(target, excluded)
            for name, raw in pairs:
                if not multi:  # the common case: one transformed value per variable
                    if transforms:
                        cache = shared_t if len(raw) <= _SHARED_VALUE_MAX else big_t
                        value = cache.get((raw, tchain))  # type: ignore[assignment]
                        if value is None:
                            value = self._transform(raw, rule)
                    else:
                        value = raw
                    if sid is not None:  # the pattern set already knows: most values end here
                        ids = shared_p.get(value, _UNKNOWN)
                        if ids is _UNKNOWN:
                            ids = self._matching(value)
                        if ids is not None:
                            hit = sid in ids
                            if hit and capture:  # the rule's own regex reads the groups
                                hit = op.evaluate(self, value, capture)
                            if hit != negated:
                                found.append((name, value))
                                self._keep_captures(capture)
                            continue
                    if op.evaluate(self, value, capture) != negated:
                        found.append((name, value))
                        self._keep_captures(capture)
                    continue
                # multiMatch: every stage whose value changed is a candidate
                cache = shared_t if len(raw) <= _SHARED_VALUE_MAX else big_t
                stages = [raw]
                for prefix in rule.tprefixes:
                    value = cache.get((raw, prefix))  # type: ignore[assignment]
                    if value is None:
                        value = self._transform(raw, rule, len(prefix))
                    if value != stages[-1]:
                        stages.append(value)
                for value in stages:
                    if op.evaluate(self, value, capture) != negated:
                        found.append((name, value))
                        self._keep_captures(capture)
                        break
        return found

    def data_changed(self) -> None:
        """Request or response data was (re)loaded: selections made before are stale."""
        self._selected.clear()
        self._views.clear()

    def _view(self, rule: Rule, index: int, target: Target) -> _View:
        key = rule.select_keys[index]
        pairs = self._selected.get(key)
        if pairs is None:
            pairs = self._selected[key] = self.data.select(target, rule.excluded)
        if rule.transforms:
            shared, big = self._tcache, self._big_tcache
            tchain, out = rule.tchain, []
            for name, raw in pairs:
                cache = shared if len(raw) <= _SHARED_VALUE_MAX else big
                value = cache.get((raw, tchain))
                out.append((name, value if value is not None else self._transform(raw, rule)))
            pairs = out
        view = self._views[rule.view_keys[index]] = _View(pairs)
        return view

    def _answer(self, view: _View) -> list[frozenset[int] | None] | None:
        """Fills in which patterns match each of the view's values; [] when the set gave up
        on one (or there are none), so that each pattern then runs on its own."""
        answers: list[frozenset[int] | None] = []
        union: set[int] = set()
        pcache = self._pcache
        for _, value in view.pairs:
            ids = pcache.get(value, _UNKNOWN)
            if ids is _UNKNOWN:
                ids = self._matching(value)
            if ids is None:
                answers = []
                break
            answers.append(ids)
            union |= ids
        view.answers, view.union = answers, union
        return answers

    def _transform(self, raw: str, rule: Rule, upto: int | None = None) -> str:
        """Applies the rule's first `upto` transformations (all by default), reusing the
        longest prefix of them already computed for this value."""
        cache = self._tcache if len(raw) <= _SHARED_VALUE_MAX else self._big_tcache
        prefixes = rule.tprefixes
        end = len(prefixes) if upto is None else upto
        start, value = 0, raw
        for i in range(end - 2, -1, -1):
            hit = cache.get((raw, prefixes[i]))
            if hit is not None:
                start, value = i + 1, hit
                break
        transforms = rule.transforms
        for i in range(start, end):
            value = transforms[i][1](value)
            cache[(raw, prefixes[i])] = value
        return value

    def _keep_captures(self, capture: bool) -> None:
        """Actions run per match after matching: each needs the captures of its own match."""
        if capture:
            tx = self.data.tx
            self._captures.append(tuple(tx.get(str(i), "") for i in range(10)))

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
        return macro.expand(self._lookup)

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
        for i, g in enumerate(groups[:10]):
            self.data.tx[str(i)] = g

    def may_match(self, rx: Regex, value: str) -> bool:
        if rx.set_id is None:
            return True
        ids = self._pcache.get(value, _UNKNOWN)
        if ids is _UNKNOWN:
            ids = self._matching(value)
        return ids is None or rx.set_id in ids  # type: ignore[operator]

    def _matching(self, value: str) -> frozenset[int] | None:
        """Ids of the patterns that match this value (cached); None: ask each pattern."""
        pcache = self._pcache if len(value) <= _SHARED_VALUE_MAX else self._big_pcache
        if value in pcache:
            return pcache[value]
        ids = pcache[value] = self.waf.pattern_set.matching(value)  # type: ignore[union-attr]
        return ids

    def set_var(self, collection: str, key: str, value: str | None, op: str) -> None:
        store = (
            self.data.tx if collection == "TX" else self.data.persistent.setdefault(collection, {})
        )
        if op == "delete":
            store.pop(key, None)
        elif op == "=":
            store[key] = value or ""
        else:
            current = _as_int(store.get(key, "0"))
            delta = _as_int(value or "0")
            store[key] = str(current + delta if op == "+" else current - delta)

    def init_collection(self, collection: str, key: str) -> None:
        self.data.persistent.setdefault(collection, {})

    def control(self, setting: str, value: str) -> None:
        if setting == "ruleengine":
            self.engine = (
                value.lower() if value.lower() in ("on", "off", "detectiononly") else self.engine
            )
        elif setting == "ruleremovebyid":
            for spec in value.split():
                lo, dash, hi = spec.partition("-")
                if dash:
                    self.removed_ranges.append((_as_int(lo), _as_int(hi)))
                else:
                    self.removed_ids.add(_as_int(spec))
        elif setting == "ruleremovebytag":
            self.removed_tags.add(value)
        elif setting in ("ruleremovetargetbyid", "ruleremovetargetbytag"):
            selector, _, targets = value.partition(";")
            for spec in split_targets(targets, "ctl", 0):
                target = compile_target(spec)
                if setting.endswith("byid"):
                    self.removed_targets.setdefault(_as_int(selector), []).append(target)
                else:
                    self.removed_targets_by_tag.append((selector, target))
        elif setting == "requestbodyprocessor":
            self.body_processor = value.upper()
            self.data.scalars["REQBODY_PROCESSOR"] = self.body_processor
        elif setting == "forcerequestbodyvariable":
            self.force_request_body = value.lower() == "on"
        elif setting == "requestbodyaccess":
            self.request_body_access = value.lower() == "on"
        elif setting == "responsebodyaccess":
            self.response_body_access = value.lower() == "on"


class _View:
    """One target's transformed values in a transaction, and the patterns each matches."""

    __slots__ = ("answers", "pairs", "union")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.answers: list[frozenset[int] | None] | None = None  # filled on first @rx use
        self.union: set[int] = set()


def _as_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0
