"""Per request and phase, the screened rules that no value can fire, asked value by value.

A screened rule (an @rx/@pm rule on request or response data whose pattern the pattern set
answers for) can match only if a value it reads, transformed its way, matches its pattern.
Asking that rule by rule costs a lookup per rule, target and value, about 400 for an ordinary
request. Asked value by value it costs one: each raw value of a variable is kept with the
rules of the phase its transformed forms match (their *slots*, one bit per screened rule).
The union over a variable's values, less the rules that do not read that variable, is every
rule it may fire; the others are passed over by the walk.

Exclusions (`!ARGS:name`) and `ctl:` target removals only take values away, so this answer
may name too many rules, never too few: a rule left in is decided exactly by its own step
(`compiled._screened`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from milliwatt.shield.waf.caches import SHARED_VALUE_MAX, UNKNOWN, Mask
from milliwatt.shield.waf.rules import Rule
from milliwatt.shield.waf.variables import Target

if TYPE_CHECKING:
    from milliwatt.shield.waf.transaction import Transaction

# a value new in every transaction: screening it ahead would cost a transformation and a
# pattern-set pass per request (and fill the caches) for a rule CRS seldom reaches (901410,
# behind its sampling switch); such rules are screened only when the walk gets to them
UNIQUE_PER_TRANSACTION = frozenset({"UNIQUE_ID"})


@dataclass(frozen=True, slots=True)
class Family:
    """The screened rules of a phase whose values are transformed alike (one screen chain)."""

    reader: Rule  # one of them: how a value is transformed (and staged, for multiMatch)
    bits: tuple[tuple[Mask, Mask], ...]  # per rule: (its pattern's bit, its slot)
    slots: Mask  # all of them: what a value fires when the pattern set gave up on it


@dataclass(frozen=True, slots=True)
class Source:
    """One variable that screened rules of a phase read: all its values (XML: of one XPath)."""

    name: str  # as `TxData.present` names it
    target: Target  # no key (but XML's XPath): every value any of its readers may select
    readers: Mask  # slots of the rules that read it
    families: tuple[Family, ...]  # the readers' families: what a value's slots depend on
    key: str  # names the families (and phase): values meeting the same ones share answers


@dataclass(frozen=True, slots=True)
class PhaseScreen:
    sources: tuple[Source, ...]
    indexes: tuple[int, ...]  # per slot, the rule's index in its phase
    template: bytes  # 1 at every screened rule's index: all ruled out, until a value says


def build_screen(rules: list[Rule]) -> PhaseScreen | None:
    """The phase's screened rules as slots, grouped by variable and by transformation."""
    screened = [
        (index, rule)
        for index, rule in enumerate(rules)
        if rule.prescreen is not None
        and not any(t.name in UNIQUE_PER_TRANSACTION for t in rule.targets)
    ]
    if not screened:
        return None
    families: dict[str, list[tuple[Rule, Mask, Mask]]] = {}
    readers: dict[Target, tuple[Mask, set[str]]] = {}
    for slot, (_, rule) in enumerate(screened):
        families.setdefault(rule.screen_chain, []).append((rule, rule.screen_bit, 1 << slot))
        for target in rule.targets:
            source = Target(target.name, target.key if target.name == "XML" else None)
            mask, chains = readers.get(source, (0, set()))
            chains.add(rule.screen_chain)
            readers[source] = (mask | 1 << slot, chains)
    built = {
        chain: Family(members[0][0], tuple((b, s) for _, b, s in members), _or(members))
        for chain, members in families.items()
    }
    phase = rules[0].phase
    sources = tuple(
        Source(
            target.name,
            target,
            mask,
            tuple(built[c] for c in sorted(chains)),
            f"{phase}\x00" + "\x01".join(sorted(chains)),
        )
        for target, (mask, chains) in readers.items()
    )
    template = bytearray(len(rules))
    for index, _ in screened:
        template[index] = 1
    return PhaseScreen(sources, tuple(index for index, _ in screened), bytes(template))


def _or(members: list[tuple[Rule, Mask, Mask]]) -> Mask:
    out = 0
    for _, _, slot in members:
        out |= slot
    return out


def ruled_out(tx: Transaction, screen: PhaseScreen) -> bytearray:
    """Per rule of the phase, 1 where no value of this request can fire it."""
    present = tx._present
    if present is None:
        present = tx._present = tx.data.present()
    known = tx.waf.caches.slotted
    candidates: Mask = 0
    for source in screen.sources:
        if source.name not in present:  # most requests: no XML, files or cookies
            continue
        answers = known.get(source.key)
        if answers is None:
            answers = known[source.key] = {}
        fired: Mask = 0
        for raw in tx.data.values(source.target):
            slots = answers.get(raw, UNKNOWN)
            if slots is UNKNOWN:
                slots = value_slots(tx, raw, source.families)
                if len(raw) <= SHARED_VALUE_MAX:
                    answers[raw] = slots
                    tx.waf.caches.note_slotted(len(raw))
            fired |= slots
        candidates |= fired & source.readers
    out = bytearray(screen.template)
    indexes = screen.indexes
    while candidates:
        low = candidates & -candidates
        out[indexes[low.bit_length() - 1]] = 0
        candidates ^= low
    return out


def value_slots(tx: Transaction, raw: str, families: tuple[Family, ...]) -> Mask:
    """The slots of the rules one raw value fires, transformed each family's way."""
    out: Mask = 0
    for family in families:
        patterns = tx._value_screen(raw, family.reader)
        if patterns is None:  # the set gave up on it: each of its rules must look
            out |= family.slots
        elif patterns:
            for bit, slot in family.bits:
                if patterns & bit:
                    out |= slot
    return out
