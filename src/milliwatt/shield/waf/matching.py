"""Matching one rule's targets: selection, transformation, the pattern set's answers.

Each target's transformed values are kept per transaction (a view), with which patterns of
the WAF's pattern set match each of them, so an @rx rule whose pattern matches none of its
values costs a set lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from milliwatt.shield.waf.caches import SHARED_VALUE_MAX, UNKNOWN, Mask
from milliwatt.shield.waf.macros import Macro
from milliwatt.shield.waf.operator_base import Operator
from milliwatt.shield.waf.regexes import Regex
from milliwatt.shield.waf.rules import Rule, select_key
from milliwatt.shield.waf.variables import Target, TxData

if TYPE_CHECKING:
    from milliwatt.shield.waf.engine import WAF

# a rule's exclusions, and per target the keys of its selected and of its transformed values
Targeting = tuple[tuple[Target, ...], tuple[str, ...], tuple[str, ...]]
RETARGETS_KEPT = 20_000
CAPTURE_KEYS = tuple(str(i) for i in range(10))  # TX:0 ... TX:9


class View:
    """One target's transformed values in a transaction, and the patterns each matches."""

    __slots__ = ("answers", "pairs", "union")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.answers: list[Mask] | None = None  # filled on first @rx/@pm use
        self.union: Mask | None = 0  # None: the set gave up


EMPTY_VIEW = View([])
EMPTY_VIEW.answers, EMPTY_VIEW.union = [], 0


