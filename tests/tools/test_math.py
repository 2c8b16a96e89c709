"""math.calculate, math.is_prime, math.convert_base: exactness, limits, hostile input."""

from __future__ import annotations

import time

import pytest

from milliwatt.tools.arithmetic import calculate, check_prime, convert_base


def result(expression: str) -> str:
    outcome = calculate.call({"expression": expression})
    assert outcome.ok, outcome.error
    return outcome.value["result"]


def refusal(expression: str) -> str:
    outcome = calculate.call({"expression": expression})
    assert not outcome.ok, f"{expression!r} should be refused, got {outcome.value}"
    return outcome.error or ""


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0.1 + 0.2", "0.3"),
        ("0.1 * 3", "0.3"),
        ("1 - 0.9", "0.1"),
        ("234 * 567", "132678"),
        ("12345678901234567890 * 98765432109876543210", "1219326311370217952237463801111263526900"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("2 ^ 10", "1024"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("-2 ** 2", "-4"),
        ("(3 + 4) * 2", "14"),
        ("1/4", "0.25"),
        ("1/3", "0.333333333333333"),
        ("15/100*240", "36"),
        ("2 ** -2", "0.25"),
        ("sqrt(144)", "12"),
        ("sqrt(2.25)", "1.5"),
        ("sqrt(10**400)", "1.000000000000000e+200"),
        ("cbrt(-27)", "-3"),
        ("root(81, 4)", "3"),
        ("(-8) ** (1/3)", "-2"),
        ("factorial(20)", "2432902008176640000"),
        ("factorial(0)", "1"),
        ("gcd(84, 36)", "12"),
        ("lcm(4, 6, 8)", "24"),
        ("abs(-3.5)", "3.5"),
        ("round(2.675, 2)", "2.68"),  # exact decimal: no binary-float surprise
        ("round(1234, -2)", "1200"),
        ("floor(-2.5)", "-3"),
        ("ceil(2.1)", "3"),
        ("mean(1, 2, 3, 4)", "2.5"),
        ("median(3, 1, 2)", "2"),
        ("median(1, 9, 4, 7)", "5.5"),
        ("pstdev(2, 4, 4, 4, 5, 5, 7, 9)", "2"),
        ("variance(1, 2, 3, 4)", "1.66666666666667"),
        ("max(3, 9, 2)", "9"),
        ("sum(0.1, 0.2, 0.3)", "0.6"),
        ("product(2, 3, 4)", "24"),
        ("is_prime(97)", "1"),
        ("0xff + 1", "256"),
        ("1e3 + 1", "1001"),
        ("1 × 2 ÷ 4 − 1", "-0.5"),
    ],
)
def test_exact_results(expression: str, expected: str) -> None:
    assert result(expression) == expected


def test_irrational_results_are_marked_and_precise() -> None:
    value = calculate.call({"expression": "sqrt(2)"}).value
    assert value["exact"] is False
    assert value["result"].startswith("1.41421356237")
    assert result("stdev(1, 2, 3, 4)").startswith("1.2909944487")
    assert result("log(8, 2)") == "3"
    assert result("log10(1000)") == "3"
    assert result("ln(e)") == "1"
    assert result("exp(0)") == "1"


def test_non_terminating_fraction_is_reported_exactly() -> None:
    value = calculate.call({"expression": "1/3 + 1/6 + 1/7"}).value
    assert value["fraction"] == "9/14"
    assert "fraction" not in calculate.call({"expression": "0.1 + 0.2"}).value


