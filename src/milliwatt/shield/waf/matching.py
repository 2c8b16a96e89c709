"""Matching one rule's targets: selection, transformation, the pattern set's answers.

Each target's transformed values are kept per transaction (a view), with which patterns of
the WAF's pattern set match each of them, so an @rx rule whose pattern matches none of its
values costs a set lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from milliwatt.shield.waf.operators import Rx
from milliwatt.shield.waf.regexes import Regex
from milliwatt.shield.waf.rules import Rule
from milliwatt.shield.waf.variables import Target, TxData

if TYPE_CHECKING:
    from milliwatt.shield.waf.engine import WAF

SHARED_VALUE_MAX = 4096  # characters: larger values are cached per transaction only
_UNKNOWN = frozenset({-1})  # a cache miss (None is a cached answer: "ask each pattern")


class View:
    """One target's transformed values in a transaction, and the patterns each matches."""

    __slots__ = ("answers", "pairs", "union")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.answers: list[frozenset[int]] | None = None  # filled on first @rx use
        self.union: set[int] | None = set()  # None: the set gave up on a value


class TargetMatching:
    """The matching half of a transaction (its state is set up by Transaction)."""

    waf: WAF
    data: TxData
    _captures: list[tuple[str, ...]]
    _retargeting: bool
    removed_targets: dict[int, list[Target]]
    removed_targets_by_tag: list[tuple[str, Target]]
    _tcache: dict[tuple[str, tuple[str, ...]], str]
    _big_tcache: dict[tuple[str, tuple[str, ...]], str]
    _pcache: dict[str, frozenset[int] | None]
    _big_pcache: dict[str, frozenset[int] | None]
    _selected: dict[str, list[tuple[str, str]]]
    _views: dict[str, View]
    _unions: dict[str, set[int] | frozenset[int] | None]

    def _match(self, rule: Rule) -> list[tuple[str, str]]:
        op = rule.operator
        if op is None:
            return [("", "")]
        excluded = rule.excluded
        if self._retargeting:
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
                    if view.union is not None:  # the set knows every value's patterns
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
                        cache = shared_t if len(raw) <= SHARED_VALUE_MAX else big_t
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
                cache = shared_t if len(raw) <= SHARED_VALUE_MAX else big_t
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
        self._unions.clear()

    def _view(self, rule: Rule, index: int, target: Target) -> View:
        key = rule.select_keys[index]
        pairs = self._selected.get(key)
        if pairs is None:
            pairs = self._selected[key] = self.data.select(target, rule.excluded)
        if rule.transforms:
            shared, big = self._tcache, self._big_tcache
            tchain, out = rule.tchain, []
            for name, raw in pairs:
                cache = shared if len(raw) <= SHARED_VALUE_MAX else big
                value = cache.get((raw, tchain))
                out.append((name, value if value is not None else self._transform(raw, rule)))
            pairs = out
        view = self._views[rule.view_keys[index]] = View(pairs)
        return view

    def _answer(self, view: View) -> list[frozenset[int]]:
        """Fills in which patterns match each of the view's values; when the set gave up on
        one, the union is None and each pattern runs on its own."""
        answers: list[frozenset[int]] = []
        union: set[int] | None = set()
        pcache = self._pcache
        for _, value in view.pairs:
            ids = pcache.get(value, _UNKNOWN)
            if ids is _UNKNOWN:
                ids = self._matching(value)
            if ids is None:
                answers, union = [], None
                break
            answers.append(ids)
            union |= ids  # type: ignore[operator]
        view.answers, view.union = answers, union
        return answers

    def _screened_out(self, rule: Rule, key: str, set_id: int) -> bool:
        """True when the pattern set shows that the rule's @rx matches none of its values."""
        union = self._unions.get(key, _UNKNOWN)
        if union is _UNKNOWN:
            union = self._unions[key] = self._union_of(rule)
        return union is not None and set_id not in union

    def _union_of(self, rule: Rule) -> set[int] | frozenset[int] | None:
        total: set[int] = set()
        for index, target in enumerate(rule.targets):
            view = self._views.get(rule.view_keys[index]) or self._view(rule, index, target)
            if view.answers is None:
                self._answer(view)
            if view.union is None:
                return None
            total |= view.union
        return total

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
        return value

    def _keep_captures(self, capture: bool) -> None:
        """Actions run per match after matching: each needs the captures of its own match."""
        if capture:
            tx = self.data.tx
            self._captures.append(tuple(tx.get(str(i), "") for i in range(10)))

    def may_match(self, rx: Regex, value: str) -> bool:
        if rx.set_id is None:
            return True
        ids = self._pcache.get(value, _UNKNOWN)
        if ids is _UNKNOWN:
            ids = self._matching(value)
        return ids is None or rx.set_id in ids  # type: ignore[operator]

    def _matching(self, value: str) -> frozenset[int] | None:
        """Ids of the patterns that match this value (cached); None: ask each pattern."""
        pcache = self._pcache if len(value) <= SHARED_VALUE_MAX else self._big_pcache
        if value in pcache:
            return pcache[value]
        ids = pcache[value] = self.waf.pattern_set.matching(value)  # type: ignore[union-attr]
        return ids
