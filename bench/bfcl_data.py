"""The `--data DIR` argument the BFCL benchmarks share: BFCL's folder, checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora" / "bfcl"


def bfcl_folder(description: str) -> Path | None:
    """The folder `--data` names (BFCL in the shared corpora by default); None, having said
    so, when it is not there."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"BFCL data not found at {args.data}", file=sys.stderr)
        return None
    folder: Path = args.data
    return folder