def test_huge_results_are_written_in_e_notation() -> None:
    assert result("factorial(1000)") == "4.023872600770938e+2567"
    assert result("2 ** 100000").startswith("9.99002093014384")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("9**9**9**9", "too large"),
        ("2**10**10", "too large"),
        ("10**10**6", "too large"),
        ("factorial(10**6)", "factorial is limited"),
        ("factorial(-1)", "non-negative"),
        ("factorial(2.5)", "whole numbers"),
        ("1/0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "zero"),
        ("sqrt(-1)", "not real"),
        ("(-8) ** 0.5", "even root"),
        ("ln(0)", "positive"),
        ("log(8, 1)", "positive base"),
        ("exp(100000)", "exp() is limited"),
        ("__import__('os')", "unknown function"),
        ("__import__('os').system('true')", "unknown function"),
        ("open('/etc/passwd')", "unknown function"),
        ("(1).__class__", "not allowed"),
        ("[1, 2][0]", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("x + 1", "unknown name"),
        ("'a' * 3", "only numbers"),
        ("True + 1", "only numbers"),
        ("1 if 1 else 2", "not allowed"),
        ("1 < 2", "not allowed"),
        ("f(x=1)", "unknown function"),
        ("sqrt(x=4)", "keyword"),
        ("sqrt(1, 2)", "takes 1"),
        ("gcd(4)", "at least two"),
        ("mean()", "at least one"),
        ("", "empty"),
        ("2 +", "not a valid expression"),
        ("1" * 3000, "too long"),
        ("abs(" * 100 + "1" + ")" * 100, "nested too deeply"),
        ("(" * 300 + "1" + ")" * 300, "not a valid expression"),
        ("-" * 500 + "1", "nested too deeply"),
        ("1e999", "too large"),
    ],
)
def test_hostile_and_bad_input_is_refused_with_a_reason(expression: str, reason: str) -> None:
    assert reason in refusal(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "9**9**9**9",
        "factorial(5000) * factorial(5000) * factorial(5000) * factorial(5000)",
        "*".join(["factorial(4000)"] * 30),
        "+".join(["2**199000 // 3**125000"] * 40),
        "((2**99999)**2)**2",
        "root(2**199000, 997) ** 997",
    ],
)
def test_expensive_expressions_stop_quickly(expression: str) -> None:
    started = time.process_time()
    calculate.call({"expression": expression})
    assert time.process_time() - started < 3.0


def test_prime_checks() -> None:
    assert check_prime.call({"number": 97}).value["prime"] is True
    value = check_prime.call({"number": 91}).value
    assert value["prime"] is False and value["smallest_factor"] == 7
    for n in (0, 1, -7):
        assert check_prime.call({"number": n}).value["prime"] is False
    assert check_prime.call({"number": 2}).value["prime"] is True
    # Carmichael numbers fool Fermat tests, not Miller-Rabin
    for carmichael in (561, 1105, 1729, 2465, 2821, 6601, 8911):
        assert check_prime.call({"number": carmichael}).value["prime"] is False
    mersenne = 2**127 - 1
    assert check_prime.call({"number": mersenne}).value["prime"] is True
    assert check_prime.call({"number": mersenne * (2**61 - 1)}).value["prime"] is False
    assert "4096 bits" in (check_prime.call({"number": 2**5000}).error or "")


def test_base_conversion() -> None:
    def convert(number: str, to_base: int, from_base: int = 10) -> str:
        outcome = convert_base.call({"number": number, "to_base": to_base, "from_base": from_base})
        assert outcome.ok, outcome.error
        return outcome.value["result"]

    assert convert("255", 2) == "11111111"
    assert convert("255", 16) == "ff"
    assert convert("0xff", 10, 16) == "255"
    assert convert("-10", 2) == "-1010"
    assert convert("zz", 10, 36) == "1295"
    assert convert("0", 7) == "0"
    assert convert(str(2**200), 16) == "1" + "0" * 50


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"number": "12", "to_base": 1}, "to_base: Input should be greater than or equal to 2"),
        ({"number": "12", "to_base": 37}, "to_base: Input should be less than or equal to 36"),
        ({"number": "102", "to_base": 10, "from_base": 2}, "bad digit(s) 2"),
        ({"number": "", "to_base": 2}, "empty"),
        ({"number": "9" * 5000, "to_base": 2}, "4000 digits"),
    ],
)
def test_base_conversion_refusals(arguments: dict[str, object], reason: str) -> None:
    assert reason in (convert_base.call(arguments).error or "")
