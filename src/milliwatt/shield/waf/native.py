"""The rule engine's modules compiled to C by mypyc, used when built for these exact sources.

`scripts/compile_waf.py` (run by `scripts/install.sh`) compiles the package's modules (all
but those in `NOT_COMPILED`) with mypyc, the compiler mypy ships for its own code, into
`_mypyc/` beside them, with the sha256 of the sources it compiled. The same typed Python
runs either way; the compiled build inspects a request in half to two thirds of the CPU
time (docs/waf.md).

At import the package looks in `_mypyc/` first, but only when its recorded digest matches
the sources on disk now, so an edited module is never shadowed by a stale build; otherwise it
runs the Python sources and says why (`state()`, shown by `milliwatt doctor`).
`MILLIWATT_WAF_PURE=1` keeps the Python sources (for profilers that wrap functions).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).parent
COMPILED_DIR = PACKAGE_DIR / "_mypyc"
DIGEST_FILE = "sources.sha256"
GROUP = "milliwatt.shield.waf.native"  # the shared library is `native__mypyc` in the package
# every module of the package but the entry points, the test-suite runner and this loader
NOT_COMPILED = frozenset({"__init__.py", "native.py", "cli.py", "ftw.py"})

_state = "python (not yet imported)"


def compiled_sources() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.glob("*.py") if p.name not in NOT_COMPILED)


def sources_digest() -> str:
    digest = hashlib.sha256()
    for path in compiled_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def use_compiled(package_path: list[str]) -> str:
    """Puts `_mypyc/` first on the package's search path when the build matches the
    sources; returns (and keeps, for `state()`) what the package runs and why."""
    global _state
    _state = _choose()
    if _state == "compiled":
        package_path.insert(0, str(COMPILED_DIR))
    elif "stale" in _state:
        log.warning("WAF: %s", _state)
    return _state


def _choose() -> str:
    if os.environ.get("MILLIWATT_WAF_PURE") == "1":
        return "python (MILLIWATT_WAF_PURE=1)"
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    if not (COMPILED_DIR / f"native__mypyc{suffix}").is_file():
        return "python (no compiled build for this Python; run scripts/compile_waf.py)"
    try:
        built = (COMPILED_DIR / DIGEST_FILE).read_text(encoding="ascii").strip()
    except OSError:
        built = ""
    if built != sources_digest():
        return "python (the compiled build is stale: run scripts/compile_waf.py)"
    return "compiled"


def state() -> str:
    """'compiled', or 'python (why)'."""
    return _state
