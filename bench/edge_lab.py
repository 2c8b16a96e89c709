"""An agent's N-step loop served from the nearest PoP against the same loop served from one
central region, through the topology lab (network namespaces, paths delayed by the fiber
model of milliwatt.edge.geo); needs root.

    sudo python bench/edge_lab.py [--steps 1,3,10] [--repeats 3] [--scenario lisbon ...]
        [--max-tokens 4] [--no-tool]

Scenarios: Lisbon's user, edge PoP in Madrid, central region in Ashburn (Virginia); Jakarta's
user, edge PoP in Singapore, the same central region. Each step is a model call (a chat
completion of --max-tokens tokens from the bundled SmolLM2-135M) and a tool call (a question
the tool route answers), each one HTTP round trip on a kept-alive connection. Both PoPs are
identical `milliwatt serve` processes; edge and central loops alternate, and the saving is
the median over repeats of (central - edge), each pair timed back to back. "net saving"
takes each PoP's own time (its agent's, as the answer reports it) out of both loops first:
what is left is the paths' share, without the model's noise on a busy machine.

The issue's goal: the edge saves at least N x (central RTT - edge RTT) per N-step loop. With a
tool call per step a loop makes 2N round trips, so the paths alone account for twice that
("calls x dRTT"); --no-tool makes one round trip per step. The last line holds the figures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from milliwatt.edge.lab.cli import parse_steps
from milliwatt.edge.lab.namespaces import LabUnavailableError
from milliwatt.edge.lab.results import headline, table
from milliwatt.edge.lab.runner import run_lab, unwind_on_sigterm
from milliwatt.edge.lab.scenarios import SCENARIOS
from milliwatt.errors import InvalidRequestError


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", default="1,3,10", help="loop lengths N, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="loops per N and PoP")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--max-tokens", type=int, default=4, help="tokens per model call")
    parser.add_argument("--no-tool", dest="tool", action="store_false")
    args = parser.parse_args(argv)
    try:
        steps = parse_steps(args.steps)
    except InvalidRequestError as error:
        parser.error(str(error))
    if args.repeats < 1 or args.max_tokens < 1:
        parser.error("--repeats and --max-tokens are positive")
    scenarios = [SCENARIOS[name] for name in args.scenario or SCENARIOS]
    unwind_on_sigterm()
    try:
        results = run_lab(
            scenarios,
            steps,
            repeats=args.repeats,
            max_tokens=args.max_tokens,
            tool=args.tool,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except LabUnavailableError as error:
        print(f"edge_lab: {error}", file=sys.stderr)
        sys.exit(1)
    for line in table(results):
        print(line)
    print(headline(results))


if __name__ == "__main__":
    main()
