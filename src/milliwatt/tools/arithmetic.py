"""Math tools: exact arithmetic, primality and base conversion, safe on hostile input."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from milliwatt.tools.exact import evaluate
from milliwatt.tools.exact_functions import CalculationError
from milliwatt.tools.number_format import format_number, terminates
from milliwatt.tools.number_theory import is_prime, parse_integer, write_in_base
from milliwatt.tools.registry import Effect, Tool, ToolError, tool

# the bounds are also checked in number_theory: annotations may reach the schema stripped
Base = Annotated[int, Field(ge=2, le=36)]


@tool(
    effects={Effect.PURE},
    name="math.calculate",
    examples=[
        "what is 234 * 567",
        "0.1 + 0.2",
        "square root of 144",
        "15% of 240",
        "20 factorial",
        "gcd of 84 and 36",
        "average of 3, 5 and 10",
        "2 to the power of 64",
    ],
)
def calculate(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression exactly (integers, decimals, fractions of any size).

    Operators: + - * / // % ** (or ^) and parentheses. Functions: sqrt, cbrt, root(x, n),
    abs, floor, ceil, round(x, digits), factorial, gcd, lcm, is_prime, exp, ln, log(x, base),
    log10, log2, min, max, sum, product, mean/average, median, variance, stdev (sample),
    pvariance, pstdev (population). Constants: pi, e, tau. Write 15% of 240 as 15/100*240.
    """
    try:
        number = evaluate(expression)
    except CalculationError as exc:
        raise ToolError(str(exc)) from None
    result: dict[str, Any] = {
        "expression": expression,
        "result": format_number(number.value, number.exact),
        "exact": number.exact,
    }
    q = number.value
    if number.exact and not terminates(q.denominator) and len(str(q.denominator)) <= 30:
        result["fraction"] = f"{q.numerator}/{q.denominator}"
    return result


@tool(
    effects={Effect.PURE},
    name="math.is_prime",
    examples=["is 97 a prime number", "is 1001 prime"],
)
def check_prime(number: int) -> dict[str, Any]:
    """Tell whether a whole number is prime (exact below 3.3e24, up to 4096 bits in all).

    Also returns its smallest factor when it is composite and that factor is below 100,000.
    """
    try:
        prime = is_prime(number)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    result: dict[str, Any] = {"number": number, "prime": prime}
    if not prime and number > 3:
        factor = next((f for f in range(2, min(100_000, number)) if number % f == 0), None)
        if factor is not None:
            result["smallest_factor"] = factor
    return result


@tool(
    effects={Effect.PURE},
    name="math.convert_base",
    examples=["255 in binary", "convert ff from hexadecimal to decimal", "what is 100 in base 7"],
)
def convert_base(number: str, to_base: Base = 10, from_base: Base = 10) -> dict[str, Any]:
    """Rewrite a whole number from one base to another (bases 2 to 36, e.g. 2, 8, 10, 16).

    `number` is a string of digits in `from_base` (0x/0o/0b prefixes are accepted).
    """
    try:
        value = parse_integer(number, from_base)
        converted = write_in_base(value, to_base)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return {"number": number, "from_base": from_base, "to_base": to_base, "result": converted}


TOOLS: list[Tool] = [calculate, check_prime, convert_base]
