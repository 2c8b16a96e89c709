"""files.write / files.read: confined to the agent's workspace; links and escapes refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from milliwatt.tools.files import TOOLS
from milliwatt.tools.registry import Effect, ToolContext, ToolRegistry

TOOLSET = ToolRegistry(TOOLS)


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    return ToolContext(agent="writer", data_dir=tmp_path)


def test_effects_are_declared() -> None:
    assert TOOLSET.get("files.write").effects == {Effect.WRITES}
    assert TOOLSET.get("files.read").effects == {Effect.READS_UNTRUSTED}
    assert TOOLSET.get("files.list").effects == {Effect.READS_UNTRUSTED}


def test_write_then_read_inside_the_workspace(context: ToolContext, tmp_path: Path) -> None:
    written = TOOLSET.call("files.write", {"path": "notes/today.md", "content": "moss"}, context)
    assert written.ok, written.error
    assert (tmp_path / "workspace" / "writer" / "notes" / "today.md").read_text() == "moss"
    TOOLSET.call("files.write", {"path": "notes/today.md", "content": "+", "append": True}, context)
    read = TOOLSET.call("files.read", {"path": "./notes/today.md"}, context)
    assert read.untrusted and read.value["text"] == "moss+"
    listed = TOOLSET.call("files.list", {}, context)
    assert listed.value["files"] == ["notes/today.md"]


@pytest.mark.parametrize(
    "path", ["../escape.txt", "notes/../../escape.txt", "/etc/passwd", "C:/x.txt", "", "a/\x00b"]
)
def test_paths_that_leave_the_workspace_are_refused(
    path: str, context: ToolContext, tmp_path: Path
) -> None:
    result = TOOLSET.call("files.write", {"path": path, "content": "x"}, context)
    assert result.error is not None
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "workspace" / "escape.txt").exists()


def test_symbolic_links_are_refused_as_file_and_as_folder(
    context: ToolContext, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("keep")
    root = tmp_path / "workspace" / "writer"
    root.mkdir(parents=True)
    os.symlink(outside / "secret.txt", root / "link.txt")
    os.symlink(outside, root / "linked")
    for path in ("link.txt", "linked/secret.txt", "linked/new.txt"):
        wrote = TOOLSET.call("files.write", {"path": path, "content": "overwritten"}, context)
        assert wrote.error is not None and "symbolic link" in wrote.error, (path, wrote.error)
        read = TOOLSET.call("files.read", {"path": path}, context)
        assert read.error is not None and "symbolic link" in read.error
    assert (outside / "secret.txt").read_text() == "keep"
    assert not (outside / "new.txt").exists()


def test_missing_files_and_folders_are_clear_errors(context: ToolContext) -> None:
    missing = TOOLSET.call("files.read", {"path": "nope.txt"}, context)
    assert missing.error == "nope.txt does not exist in the workspace"
    TOOLSET.call("files.write", {"path": "plain", "content": "x"}, context)
    under_file = TOOLSET.call("files.write", {"path": "plain/child.txt", "content": "x"}, context)
    assert under_file.error is not None and "not a folder" in under_file.error
