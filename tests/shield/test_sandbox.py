"""Escapes from the OS sandbox: each one is tried for real and must fail."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from milliwatt.shield.sandbox import Limits, SandboxResult, run

SRC = Path(__file__).resolve().parents[2] / "src"


def python(code: str, limits: Limits | None = None) -> SandboxResult:
    return run(["python3", "-c", textwrap.dedent(code)], limits)


def test_a_command_runs_and_its_exit_code_and_output_come_back() -> None:
    result = run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.timed_out and result.killed_by is None


def test_a_missing_command_is_not_found_not_a_broken_sandbox() -> None:
    result = run(["no-such-command", "x"])
    assert (result.exit_code, result.stderr) == (127, "no-such-command: command not found\n")


def test_shadow_and_the_host_filesystem_are_not_there() -> None:
    assert Path("/etc/shadow").exists()  # on the host it is
    result = run(["sh", "-c", "cat /etc/shadow; ls /root /home /work /var /run; ls /"])
    for path in ("/etc/shadow", "/root", "/home", "/work", "/var", "/run"):
        assert f"{path}': No such file" in result.stderr or f"{path}: No such file" in result.stderr
    roots = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
    links = {n for n in roots if os.path.lexists("/" + n)}
    assert set(result.stdout.split()) == {"dev", "etc", "proc", "tmp", "usr"} | links


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory with a secret, outside /tmp (in the home) as a real one would be."""
    path = Path.home() / f".milliwatt-sandbox-test-{os.getpid()}"
    path.mkdir(mode=0o700)
    (path / "secret.txt").write_text("CANARY-DATA-DIR")
    yield path
    (path / "secret.txt").unlink()
    path.rmdir()


