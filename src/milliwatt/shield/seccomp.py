"""A seccomp filter for the sandbox, compiled by libseccomp (through ctypes, no build step).

Namespaces already hide the host; the filter shuts the kernel interfaces a sandboxed
program never needs and that kernel exploits favour: tracing other processes, mounting,
namespaces, keyrings, eBPF, perf, userfaultfd, io_uring, modules. They fail with EPERM.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import tempfile

BLOCKED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree",
    "open_by_handle_at", "name_to_handle_at",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "iopl", "ioperm", "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "uselib", "vhangup",
    "lookup_dcookie", "personality",
)  # fmt: skip
_ALLOW = 0x7FFF0000  # SCMP_ACT_ALLOW
_ERRNO = 0x00050000  # SCMP_ACT_ERRNO(0)


@functools.cache
def seccomp_filter() -> bytes | None:
    """The compiled BPF program bubblewrap loads (`--seccomp FD`); None without libseccomp."""
    name = ctypes.util.find_library("seccomp")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_ALLOW)
    if not ctx:
        return None
    try:
        for syscall in BLOCKED:
            number = lib.seccomp_syscall_resolve_name(syscall.encode())
            if number < 0:
                continue  # not on this architecture
            if lib.seccomp_rule_add(ctx, _ERRNO | errno.EPERM, number, 0) != 0:
                raise OSError(f"libseccomp refused a rule for {syscall}")
        with tempfile.TemporaryFile() as out:
            if lib.seccomp_export_bpf(ctx, out.fileno()) != 0:
                raise OSError("libseccomp could not export the filter")
            out.seek(0)
            return os.read(out.fileno(), 1 << 20)
    finally:
        lib.seccomp_release(ctx)