class TargetMatching:
    """The matching half of a transaction (its state is set up by Transaction)."""

    waf: WAF
    data: TxData
    _captures: list[tuple[str, ...]]
    retargeting: bool
    tx_retargeted: bool  # a ctl: removal names a TX variable
    removed_targets: dict[int, list[Target]]
    removed_targets_by_tag: list[tuple[str, Target]]
    removed_targets_by_msg: list[tuple[str, Target]]
    _tcache: dict[tuple[str, str], str]
    _big_tcache: dict[tuple[str, str], str]
    _pcache: dict[str, Mask | None]
    _big_pcache: dict[str, Mask | None]
    _scache: dict[tuple[str, str], Mask | None]
    _big_scache: dict[tuple[str, str], Mask | None]
    _selected: dict[str, list[tuple[str, str]]]
    _views: dict[str, View]
    _unions: dict[str, Mask | None]
    _view_unions: dict[str, Mask | None]
    _present: frozenset[str] | None  # variables holding values, once asked
    _retargets: dict[tuple[Rule, tuple[str, ...]], Targeting]
    removals: tuple[str, ...]

    # what operators call back, given by the transaction
    def expand(self, macro: Macro) -> str:
        raise NotImplementedError

    def set_captures(self, groups: tuple[str, ...]) -> None:
        raise NotImplementedError

    def _match(self, rule: Rule) -> list[tuple[str, str]]:
        op = rule.operator
        if op is None:
            return [("", "")]
        self._captures = []
        if rule.tx_keys is not None and not self.tx_retargeted:
            return self._match_tx(rule, op, rule.tx_keys)
        if self.retargeting:
            excluded, select_keys, view_keys = self._retargeted(rule)
        else:
            excluded, select_keys, view_keys = rule.excluded, rule.select_keys, rule.view_keys
        found: list[tuple[str, str]] = []
        negated, capture = rule.negated, rule.capture
        transforms, tchain = rule.transforms, rule.tchain
        shared_t, big_t, shared_p = self._tcache, self._big_tcache, self._pcache
        multi = rule.multi_match
        selected = self._selected
        bit = rule.screen_bit  # 0: the pattern set does not answer for this operator
        for index, target in enumerate(rule.targets):
            if target.cacheable and not multi:
                view = self._views.get(view_keys[index])
                if view is None:
                    view = self._view(rule, target, excluded, select_keys[index], view_keys[index])
                if bit:
                    answers = view.answers if view.answers is not None else self._answer(view)
                    if view.union is not None:  # the set knows every value's patterns
                        if not negated and not view.union & bit:
                            continue
                        if not capture:
                            for pair, mask in zip(view.pairs, answers, strict=True):
                                if bool(mask & bit) != negated:
                                    found.append(pair)
                            continue
                for pair in view.pairs:
                    if op.evaluate(self, pair[1], capture) != negated:
                        found.append(pair)
                        self._keep_captures(capture)
                continue
            if target.cacheable:
                key_ = select_keys[index]
                pairs = selected.get(key_)
                if pairs is None:
                    pairs = selected[key_] = self.data.select(target, excluded)
            else:
                pairs = self.data.select(target, excluded)
            for name, raw in pairs:
                if not multi:  # the common case: one transformed value per variable
                    if transforms:
                        cache = shared_t if len(raw) <= SHARED_VALUE_MAX else big_t
                        value = cache.get((raw, tchain))
                        if value is None:
                            value = self._transform(raw, rule)
                    else:
                        value = raw
                    if bit:  # the pattern set already knows: most values end here
                        ids: Mask | None = shared_p.get(value, UNKNOWN)
                        if ids is UNKNOWN:
                            ids = self._matching(value)
                        if ids is not None:
                            hit = bool(ids & bit)
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
                for value in self._stages(raw, rule):  # multiMatch
                    if op.evaluate(self, value, capture) != negated:
                        found.append((name, value))
                        self._keep_captures(capture)
                        break
        return found

    def _match_tx(
        self, rule: Rule, op: Operator, keys: tuple[tuple[str, bool], ...]
    ) -> list[tuple[str, str]]:
        """`_match` for a rule reading TX variables by name only: no selection, no caches."""
        found: list[tuple[str, str]] = []
        tx, negated, capture = self.data.tx, rule.negated, rule.capture
        for key, counted in keys:
            value = tx.get(key)
            if counted:
                name, value = "TX", "0" if value is None else "1"
            elif value is None:
                continue
            else:
                name = "TX:" + key
            if op.evaluate(self, value, capture) != negated:
                found.append((name, value))
                self._keep_captures(capture)
        return found

    def data_changed(self) -> None:
        """Request or response data was (re)loaded: selections made before are stale."""
        self._selected.clear()
        self._views.clear()
        self._unions.clear()
        self._view_unions.clear()
        self._present = None

    def _retargeted(self, rule: Rule) -> Targeting:
        """The rule's exclusions and cache keys once ctl: removed targets from it."""
        # requests mostly remove the same targets (CRS 941010 on nearly every one): the keys
        # are kept for all transactions, by rule and the removals made so far
        memo = (rule, self.removals)
        known = self._retargets.get(memo)
        if known is not None:
            return known
        extra = list(self.removed_targets.get(rule.id, ()))
        if self.removed_targets_by_tag and rule.tags:
            extra += [t for tag, t in self.removed_targets_by_tag if tag in rule.tags]
        if self.removed_targets_by_msg and rule.msg is not None:
            extra += [t for msg, t in self.removed_targets_by_msg if msg == rule.msg.text]
        if not extra:
            known = rule.excluded, rule.select_keys, rule.view_keys
        else:
            excluded = (*rule.excluded, *extra)
            select_keys = tuple(select_key(t, excluded) for t in rule.targets)
            view_keys = tuple(f"{key}\x00{rule.tchain}" for key in select_keys)
            known = excluded, select_keys, view_keys
        if len(self._retargets) > RETARGETS_KEPT:
            self._retargets.clear()
        self._retargets[memo] = known
        return known

    def _view(
        self, rule: Rule, target: Target, excluded: tuple[Target, ...], key: str, view_key: str
    ) -> View:
        pairs = self._selected.get(key)
        if pairs is None:
            pairs = self._selected[key] = self.data.select(target, excluded)
        if not pairs:  # most variables are empty in most requests (XML, FILES, cookies)
            self._views[view_key] = EMPTY_VIEW
            return EMPTY_VIEW
        if rule.transforms:
            shared, big = self._tcache, self._big_tcache
            tchain, out = rule.tchain, []
            for name, raw in pairs:
                cache = shared if len(raw) <= SHARED_VALUE_MAX else big
                value = cache.get((raw, tchain))
                out.append((name, value if value is not None else self._transform(raw, rule)))
            pairs = out
        view = self._views[view_key] = View(pairs)
        return view

    def _answer(self, view: View) -> list[Mask]:
        """Fills in which patterns match each of the view's values; when the set gave up on
        one, the union is None and each pattern runs on its own."""
        answers: list[Mask] = []
        union: Mask = 0
        pcache = self._pcache
        for _, value in view.pairs:
            ids = pcache.get(value, UNKNOWN)
            if ids is UNKNOWN:
                ids = self._matching(value)
            if ids is None:
                view.answers, view.union = [], None
                return []
            answers.append(ids)
            union |= ids
        view.answers, view.union = answers, union
        return answers

    def _union_of(self, rule: Rule) -> Mask | None:
        """The patterns that match any of the rule's values (None: the set gave up on one)."""
        unions, total = self._view_unions, 0
        present = self._present
        if present is None:
            present = self._present = self.data.present()
        for index, target in enumerate(rule.targets):
            if target.name not in present:  # most requests: no XML, files or cookies
                continue
            union = unions.get(rule.screen_keys[index], UNKNOWN)
            if union is UNKNOWN:
                union = self._view_union(rule, index, target)
            if union is None:
                return None
            total |= union
        return total

    def _view_union(self, rule: Rule, index: int, target: Target) -> Mask | None:
        """The patterns one target's transformed values match (for multiMatch, any stage of
        their transformation does): all a prescreen needs, with none of a view's lists."""
        key = rule.select_keys[index]
        pairs = self._selected.get(key)
        if pairs is None:
            pairs = self._selected[key] = self.data.select(target, rule.excluded)
        union: Mask = 0
        for _, raw in pairs:
            ids = self._value_screen(raw, rule)
            if ids is None:
                self._view_unions[rule.screen_keys[index]] = None
                return None
            union |= ids
        self._view_unions[rule.screen_keys[index]] = union
        return union

    def _value_screen(self, raw: str, rule: Rule) -> Mask | None:
        """The patterns one raw value matches once transformed the rule's way (any stage, for
        multiMatch); kept by (value, transformations), so a header seen before costs a lookup."""
        cache = self._scache if len(raw) <= SHARED_VALUE_MAX else self._big_scache
        known = cache.get((raw, rule.screen_chain), UNKNOWN)
        if known is not UNKNOWN:
            return known
        if rule.multi_match:
            values = self._stages(raw, rule)
        elif rule.transforms:
            tcache = self._tcache if len(raw) <= SHARED_VALUE_MAX else self._big_tcache
            value = tcache.get((raw, rule.tchain))
            values = [value if value is not None else self._transform(raw, rule)]
        else:
            values = [raw]
        union: Mask | None = 0
        for value in values:
            ids = self._pcache.get(value, UNKNOWN)
            if ids is UNKNOWN:
                ids = self._matching(value)
            if ids is None:
                union = None
                break
            union = union | ids  # type: ignore[operator]  # not None until the break
        cache[(raw, rule.screen_chain)] = union
        if cache is self._scache:
            self.waf.caches.chars += len(raw)
        return union

    def _stages(self, raw: str, rule: Rule) -> list[str]:
        """multiMatch: the value before and after each transformation, where it changed."""
        cache = self._tcache if len(raw) <= SHARED_VALUE_MAX else self._big_tcache
        stages = [raw]
        for upto, prefix in enumerate(rule.tprefixes, 1):
            value = cache.get((raw, prefix))
            if value is None:
                value = self._transform(raw, rule, upto)
            if value != stages[-1]:
                stages.append(value)
        return stages

    def _transform(self, raw: str, rule: Rule, upto: int | None = None) -> str:
        """Applies the rule's first `upto` transformations (all by default), reusing the
        longest prefix of them already computed for this value."""
        cache = self._tcache if len(raw) <= SHARED_VALUE_MAX else self._big_tcache
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
        if cache is self._tcache:
            self.waf.caches.chars += len(raw) + len(value)
        return value

    def _keep_captures(self, capture: bool) -> None:
        """Actions run per match after matching: each needs the captures of its own match."""
        if capture:
            tx = self.data.tx
            self._captures.append(tuple([tx.get(k, "") for k in CAPTURE_KEYS]))

    def may_match(self, rx: Regex, value: str) -> bool:
        if rx.set_id is None:
            return True
        ids = self._pcache.get(value, UNKNOWN)
        if ids is UNKNOWN:
            ids = self._matching(value)
        return ids is None or bool(ids >> rx.set_id & 1)

    def _matching(self, value: str) -> Mask | None:
        """Ids of the patterns that match this value (cached); None: ask each pattern."""
        pcache = self._pcache if len(value) <= SHARED_VALUE_MAX else self._big_pcache
        if value in pcache:
            return pcache[value]
        ids = pcache[value] = self.waf.pattern_set.mask(value)  # type: ignore[union-attr]
        if pcache is self._pcache:
            self.waf.caches.matched_chars += len(value)
        return ids
