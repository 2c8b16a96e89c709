"""Build src/milliwatt/evals/frugal.jsonl: the router's workload.

Arithmetic rows come from GSM8K's calculator steps (`<<48/2=24>>` in the answers), phrased
the ways people ask; the expected value is GSM8K's own result, kept only when a float
evaluation here agrees with it. A few GSM8K word problems become model rows (they need
reasoning, not one calculation). The hand-written rows in scripts/frugal_rows.jsonl cover
the other tool families and the model's share. The output is the same on every run.

    python scripts/make_frugal_workload.py [--gsm8k PATH] [--steps 120] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "corpora" / "gsm8k" / "test.jsonl"
HAND_ROWS = ROOT / "scripts" / "frugal_rows.jsonl"
OUTPUT = ROOT / "src" / "milliwatt" / "evals" / "frugal.jsonl"
STEP = re.compile(r"<<([\d.+\-*/() ]+)=([-\d.]+)>>")
WORDS = {
    "+": ["plus", "added to"],
    "-": ["minus", "take away"],
    "*": ["times", "multiplied by"],
    "/": ["divided by", "over"],
}
SYMBOLIC = [
    "What is {e}?",
    "what's {e}",
    "Calculate {e}.",
    "compute {e}",
    "{e} = ?",
    "{e}",
    "How much is {e}?",
    "Can you work out {e} for me?",
    "quick question: what is {e}",
    "please evaluate {e}",
    "hey, what does {e} equal?",
    "I need {e}",
]
VERBAL = [
    "What is {a} {w} {b}?",
    "what's {a} {w} {b}",
    "How much is {a} {w} {b}?",
    "{a} {w} {b}",
    "Tell me {a} {w} {b}.",
    "could you tell me what {a} {w} {b} is",
]


def float_value(expression: str) -> float:
    """A small recursive-descent evaluator for + - * / and parentheses (checks GSM8K)."""
    tokens = re.findall(r"\d+\.?\d*|\.\d+|[-+*/()]", expression)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def atom() -> float:
        token = take()
        if token == "(":
            value = sum_()
            take()
            return value
        if token in "+-":
            return -atom() if token == "-" else atom()
        return float(token)

    def product() -> float:
        value = atom()
        while peek() in ("*", "/"):
            value = value * atom() if take() == "*" else value / atom()
        return value

    def sum_() -> float:
        value = product()
        while peek() in ("+", "-"):
            value = value + product() if take() == "+" else value - product()
        return value

    result = sum_()
    if position != len(tokens):
        raise ValueError(f"unparsed tail in {expression!r}")
    return result


def gsm8k_steps(path: Path) -> list[tuple[str, str]]:
    steps = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for expression, stated in STEP.findall(json.loads(line)["answer"]):
            expression = expression.strip()
            if not re.search(r"\d\s*[-+*/]\s*[\d(]", expression):
                continue  # a bare number, not a calculation
            try:
                value = float_value(expression)
            except (ValueError, ZeroDivisionError, IndexError):
                continue
            if abs(value - float(stated)) <= 1e-9 * max(1.0, abs(value)):
                steps.append((expression, stated))
    return sorted(set(steps))


def phrase(expression: str, rng: random.Random) -> str:
    simple = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([-+*/])\s*(\d+(?:\.\d+)?)", expression)
    if simple and rng.random() < 0.5:
        a, op, b = simple.groups()
        return rng.choice(VERBAL).format(a=a, w=rng.choice(WORDS[op]), b=b)
    spaced = expression if rng.random() < 0.5 else re.sub(r"\s*([-+*/])\s*", r" \1 ", expression)
    return rng.choice(SYMBOLIC).format(e=spaced.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gsm8k", type=Path, default=GSM8K)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    if not args.gsm8k.is_file():
        raise SystemExit(f"GSM8K not found at {args.gsm8k}")
    rng = random.Random(8)
    steps = rng.sample(gsm8k_steps(args.gsm8k), args.steps)
    rows = [{"prompt": phrase(e, rng), "expected": stated, "route": "tool"} for e, stated in steps]
    problems = [json.loads(line)["question"] for line in args.gsm8k.read_text().splitlines()]
    rows += [{"prompt": q, "expected": "", "route": "model"} for q in rng.sample(problems, 12)]
    rows += [json.loads(line) for line in HAND_ROWS.read_text(encoding="utf-8").splitlines()]
    rng.shuffle(rows)
    with args.output.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tools = sum(r["route"] == "tool" for r in rows)
    print(f"{args.output}: {len(rows)} rows ({tools} tool, {len(rows) - tools} model)")


if __name__ == "__main__":
    main()
