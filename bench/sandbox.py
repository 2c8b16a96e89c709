"""What the OS sandbox costs: `python3 -c 'print(1)'` sandboxed against the same command run
plainly, side by side (interleaved rounds, medians), and the tool call on top.

    python bench/sandbox.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from milliwatt.shield.sandbox import run  # noqa: E402
from milliwatt.tools.code import run_code  # noqa: E402

COMMAND = ["python3", "-c", "print(1)"]


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    plain, sandboxed, tool = [], [], []
    run(COMMAND)  # warm the page cache and the compiled seccomp filter
    for _ in range(args.rounds):
        started = time.perf_counter()
        out = subprocess.run(COMMAND, capture_output=True, text=True, env={"PATH": "/usr/bin"})
        plain.append(_ms(started))
        assert out.stdout == "1\n"
        started = time.perf_counter()
        result = run(COMMAND)
        sandboxed.append(_ms(started))
        assert result.stdout == "1\n", result
        started = time.perf_counter()
        called = run_code.call({"language": "python", "code": "print(1)"})
        tool.append(_ms(started))
        assert called.value["stdout"] == "1\n", called
    p50 = {name: statistics.median(v) for name, v in
           (("plain", plain), ("sandboxed", sandboxed), ("tool", tool))}  # fmt: skip
    p95 = statistics.quantiles(sandboxed, n=20)[-1]
    print(f"python3 -c 'print(1)', median of {args.rounds}:")
    print(f"  plain          {p50['plain']:7.1f} ms")
    print(f"  sandboxed      {p50['sandboxed']:7.1f} ms  (p95 {p95:.1f} ms)")
    print(f"  code.run tool  {p50['tool']:7.1f} ms")
    print(
        f"plain_ms={p50['plain']:.1f} sandboxed_ms={p50['sandboxed']:.1f} "
        f"sandboxed_p95_ms={p95:.1f} tool_ms={p50['tool']:.1f} "
        f"overhead_ms={p50['sandboxed'] - p50['plain']:.1f} goal_ms=150"
    )


if __name__ == "__main__":
    main()
