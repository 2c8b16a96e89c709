"""Writing exact numbers for people: terminating decimals in full, others rounded."""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, localcontext
from fractions import Fraction


def _to_decimal(q: Fraction) -> Decimal:
    return Decimal(q.numerator) / Decimal(q.denominator)


def format_number(q: Fraction, exact: bool = True, max_digits: int = 60) -> str:
    """A readable decimal: exact where it terminates, else rounded; huge values in e-notation."""
    if q.denominator == 1:
        n = q.numerator
        if n.bit_length() * 0.30103 < max_digits + 1 and len(str(abs(n))) <= max_digits:
            return str(n)
        with localcontext(Context(prec=20)) as ctx:
            return f"{ctx.create_decimal(n):.15E}".replace("E+", "e+")
    if exact and terminates(q.denominator):
        with localcontext(Context(prec=max_digits)) as ctx:
            text = format(_to_decimal(q), "f")
            if ctx.flags[Inexact]:
                text = f"{_to_decimal(q):.15E}"
        return text
    with localcontext(Context(prec=15)):
        approx = _to_decimal(q).normalize()
    if abs(approx) >= Decimal("1e15") or (approx != 0 and abs(approx) < Decimal("1e-6")):
        return f"{approx:E}"
    return format(approx, "f")


def terminates(denominator: int) -> bool:
    for p in (2, 5):
        while denominator % p == 0:
            denominator //= p
    return denominator == 1
