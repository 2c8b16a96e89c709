"""Compiles the WAF's rule engine to C with mypyc, into src/milliwatt/shield/waf/_mypyc/.

    python3 scripts/compile_waf.py      # about a minute on 2 cores; scripts/install.sh runs it

Needs mypy (which carries mypyc), setuptools and a C compiler with the Python headers. The
build records the sha256 of the sources it compiled; the package uses it only while the
sources still match (milliwatt/shield/waf/native.py), so after editing a module either run
this again or the engine runs as Python. Exits non-zero, saying why, when the build fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# the loader alone, by path: importing the package would load the engine (and its libraries)
_spec = importlib.util.spec_from_file_location("waf_native", SRC / "milliwatt/shield/waf/native.py")
assert _spec is not None and _spec.loader is not None
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)


def main() -> int:
    try:
        from mypyc.build import mypycify
        from setuptools import Distribution
    except ImportError as exc:
        print(f"compile_waf: {exc.name} is missing (pip install mypy setuptools)", file=sys.stderr)
        return 1
    sources = [str(p.relative_to(SRC)) for p in native.compiled_sources()]
    digest = native.sources_digest()
    with tempfile.TemporaryDirectory(prefix="milliwatt-waf-") as tmp:
        os.chdir(SRC)  # module names come from paths relative to here
        extensions = mypycify(
            # the project's type-checker settings, less the warnings that depend on which
            # optional libraries are installed
            [
                *("--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", tmp),
                "--no-warn-unused-ignores",
                *sources,
            ],
            only_compile_paths=sources,
            opt_level="3",
            group_name=native.GROUP,
            target_dir=str(Path(tmp) / "c"),
        )
        dist = Distribution({"ext_modules": extensions})
        build = dist.get_command_obj("build_ext")
        build.build_lib = str(Path(tmp) / "lib")  # type: ignore[attr-defined]
        build.build_temp = str(Path(tmp) / "obj")  # type: ignore[attr-defined]
        build.parallel = os.cpu_count() or 1  # type: ignore[attr-defined]
        dist.run_command("build_ext")
        built = Path(tmp) / "lib" / "milliwatt" / "shield" / "waf"
        # replaced whole, and the digest written last: a half-copied build is never used
        target = native.COMPILED_DIR
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for library in built.iterdir():
            shutil.copy2(library, target / library.name)
        (target / native.DIGEST_FILE).write_text(digest + "\n", encoding="ascii")
    print(f"compile_waf: {len(sources)} modules compiled into {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
