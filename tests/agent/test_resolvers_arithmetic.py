"""Arithmetic and whole-number resolvers: phrasing to expression, and what they must refuse."""

from __future__ import annotations

import pytest

from milliwatt.agent.resolvers.arithmetic import ArithmeticResolver, to_expression
from milliwatt.agent.resolvers.common import Request
from milliwatt.agent.resolvers.numbers import NumbersResolver
from milliwatt.tools.registry import ToolContext


def expression(text: str) -> str | None:
    return to_expression(Request.of(text).every)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("what is two hundred thirty four times 567", "234 * 567"),
        ("15% of 240", "(15/100) * 240"),
        ("What is 15 percent of 240?", "(15/100) * 240"),
        ("increase 80 by 15%", "80 * (1 + 15/100)"),
        ("reduce 250 by 20%", "250 * (1 - 20/100)"),
        ("20% off 50", "50 * (1 - 20/100)"),
        ("what is 100 minus 20%", "100 * (1 - 20/100)"),
        ("20 is what percent of 80", "20 / 80 * 100"),
        ("what percentage of 80 is 20", "20 / 80 * 100"),
        ("percentage change from 50 to 75", "(75 - 50) / 50 * 100"),
        ("square root of 144", "sqrt(144)"),
        ("what is the cube root of 27", "cbrt(27)"),
        ("what is the 4th root of 81", "root(81, 4)"),
        ("what is 5 squared plus 3", "(5)**2 + 3"),
        ("what is 2 to the power of 10", "(2)**(10)"),
        ("2 to the 10th power", "(2)**(10)"),
        ("what is 10 factorial", "factorial(10)"),
        ("what is 5! / 3!", "factorial(5) / factorial(3)"),
        ("gcd of 84 and 36", "gcd(84, 36)"),
        ("what is the lcm of 4, 6 and 8", "lcm(4, 6, 8)"),
        ("what is the average of 3, 5 and 10", "mean(3, 5, 10)"),
        ("the median of 1, 9, 4, 7", "median(1, 9, 4, 7)"),
        ("what is the sum of 1, 2, 3 and 4", "sum(1, 2, 3, 4)"),
        ("round 3.14159 to 2 decimal places", "round(3.14159, 2)"),
        ("round 1234 to the nearest hundred", "round(1234, -2)"),
        ("subtract 7 from 20", "20 - 7"),
        ("multiply 12 by 7", "12 * 7"),
        ("what do you get if you multiply 12 by 7", "12 * 7"),
        ("divide 100 by 8", "100 / 8"),
        ("what is half of 250", "(1/2) * 250"),
        ("what is a third of ninety", "(1/3) * 90"),
        ("three fourths of 12", "(3/4) * 12"),
        ("what is $15 times 3", "15 * 3"),
        ("what is 1,234 + 5,678", "1234 + 5678"),
        ("what's the remainder when 17 is divided by 5", "(17 % 5)"),
        ("17 mod 5", "17 % 5"),
        ("what is the difference between 100 and 37", "(100 - 37)"),
        ("negative five plus three", "-5 + 3"),
        ("what is 1.5 million times 2", "1.5*1000000 * 2"),
        ("hey can you tell me what 12 x 7 is", "12 * 7"),
        ("what does 6 times 7 equal", "6 * 7"),
        ("what is 48/2 = ?", "48/2"),
        ("I need 12-9", "12-9"),
        ("what is 15 divided by 4, rounded to 2 decimal places", "round(15 / 4, 2)"),
        ("what is 22 / 7 rounded to the nearest whole number", "round(22 / 7, 0)"),
        ("what is 5 more than 12", "12 + 5"),
        ("what is 7 less than 20", "20 - 7"),
        ("what is the value of pi times 2", "pi * 2"),
        ("calculate (4 + 5) x 3", "(4 + 5) * 3"),
        ("what is the mean of the numbers 4, 8, 6", "mean(4, 8, 6)"),
        ("find the median of these numbers: 3, 9, 4", "median(3, 9, 4)"),
        ("how much is 1/8 as a decimal", "1/8"),
        ("sqrt of 49", "sqrt(49)"),
        ("what is the total of 12, 18 and 30", "sum(12, 18, 30)"),
        ("what is the square of 12", "(12)**2"),
        ("what is 5 to the power 3", "(5)**(3)"),
        ("what is minus 5 times 3", "-5 * 3"),
        ("what is 10 percent off 200", "200 * (1 - 10/100)"),
        ("what is one times one", "1 * 1"),
        ("what is a hundred and one minus one", "101 - 1"),
        ("what is one half plus one quarter", "(1/2) + (1/4)"),
        ("what is three point one four times two", "3.14 * 2"),
        ("evaluate: 5*3", "5*3"),
        ("compute the following: 2+2", "2+2"),
        ("I'd like to know what 81 divided by 3 is", "81 / 3"),
        ("A 15% tip on $80 is how much?", "(15/100) * 80"),
        ("average these numbers: 10, 15, 20", "mean(10, 15, 20)"),
        ("add up 3, 4 and 5", "sum(3, 4, 5)"),
    ],
)
def test_phrasing_becomes_an_expression(text: str, expected: str) -> None:
    assert expression(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tell me a story about 3 apples",
        "what is the meaning of 42",
        "what is 42",
        "42",
        "what is pi",
        "what is one",
        "what is 3,5 + 1",
        "average",
        "add up the bill",
        "what is a 15% tip on a good meal",
        "I want one of those",
        "what is x + 5",
        "what is 6/2(1+2)",  # implicit products are read differently by different people
        "what is 3.5.2 + 1",
        "what's 2 + 2 in roman numerals",
        "what is 50% more than 80",
        "I have 3 apples and eat 2, how many are left?",
        "what is 3 of 4",
        "is 5 > 3",
        "what is 2 and 2",
        "__import__('os').system('ls')",
        "what is open('/etc/passwd')",
        "what is e",
        "what is 3x + 5",
        "is 5 more than 3",
        "what is the sum total of my fears",
    ],
)
def test_non_arithmetic_is_refused(text: str) -> None:
    assert expression(text) is None


