"""Operators (`@rx`, `@pm`, `@eq`, ...), registered by name and compiled once at load; the
pattern, phrase, string and number operators here, the value checks in `checks.py`.

`Operator.evaluate` answers whether the operator matches, before any `!` negation; the
transaction it is given supplies macro expansion, capture storage and the pattern-set answers.
"""

from __future__ import annotations

import operator as operator_module
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from milliwatt.shield.waf.checks import (
    DetectSQLi,
    DetectXSS,
    IpMatch,
    IpMatchFromFile,
    ValidateByteRange,
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
)
from milliwatt.shield.waf.macros import compile_macro
from milliwatt.shield.waf.operator_base import Operator, OperatorContext, read_data_files
from milliwatt.shield.waf.regexes import PhraseSet, Regex


class Rx(Operator):
    name = "rx"

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self.regex = Regex(argument)

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        if not tx.may_match(self.regex, value) or not self.regex.matches(value):
            return False
        if not capture:
            return True
        groups = self.regex.search(value)
        if groups is None:
            return False
        tx.set_captures(groups)
        return True


class _PhraseOperator(Operator):
    phrases: PhraseSet

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        found = self.phrases.first_match(value)
        if found is None:
            return False
        if capture:
            tx.set_captures((found,))
        return True


def screen_id(op: Operator | None) -> int | None:
    """The id under which the WAF's pattern set answers for this operator: an `@rx` pattern
    in its RE2 set or an `@pm` list in its phrase screen; None when it answers for neither."""
    if isinstance(op, Rx):
        return op.regex.set_id
    if isinstance(op, _PhraseOperator):
        return op.phrases.set_id
    return None


def phrase_lists(ops: Iterable[Operator | None]) -> list[PhraseSet]:
    return [op.phrases for op in ops if isinstance(op, _PhraseOperator)]


class Pm(_PhraseOperator):
    name = "pm"

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self.phrases = PhraseSet(argument.split())


class PmFromFile(_PhraseOperator):
    name = "pmFromFile"
    aliases: ClassVar[tuple[str, ...]] = ("pmf",)

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self.phrases = PhraseSet(read_data_files(argument, rule_dir))


class _StringOperator(Operator):
    """Operators comparing the value to one (macro-expanded) string."""

    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        self.macro = compile_macro(argument)

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        arg = tx.expand(self.macro)
        if not self.compare(value, arg):
            return False
        if capture:
            tx.set_captures((value,))
        return True

    def compare(self, value: str, arg: str) -> bool:
        raise NotImplementedError


class BeginsWith(_StringOperator):
    name = "beginsWith"

    def compare(self, value: str, arg: str) -> bool:
        return value.startswith(arg)


class EndsWith(_StringOperator):
    name = "endsWith"

    def compare(self, value: str, arg: str) -> bool:
        return value.endswith(arg)


class Contains(_StringOperator):
    name = "contains"
    aliases: ClassVar[tuple[str, ...]] = ("strmatch",)

    def compare(self, value: str, arg: str) -> bool:
        return arg in value


class ContainsWord(_StringOperator):
    name = "containsWord"

    def compare(self, value: str, arg: str) -> bool:
        return re.search(r"(?<!\w)" + re.escape(arg) + r"(?!\w)", value) is not None


class StrEq(_StringOperator):
    name = "streq"

    def compare(self, value: str, arg: str) -> bool:
        return value == arg


class Within(_StringOperator):
    name = "within"

    def compare(self, value: str, arg: str) -> bool:
        return bool(value) and value in arg


_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


_SMALL_INTS = {str(i): i for i in range(-100, 1000)}  # scores and levels: one lookup


def to_int(text: str) -> int:
    """C atoi: the leading integer, 0 when there is none."""
    known = _SMALL_INTS.get(text)
    if known is not None:
        return known
    if len(text) < 19 and text.isascii() and text.isdigit():  # the usual case, no regex
        return int(text)
    m = _LEADING_INT.match(text)
    return int(m.group(1)) if m else 0


class NumericOperator(_StringOperator):
    def __init__(self, argument: str, rule_dir: Path) -> None:
        super().__init__(argument, rule_dir)
        # most arguments are numbers written in the rule: converted once
        self.constant = to_int(argument) if self.macro.is_constant else None

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        arg = self.constant if self.constant is not None else to_int(tx.expand(self.macro))
        if not self.test(to_int(value), arg):
            return False
        if capture:
            tx.set_captures((value,))
        return True

    test: Callable[[int, int], bool]  # a C function from `operator`: called per value


class Eq(NumericOperator):
    name = "eq"
    test = staticmethod(operator_module.eq)


class Ge(NumericOperator):
    name = "ge"
    test = staticmethod(operator_module.ge)


class Gt(NumericOperator):
    name = "gt"
    test = staticmethod(operator_module.gt)


class Le(NumericOperator):
    name = "le"
    test = staticmethod(operator_module.le)


class Lt(NumericOperator):
    name = "lt"
    test = staticmethod(operator_module.lt)


class UnconditionalMatch(Operator):
    name = "unconditionalMatch"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        return True


class NoMatch(Operator):
    name = "noMatch"

    def evaluate(self, tx: OperatorContext, value: str, capture: bool) -> bool:
        return False


# a plain table rather than a registering decorator: decorated classes cannot be compiled
OPERATORS: dict[str, type[Operator]] = {
    alias.lower(): cls
    for cls in (
        Rx,
        Pm,
        PmFromFile,
        BeginsWith,
        EndsWith,
        Contains,
        ContainsWord,
        StrEq,
        Within,
        Eq,
        Ge,
        Gt,
        Le,
        Lt,
        DetectSQLi,
        DetectXSS,
        UnconditionalMatch,
        NoMatch,
        IpMatch,
        IpMatchFromFile,
        ValidateByteRange,
        ValidateUrlEncoding,
        ValidateUtf8Encoding,
    )
    for alias in (cls.name, *cls.aliases)
}


def compile_operator(text: str, rule_dir: Path) -> tuple[Operator, bool]:
    """`!@rx foo` -> (Rx("foo"), negated=True). A bare pattern means @rx."""
    negated = text.startswith("!")
    body = text[1:] if negated else text
    if not body.startswith("@"):
        return Rx(body, rule_dir), negated
    name, _, argument = body[1:].partition(" ")
    cls = OPERATORS.get(name.lower())
    if cls is None:
        raise ValueError(f"unsupported operator @{name}")
    return cls(argument.strip() if cls is not Rx else argument.lstrip(" "), rule_dir), negated
