"""The functions and constants an expression may use, each checking its own arguments."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Context, Decimal, localcontext
from fractions import Fraction
from typing import Protocol

from milliwatt.tools.number_format import format_number
from milliwatt.tools.number_theory import is_prime

MAX_FACTORIAL = 5_000
PRECISION = 40  # significant digits for irrational results


class CalculationError(ValueError):
    """The expression was refused or cannot be computed; the message says why."""


class Evaluator(Protocol):
    exact: bool  # cleared when a result had to be rounded

    def nth_root(self, x: Fraction, n: int) -> Fraction: ...


def to_decimal(q: Fraction) -> Decimal:
    return Decimal(q.numerator) / Decimal(q.denominator)


def _integer(q: Fraction, what: str) -> int:
    if q.denominator != 1:
        raise CalculationError(f"{what} needs whole numbers, got {format_number(q)}")
    return q.numerator


def _arity(name: str, args: Sequence[Fraction], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise CalculationError(f"{name}() takes {want} arguments, got {len(args)}")


def _log(ev: Evaluator, x: Fraction, base: Fraction | None) -> Fraction:
    if x <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise CalculationError("logarithms need a positive number and a positive base other than 1")
    ev.exact = False
    with localcontext(Context(prec=PRECISION + 5)):
        value = to_decimal(x).ln()
        if base is not None:
            value /= to_decimal(base).ln()
    return Fraction(value)


def _factorial(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
    _arity("factorial", args, 1)
    n = _integer(args[0], "factorial")
    if n < 0:
        raise CalculationError("factorial is defined for non-negative whole numbers only")
    if n > MAX_FACTORIAL:
        raise CalculationError(f"factorial is limited to n <= {MAX_FACTORIAL:,}")
    return Fraction(math.factorial(n))


def _round(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
    _arity("round", args, 1, 2)
    places = _integer(args[1], "round's digits") if len(args) == 2 else 0
    if abs(places) > 1_000:
        raise CalculationError("round() accepts at most 1000 digits")
    return Fraction(round(args[0], places))


def _variance(args: Sequence[Fraction], sample: bool) -> Fraction:
    if len(args) < (2 if sample else 1):
        raise CalculationError("standard deviation needs at least two values")
    mean = sum(args, Fraction(0)) / len(args)
    return sum(((x - mean) ** 2 for x in args), Fraction(0)) / (len(args) - sample)


def _median(args: Sequence[Fraction]) -> Fraction:
    if not args:
        raise CalculationError("median() needs at least one value")
    ordered = sorted(args)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _mean(args: Sequence[Fraction]) -> Fraction:
    if not args:
        raise CalculationError("mean() needs at least one value")
    return sum(args, Fraction(0)) / len(args)


def _gcd_lcm(
    fn: Callable[..., int], name: str
) -> Callable[[Evaluator, Sequence[Fraction]], Fraction]:
    def apply(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
        if len(args) < 2:
            raise CalculationError(f"{name}() needs at least two whole numbers")
        return Fraction(fn(*(_integer(a, name) for a in args)))

    return apply


def _one(fn: Callable[[Evaluator, Fraction], Fraction], name: str) -> Callable[..., Fraction]:
    def apply(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
        _arity(name, args, 1)
        return fn(ev, args[0])

    return apply


def _root(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
    _arity("root", args, 2)
    return ev.nth_root(args[0], _integer(args[1], "root's degree"))


def _exp(ev: Evaluator, x: Fraction) -> Fraction:
    if abs(x) > 10_000:
        raise CalculationError("exp() is limited to arguments between -10000 and 10000")
    ev.exact = ev.exact and x == 0
    with localcontext(Context(prec=PRECISION + 5)):
        return Fraction(to_decimal(x).exp())


def _log_any(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
    _arity("log", args, 1, 2)
    return _log(ev, args[0], args[1] if len(args) == 2 else None)


def _is_prime(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
    _arity("is_prime", args, 1)
    return Fraction(int(is_prime(_integer(args[0], "is_prime"))))


def _aggregate(fn: Callable[[Sequence[Fraction]], Fraction], name: str) -> Callable[..., Fraction]:
    def apply(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
        if not args:
            raise CalculationError(f"{name}() needs at least one value")
        return fn(args)

    return apply


def _stdev(sample: bool) -> Callable[[Evaluator, Sequence[Fraction]], Fraction]:
    def apply(ev: Evaluator, args: Sequence[Fraction]) -> Fraction:
        return ev.nth_root(_variance(args, sample), 2)

    return apply


FUNCTIONS: dict[str, Callable[[Evaluator, Sequence[Fraction]], Fraction]] = {
    "sqrt": _one(lambda ev, x: ev.nth_root(x, 2), "sqrt"),
    "cbrt": _one(lambda ev, x: ev.nth_root(x, 3), "cbrt"),
    "root": _root,
    "abs": _one(lambda ev, x: abs(x), "abs"),
    "floor": _one(lambda ev, x: Fraction(math.floor(x)), "floor"),
    "ceil": _one(lambda ev, x: Fraction(math.ceil(x)), "ceil"),
    "round": _round,
    "factorial": _factorial,
    "gcd": _gcd_lcm(math.gcd, "gcd"),
    "lcm": _gcd_lcm(math.lcm, "lcm"),
    "is_prime": _is_prime,
    "exp": _one(_exp, "exp"),
    "ln": _one(lambda ev, x: _log(ev, x, None), "ln"),
    "log": _log_any,
    "log10": _one(lambda ev, x: _log(ev, x, Fraction(10)), "log10"),
    "log2": _one(lambda ev, x: _log(ev, x, Fraction(2)), "log2"),
    "min": _aggregate(min, "min"),
    "max": _aggregate(max, "max"),
    "sum": _aggregate(lambda a: sum(a, Fraction(0)), "sum"),
    "product": _aggregate(lambda a: math.prod(a, start=Fraction(1)), "product"),
    "mean": _aggregate(_mean, "mean"),
    "average": _aggregate(_mean, "average"),
    "median": _aggregate(_median, "median"),
    "variance": lambda ev, a: _variance(a, True),
    "pvariance": lambda ev, a: _variance(a, False),
    "stdev": _stdev(True),
    "pstdev": _stdev(False),
}

CONSTANTS = {
    "pi": Fraction(Decimal("3.141592653589793238462643383279502884197")),
    "e": Fraction(Decimal("2.718281828459045235360287471352662497757")),
    "tau": Fraction(Decimal("6.283185307179586476925286766559005768394")),
}
