"""Exact evaluation of arithmetic expressions: a whitelist walk over Python's AST.

Nothing is ever passed to eval/compile/exec. Numbers are Fractions, so 0.1 + 0.2 is 3/10.
Irrational results (roots, logarithms) are computed with Decimal at 40 significant digits
and flagged as approximate. Every operation is bounded before it runs: expression length,
nesting depth, the size in bits of any intermediate value, factorial arguments, and a
wall-clock deadline, so hostile input fails fast with a clear message.
"""

from __future__ import annotations

import ast
import math
import time
from dataclasses import dataclass
from decimal import Context, localcontext
from fractions import Fraction

from milliwatt.tools.exact_functions import (
    CONSTANTS,
    FUNCTIONS,
    PRECISION,
    CalculationError,
    to_decimal,
)

MAX_EXPRESSION_CHARS = 2_000
MAX_DEPTH = 60
MAX_BITS = 200_000  # about 60,000 decimal digits: big enough for 1000!, small enough to be fast
MAX_SECONDS = 0.5


@dataclass(frozen=True)
class Number:
    value: Fraction
    exact: bool = True


def _bits(q: Fraction) -> int:
    return max(q.numerator.bit_length(), q.denominator.bit_length())


class _Evaluator:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.exact = True

    def check(self, q: Fraction) -> Fraction:
        if time.monotonic() > self.deadline:
            raise CalculationError("the calculation took too long and was stopped")
        if _bits(q) > MAX_BITS:
            raise CalculationError(
                f"an intermediate result is too large (over {MAX_BITS:,} bits); try smaller numbers"
            )
        return q

    def eval(self, node: ast.AST, depth: int = 0) -> Fraction:
        if depth > MAX_DEPTH:
            raise CalculationError(f"the expression is nested too deeply (limit {MAX_DEPTH})")
        if isinstance(node, ast.Expression):
            return self.eval(node.body, depth + 1)
        if isinstance(node, ast.Constant):
            return self.constant(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.eval(node.operand, depth + 1)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left = self.eval(node.left, depth + 1)
            right = self.eval(node.right, depth + 1)
            return self.check(self.binary(node.op, left, right))
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                self.exact = False
                return CONSTANTS[node.id]
            raise CalculationError(f"unknown name {node.id!r}; known constants: pi, e, tau")
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise CalculationError(
            f"{type(node).__name__} is not allowed; use numbers, + - * / // % **, "
            "parentheses and the listed functions"
        )

    def constant(self, value: object) -> Fraction:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalculationError(f"only numbers are allowed, not {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise CalculationError("the number is too large")
        return self.check(Fraction(value) if isinstance(value, int) else Fraction(repr(value)))

    def binary(self, op: ast.operator, a: Fraction, b: Fraction) -> Fraction:
        if isinstance(op, ast.Add):
            return a + b
        if isinstance(op, ast.Sub):
            return a - b
        if isinstance(op, ast.Mult):
            if _bits(a) + _bits(b) > 2 * MAX_BITS:
                raise CalculationError("the product is too large")
            return a * b
        if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod):
            if b == 0:
                raise CalculationError("division by zero")
            if isinstance(op, ast.Div):
                return a / b
            return Fraction(a // b) if isinstance(op, ast.FloorDiv) else a % b
        if isinstance(op, ast.Pow):
            return self.power(a, b)
        raise CalculationError(f"the operator {type(op).__name__} is not allowed")

    def power(self, base: Fraction, exponent: Fraction) -> Fraction:
        if exponent.denominator == 1:
            n = exponent.numerator
            if base == 0 and n < 0:
                raise CalculationError("zero cannot be raised to a negative power")
            if base in (0, 1) or n == 0:
                return Fraction(1) if n == 0 else base
            if base == -1:
                return Fraction(-1 if n % 2 else 1)
            # estimate the size before computing: 9**9**9**9 must not start
            if abs(n) * _bits(base) > MAX_BITS:
                raise CalculationError(
                    f"the power is too large (about {int(abs(n) * _bits(base) * 0.30103):,} "
                    "digits); the limit is 60,000 digits"
                )
            return base**n
        if base < 0 and exponent.denominator % 2 == 0:
            raise CalculationError("a negative number has no real even root")
        root = self.nth_root(base, exponent.denominator)
        return self.power(root, Fraction(exponent.numerator))

    def nth_root(self, x: Fraction, n: int) -> Fraction:
        if n <= 0 or n > 1_000:
            raise CalculationError("the root degree must be between 1 and 1000")
        if x < 0:
            if n % 2 == 0:
                raise CalculationError("an even root of a negative number is not real")
            return -self.nth_root(-x, n)
        exact = [_integer_root(part, n) for part in (x.numerator, x.denominator)]
        if exact[0] is not None and exact[1] is not None:
            return Fraction(exact[0], exact[1])
        self.exact = False
        with localcontext(Context(prec=PRECISION + 5)):
            d = to_decimal(x)
            result = d.sqrt() if n == 2 else (d.ln() / n).exp()
        return Fraction(result)

    def call(self, node: ast.Call, depth: int) -> Fraction:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise CalculationError(f"unknown function; available: {known}")
        if node.keywords:
            raise CalculationError("keyword arguments are not allowed")
        args = [self.eval(a, depth + 1) for a in node.args]
        return self.check(FUNCTIONS[node.func.id](self, args))


def _integer_root(n: int, k: int) -> int | None:
    """The exact integer k-th root of n >= 0, or None."""
    if n < 2:
        return n
    guess = round(n ** (1 / k)) if n.bit_length() < 50 else _newton_root(n, k)
    for r in (guess - 1, guess, guess + 1):
        if r >= 0 and r**k == n:
            return r
    return None


def _newton_root(n: int, k: int) -> int:
    x = 1 << -(-n.bit_length() // k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression exactly; raises CalculationError with the reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"the expression is too long (limit {MAX_EXPRESSION_CHARS} chars)")
    text = expression.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")
    if not text.strip():
        raise CalculationError("the expression is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculationError(f"not a valid expression: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError):
        raise CalculationError("not a valid expression") from None
    evaluator = _Evaluator(time.monotonic() + MAX_SECONDS)
    value = evaluator.eval(tree)
    return Number(value, evaluator.exact)
