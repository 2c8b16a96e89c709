"""File tools confined to the agent's workspace: `files.write`, `files.read`, `files.list`.

The workspace is `<data_dir>/workspace/<agent>`. A path is relative to it; `..`, absolute
paths and symbolic links are refused. Each component is opened relative to its parent's
descriptor with O_NOFOLLOW, so a link swapped in between the check and the use is refused
too. What is read back may have come from anywhere (downloads, attachments): READS_UNTRUSTED.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from milliwatt.tools.registry import Effect, Tool, ToolContext, ToolError, tool

MAX_WRITE_BYTES = 1_000_000
MAX_READ_CHARS = 20_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def workspace(context: ToolContext) -> Path:
    """The calling agent's workspace, created 0700 on first use."""
    root = Path(context.data_dir) / "workspace" / context.agent
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


@tool(
    effects={Effect.WRITES},
    name="files.write",
    examples=["save this summary to notes/summary.md", "write the list to todo.txt"],
)
def write(path: str, content: str, context: ToolContext, append: bool = False) -> dict[str, Any]:
    """Write text to a file in the agent's workspace (path relative to it); creates folders."""
    data = content.encode("utf-8")
    if len(data) > MAX_WRITE_BYTES:
        raise ToolError(f"content is {len(data)} bytes; at most {MAX_WRITE_BYTES} may be written")
    *folders, name = _parts(path)
    with _folder(context, folders, create=True) as parent:
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        flags |= os.O_APPEND if append else os.O_TRUNC
        fd = _open(name, flags, parent, path)
        with os.fdopen(fd, "wb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ToolError(f"{path} is not a regular file")
            handle.write(data)
    return {"path": "/".join(_parts(path)), "bytes": len(data), "appended": append}


@tool(
    effects={Effect.READS_UNTRUSTED},
    name="files.read",
    examples=["read notes/summary.md", "what is in todo.txt"],
)
def read(path: str, context: ToolContext) -> dict[str, Any]:
    """Read a text file from the agent's workspace (path relative to it)."""
    *folders, name = _parts(path)
    with _folder(context, folders, create=False) as parent:
        fd = _open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, parent, path)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ToolError(f"{path} is not a regular file")
            raw = handle.read(MAX_READ_CHARS * 4 + 1)
    text = raw.decode("utf-8", errors="replace")
    return {"path": "/".join(_parts(path)), "text": text[:MAX_READ_CHARS]}


# file names are as untrusted as the files: a download chooses its own
@tool(
    effects={Effect.READS_UNTRUSTED},
    name="files.list",
    examples=["which files are in my workspace"],
)
def list_files(context: ToolContext) -> dict[str, Any]:
    """List the files in the agent's workspace (paths relative to it)."""
    root = workspace(context)
    found = [
        str(p.relative_to(root))
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]
    return {"files": found[:500]}


def _parts(path: str) -> list[str]:
    """The path's components, or a ToolError for anything that could leave the workspace."""
    clean = path.strip().replace("\\", "/")
    if not clean:
        raise ToolError("the path is empty")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise ToolError(f"{path!r} is absolute: give a path inside the workspace")
    if "\x00" in clean:
        raise ToolError("the path contains a NUL character")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts or not parts:
        raise ToolError(f"{path!r} leaves the workspace")
    if posixpath.normpath("/".join(parts)) != "/".join(parts):
        raise ToolError(f"{path!r} is not a plain relative path")
    return parts


@contextmanager
def _folder(context: ToolContext, folders: list[str], *, create: bool) -> Iterator[int]:
    """A descriptor of the folder the path's last component lives in, reached without links."""
    fd = os.open(workspace(context), _DIR_FLAGS)
    try:
        for name in folders:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)
            child = _open(name, _DIR_FLAGS, fd, name)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open(name: str, flags: int, dir_fd: int, shown: str) -> int:
    try:
        return os.open(name, flags, 0o600, dir_fd=dir_fd)
    except FileNotFoundError:
        raise ToolError(f"{shown} does not exist in the workspace") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            if _is_link(name, dir_fd):
                raise ToolError(f"{shown} is a symbolic link: refused") from None
            raise ToolError(f"{shown} is not a folder") from None
        if exc.errno == errno.EISDIR:
            raise ToolError(f"{shown} is a folder") from None
        raise ToolError(f"cannot open {shown}: {exc.strerror}") from None


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


TOOLS: list[Tool] = [write, read, list_files]