def test_arithmetic_match_says_how_it_computed() -> None:
    found = ArithmeticResolver().match(Request.of("what's 2 to the power of 10"), ToolContext())
    assert found is not None and found.errors_are_answers
    assert found.sentence({"result": "1024", "exact": True}) == "(2)^(10) = 1024"
    assert found.sentence({"result": "1.41", "exact": False}).endswith("(rounded)")


@pytest.mark.parametrize(
    ("text", "tool", "arguments"),
    [
        ("is 97 prime", "math.is_prime", {"number": 97}),
        ("Is 97 a prime number?", "math.is_prime", {"number": 97}),
        ("check whether 1001 is prime", "math.is_prime", {"number": 1001}),
        ("is 91 prime or composite", "math.is_prime", {"number": 91}),
        ("255 in binary", "math.convert_base", {"number": "255", "from_base": 10, "to_base": 2}),
        (
            "convert 255 to hex",
            "math.convert_base",
            {"number": "255", "from_base": 10, "to_base": 16},
        ),
        (
            "what is 100 in base 7",
            "math.convert_base",
            {"number": "100", "from_base": 10, "to_base": 7},
        ),
        (
            "convert ff from hexadecimal to decimal",
            "math.convert_base",
            {"number": "ff", "from_base": 16, "to_base": 10},
        ),
        (
            "what is 0b101010 in decimal",
            "math.convert_base",
            {"number": "0b101010", "from_base": 2, "to_base": 10},
        ),
        (
            "convert binary 1010 to decimal",
            "math.convert_base",
            {"number": "1010", "from_base": 2, "to_base": 10},
        ),
    ],
)
def test_whole_number_questions(text: str, tool: str, arguments: dict[str, object]) -> None:
    found = NumbersResolver().match(Request.of(text), ToolContext())
    assert found is not None
    assert (found.tool, found.arguments) == (tool, arguments)


@pytest.mark.parametrize(
    "text",
    [
        "is 13 an unlucky number",
        "name 3 prime numbers",
        "is 2.5 prime",
        "what is 10 in base 1",
        "convert 12 to decimal",  # which base is 12 in? only hex digits name their base
        "what is face in decimal",
        "convert 12 to roman numerals",
        "what is 255 in decimal",  # already decimal
        "is prime 7 a good movie",
    ],
)
def test_whole_number_near_misses(text: str) -> None:
    assert NumbersResolver().match(Request.of(text), ToolContext()) is None


def test_hex_digits_name_their_base() -> None:
    for text, digits in (("what is FF in decimal", "ff"), ("convert 1a to decimal", "1a")):
        found = NumbersResolver().match(Request.of(text), ToolContext())
        assert found is not None
        assert found.arguments == {"number": digits, "from_base": 16, "to_base": 10}
