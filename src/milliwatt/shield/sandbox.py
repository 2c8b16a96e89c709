"""Run a command inside an OS sandbox: bubblewrap namespaces, resource limits and seccomp.

The command sees a read-only /usr, a few harmless files of /etc, its own /proc and /dev
(read-only, no /dev/shm) and a small private /tmp (the only writable place, also its working
directory). It has its own empty network namespace (no route anywhere, not even to the
host's loopback), its own pid, IPC and UTS namespaces, no capabilities, and no way to make
new user namespaces. The data directory, the user's home and the rest of the host do not
exist for it.

Limits: wall time (the whole namespace is killed), CPU seconds, address space, size of any
file written (its captured output too), open files and tasks (RLIMIT_NPROC, counted over the
account that runs it, so the limit is set to what that account already runs plus the budget).
A root caller runs the sandbox as `nobody`: root ignores RLIMIT_NPROC and owns root's files.

Without bubblewrap nothing runs: `SandboxUnavailable`, never an unsandboxed fallback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from milliwatt.shield.seccomp import seccomp_filter

NOBODY = 65534
TIMEOUT_EXIT = 124  # as coreutils' timeout(1)
NOT_FOUND_EXIT = 127  # as a shell's "command not found"
_ETC_ALLOWED = (
    "passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
    "localtime", "alternatives", "mime.types",
)  # fmt: skip
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}
_SIGNAL_LIMITS = {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "file_size"}
_MEMORY_SIGNS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here: the command is not run."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int | None = None  # None: the wall time, rounded up
    memory_mb: int = 512  # address space; runtimes reserve more than they touch
    file_mb: int = 16  # largest file the command may write (its output included)
    tmp_mb: int = 64  # size of the private /tmp
    processes: int = 32  # tasks (processes and threads) it may add
    open_files: int = 64
    output_bytes: int = 1_000_000  # kept of stdout and of stderr each

    def __post_init__(self) -> None:
        for name in ("wall_s", "memory_mb", "file_mb", "tmp_mb", "processes", "open_files"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"sandbox limit {name} must be positive, not {value}")
        if self.cpu_s is not None and self.cpu_s <= 0:
            raise ValueError(f"sandbox limit cpu_s must be positive, not {self.cpu_s}")


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    killed_by: str | None  # "timeout", "cpu", "file_size", "memory", "signal:NAME" or None

    def as_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "timed_out": self.timed_out,
            "killed_by": self.killed_by,
        }


def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed; install it (Debian: apt-get install bubblewrap)"
            " to run code: milliwatt never runs it unsandboxed"
        )
    return found


def run(argv: Sequence[str], limits: Limits | None = None, stdin: str = "") -> SandboxResult:
    """Run `argv` in a fresh sandbox and wait for it; raises SandboxUnavailable, never leaks."""
    if not argv:
        raise ValueError("no command to run")
    limits = limits or Limits()
    bwrap = bwrap_path()
    account = NOBODY if os.geteuid() == 0 else os.geteuid()
    filter_bytes = seccomp_filter()
    read_end, write_end = os.pipe()
    seccomp_fd = read_end if filter_bytes is not None else None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        command = [*_prlimit(limits, account), bwrap, *_bwrap_args(limits, seccomp_fd), "--", *argv]
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                env=_ENV,
                cwd="/",
                pass_fds=(read_end,),
                start_new_session=True,
                **_drop_to(account),
            )
        except OSError as exc:
            os.close(read_end)
            os.close(write_end)
            raise SandboxUnavailable(f"cannot start the sandbox: {exc}") from exc
        os.close(read_end)
        with os.fdopen(write_end, "wb") as seccomp_pipe:
            seccomp_pipe.write(filter_bytes or b"")
        timed_out = _wait(proc, stdin, limits.wall_s)
        stdout, stderr = _read(out, limits.output_bytes), _read(err, limits.output_bytes)
    code = TIMEOUT_EXIT if timed_out else proc.returncode
    if not timed_out and code == 1 and stderr.startswith("bwrap: execvp "):
        return SandboxResult(NOT_FOUND_EXIT, stdout, f"{argv[0]}: command not found\n", False, None)
    if not timed_out and code == 1 and stderr.startswith("bwrap:"):
        raise SandboxUnavailable(f"bubblewrap cannot create the sandbox here: {stderr.strip()}")
    return SandboxResult(code, stdout, stderr, timed_out, _killed_by(timed_out, code, stderr))


def _bwrap_args(limits: Limits, seccomp_fd: int | None) -> list[str]:
    args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"]
    args += ["--new-session", "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    for name in _ROOT_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in _ETC_ALLOWED:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for python_etc in sorted(Path("/etc").glob("python3*")):
        args += ["--ro-bind", str(python_etc), str(python_etc)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp", "--chdir", "/tmp"]
    # the root and /dev bwrap builds are tmpfs: read-only, so /tmp is the one writable place
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return args + (["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else [])


def _prlimit(limits: Limits, account: int) -> list[str]:
    cpu = limits.cpu_s or max(1, int(limits.wall_s + 0.999))
    tasks = _tasks_of(account) + limits.processes + 3  # + bwrap, its pid 1 and the command
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise SandboxUnavailable("prlimit (util-linux) is missing: limits cannot be set")
    return [
        prlimit,
        f"--cpu={cpu}:{cpu + 1}",  # SIGXCPU at the soft limit says why; SIGKILL a second later
        f"--as={limits.memory_mb * 1024 * 1024}",
        f"--fsize={limits.file_mb * 1024 * 1024}",
        f"--nofile={limits.open_files}",
        f"--nproc={tasks}",
        "--core=0",
        "--",
    ]


def _tasks_of(uid: int) -> int:
    """Tasks (threads included) the account already runs: RLIMIT_NPROC counts them all."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue  # it ended while we looked
    return count


def _drop_to(account: int) -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    return {"user": account, "group": account, "extra_groups": []}


def _wait(proc: subprocess.Popen[bytes], stdin: str, wall_s: float) -> bool:
    deadline = time.monotonic() + wall_s
    try:
        proc.communicate(stdin.encode(), timeout=wall_s)
        return False
    except subprocess.TimeoutExpired:
        pass
    # killing bwrap kills the sandbox's pid 1 (--die-with-parent), which ends every task in it
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=max(1.0, deadline - time.monotonic() + 5))
    return True


def _read(file: IO[bytes], limit: int) -> str:
    file.seek(0)
    return file.read(limit).decode("utf-8", "replace")


def _killed_by(timed_out: bool, code: int, stderr: str) -> str | None:
    if timed_out:
        return "timeout"
    if code > 128:
        number = code - 128
        if number in _SIGNAL_LIMITS:
            return _SIGNAL_LIMITS[signal.Signals(number)]
        try:
            return f"signal:{signal.Signals(number).name}"
        except ValueError:
            return None
    if code != 0 and any(sign in stderr[-2000:] for sign in _MEMORY_SIGNS):
        return "memory"
    return None


def check() -> dict[str, Any]:
    """What `milliwatt doctor` shows: is bubblewrap there, does a sandbox start, with seccomp?"""
    found = shutil.which("bwrap")
    report: dict[str, Any] = {"bwrap": found or "missing (code.run refuses to run)"}
    report["seccomp"] = "on" if seccomp_filter() is not None else "off (libseccomp missing)"
    if found is not None:
        try:
            result = run(["true"], Limits(wall_s=10))
            report["works"] = result.exit_code == 0
        except SandboxUnavailable as exc:
            report["works"] = f"no: {exc}"
    return report