def test_the_data_directory_and_the_home_are_not_visible(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("CANARY-TMP")
    result = run(["sh", "-c", f"cat {data_dir}/secret.txt {tmp_path}/secret.txt; ls -a /tmp"])
    assert "CANARY" not in result.stdout
    assert result.stdout.split() == [".", ".."]  # its /tmp is its own, empty
    assert result.stderr.count("No such file") == 2


def test_no_connection_reaches_a_server_on_the_hosts_loopback() -> None:
    accepted: list[object] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    accepted.append(server.accept())
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        with socket.create_connection(("127.0.0.1", port)):  # reachable from the host
            pass
        result = python(f"""
            import socket
            for host in ("127.0.0.1", "localhost", {socket.gethostname()!r}, "1.1.1.1"):
                try:
                    socket.create_connection((host, {port}), timeout=1)
                    print("CONNECTED", host)
                except OSError as exc:
                    print("refused", host, type(exc).__name__)
        """)
        time.sleep(0.3)
        stop.set()
        thread.join()
    assert "CONNECTED" not in result.stdout
    assert result.stdout.count("refused") == 4
    assert len(accepted) == 1  # only the host's own check


def _leftovers(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_fork_bomb_stops_at_the_process_limit_and_leaves_nothing() -> None:
    marker = "FORKBOMB-MARKER"
    started = time.monotonic()
    result = python(
        f"""
        import os, time
        n = 0  # {marker}
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                n += 1
        except OSError as exc:
            print("stopped after", n)
        time.sleep(0.2)
        """,
        Limits(wall_s=5, processes=16),
    )
    assert time.monotonic() - started < 5
    assert result.stdout.startswith("stopped after")
    assert int(result.stdout.split()[-1]) <= 16
    time.sleep(0.2)
    assert _leftovers(marker) == []  # the sleeping children died with the sandbox


def test_a_fork_bomb_that_never_stops_is_killed_at_the_wall_time() -> None:
    marker = "FORKLOOP-MARKER"
    result = run(["sh", "-c", f"f() {{ f | f & }}; f; sleep 30 # {marker}"], Limits(wall_s=2))
    assert result.timed_out and result.killed_by == "timeout"
    time.sleep(0.3)
    assert _leftovers(marker) == []


def test_filling_memory_fails_at_the_limit() -> None:
    result = python(
        """
        blocks = []
        while True:
            blocks.append(bytearray(16 << 20))
        """,
        Limits(memory_mb=200, wall_s=10),
    )
    assert result.exit_code != 0 and "MemoryError" in result.stderr
    assert result.killed_by == "memory"


def test_filling_the_disk_fails_at_the_file_and_tmp_limits() -> None:
    one_file = run(["sh", "-c", "head -c 50000000 /dev/zero > /tmp/big"], Limits(file_mb=8))
    assert one_file.killed_by == "file_size" and one_file.exit_code == 128 + 25
    many = python(
        """
        import os
        for i in range(100):
            try:
                with open(f"/tmp/f{i}", "wb") as f:
                    f.write(b"x" * (4 << 20))
            except OSError as exc:
                print("full after", i, os.strerror(exc.errno))
                break
        """,
        Limits(file_mb=8, tmp_mb=16),
    )
    assert many.stdout.startswith("full after") and "No space left" in many.stdout
    assert int(many.stdout.split()[2]) <= 4


def test_nothing_outside_tmp_can_be_written(tmp_path: Path) -> None:
    targets = ["/usr/evil", "/etc/passwd", "/evil", "/bin/evil", "/proc/sys/kernel/hostname",
               "/dev/evil", str(tmp_path / "evil")]  # fmt: skip
    result = python(f"""
        for target in {targets!r}:
            try:
                with open(target, "w") as f:
                    f.write("x")
                print("WROTE", target)
            except OSError as exc:
                print("refused", target)
        open("/tmp/ok", "w").write("fine")
        print(open("/tmp/ok").read())
    """)
    assert "WROTE" not in result.stdout
    assert result.stdout.count("refused") == len(targets)
    assert result.stdout.rstrip().endswith("fine")
    assert not (tmp_path / "evil").exists()


def test_ctypes_cannot_reach_the_kernels_escape_hatches() -> None:
    result = python("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        calls = {
            "unshare_user": lambda: libc.unshare(0x10000000),
            "unshare_net": lambda: libc.unshare(0x40000000),
            "mount": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
            "chroot": lambda: libc.chroot(b"/tmp"),
            "ptrace_attach_1": lambda: libc.ptrace(16, 1, None, None),
            "setuid_0": lambda: libc.setuid(0),
            "bpf": lambda: libc.syscall(321, 0, None, 0),
        }
        for name, call in calls.items():
            print(name, call(), os.strerror(ctypes.get_errno()))
    """)
    lines = result.stdout.splitlines()
    assert len(lines) == 7, result.stderr
    assert all(line.split()[1] == "-1" for line in lines), lines


def test_proc_shows_only_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_CANARY", "CANARY-ENV")
    host_pid = os.getpid()
    result = python(f"""
        import os
        print(sorted(p for p in os.listdir("/proc") if p.isdigit()))
        for path in ("/proc/{host_pid}/environ", "/proc/1/root/work", "/proc/1/root/root"):
            print(path, os.path.exists(path))
        try:
            os.kill({host_pid}, 0)
            print("HOST PROCESS VISIBLE")
        except ProcessLookupError:
            print("no such process")
        print(open("/proc/1/environ").read() + repr(dict(os.environ)))
    """)
    assert "HOST PROCESS VISIBLE" not in result.stdout and "no such process" in result.stdout
    assert result.stdout.count(" False") == 3
    assert "CANARY-ENV" not in result.stdout
    pids = eval(result.stdout.splitlines()[0])  # a list of the sandbox's own pids
    assert len(pids) <= 3


def test_a_sleep_past_the_limit_is_killed_on_time() -> None:
    started = time.monotonic()
    result = run(["sleep", "30"], Limits(wall_s=1))
    assert time.monotonic() - started < 3
    assert result.timed_out and result.killed_by == "timeout" and result.exit_code == 124


def test_a_busy_loop_is_stopped_at_the_cpu_limit() -> None:
    result = python("while True: pass", Limits(wall_s=10, cpu_s=1))
    assert result.killed_by == "cpu" and not result.timed_out


def test_the_cli_exits_with_the_commands_code_and_speaks_json() -> None:
    cli = [sys.executable, "-m", "milliwatt.cli", "sandbox", "run"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    plain = subprocess.run([*cli, "--", "sh", "-c", "echo hi; exit 5"], capture_output=True,
                           text=True, env=env)  # fmt: skip
    assert (plain.returncode, plain.stdout) == (5, "hi\n")
    timed = subprocess.run([*cli, "--json", "--timeout", "1", "--", "sleep", "20"],
                           capture_output=True, text=True, env=env)  # fmt: skip
    assert timed.returncode == 124
    assert __import__("json").loads(timed.stdout) == {
        "exit_code": 124, "stdout": "", "stderr": "", "timed_out": True, "killed_by": "timeout"
    }  # fmt: skip
