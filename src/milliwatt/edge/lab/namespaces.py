"""Network namespaces joined by veth pairs, made with iproute2's `ip` and always removed.

Every namespace of a run is named `mwlab-<pid>-<random>-<role>`, so runs side by side never
clash, and one left behind by a killed run can be told from a live one by its pid
(`remove_stale`). Addresses live inside the namespaces, so every run may use the same plan:
link i is 10.200.i.0/24, its first end .1, its second .2. Removing a namespace removes its
ends of the veth pairs with it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from milliwatt.errors import MilliwattError

PREFIX = "mwlab"
_ROLE = re.compile(r"[a-z][a-z0-9]{0,11}")  # veth names are `v-<role>`: at most 15 bytes


class LabUnavailableError(MilliwattError):
    """This machine or user cannot make network namespaces."""


def unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the topology lab makes network namespaces and veth pairs: it needs root"
    if shutil.which("ip") is None:
        return "the topology lab needs `ip` from iproute2, which is not installed"
    probe = f"{PREFIX}-{os.getpid()}-probe{secrets.token_hex(2)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed here: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def ip(*args: str) -> str:
    """Run `ip ARGS`; a failure is a LabUnavailableError with ip's own words."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise LabUnavailableError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Link:
    """A veth pair between two namespaces; addresses without their /24."""

    a: str
    b: str
    a_address: str
    b_address: str


@dataclass
class Topology:
    """Namespaces by role and the links between them; `with` removes them all."""

    run: str = field(default_factory=lambda: f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}")
    namespaces: dict[str, str] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)

    def __enter__(self) -> Topology:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add(self, role: str) -> str:
        """A new namespace for `role` (lower-case letters and digits), its loopback up."""
        if not _ROLE.fullmatch(role):
            raise ValueError(f"role {role!r}: 1-12 lower-case letters or digits, a letter first")
        if role in self.namespaces:
            raise ValueError(f"role {role!r} already has a namespace")
        name = f"{self.run}-{role}"
        ip("netns", "add", name)
        self.namespaces[role] = name  # recorded at once: close() removes it whatever follows
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def link(self, a: str, b: str) -> Link:
        """A veth pair from role a (`v-<b>`, 10.200.i.1) to role b (`v-<a>`, 10.200.i.2)."""
        index = len(self.links)
        if index > 255:
            raise ValueError("at most 256 links per topology")
        ns_a, ns_b = self.namespaces[a], self.namespaces[b]
        # made inside both namespaces at once: no name ever exists in the host's namespace
        ip("link", "add", f"v-{b}", "netns", ns_a, "type", "veth", "peer", "name", f"v-{a}",
           "netns", ns_b)  # fmt: skip
        link = Link(a, b, f"10.200.{index}.1", f"10.200.{index}.2")
        for ns, device, address in (
            (ns_a, f"v-{b}", link.a_address),
            (ns_b, f"v-{a}", link.b_address),
        ):
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", device)
            ip("-n", ns, "link", "set", device, "up")
        self.links.append(link)
        return link

    def command(self, role: str, argv: Sequence[str]) -> list[str]:
        """argv run inside role's namespace (`ip netns exec` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespaces[role], *argv]

    def close(self) -> None:
        """Remove every namespace, each tried even if another fails. Processes still inside
        one keep it alive unnamed: stop them first."""
        failures = []
        for name in reversed(list(self.namespaces.values())):
            done = subprocess.run(["ip", "netns", "delete", name], capture_output=True, text=True)
            if done.returncode != 0 and name in existing():
                failures.append(f"{name}: {done.stderr.strip()}")
        self.namespaces.clear()
        if failures:
            raise LabUnavailableError("could not remove " + "; ".join(failures))


def existing() -> list[str]:
    """Every namespace of any lab run on this machine."""
    names = (line.split()[0] for line in ip("netns", "list").splitlines() if line.strip())
    return [name for name in names if name.startswith(f"{PREFIX}-")]


def remove_stale() -> list[str]:
    """Remove the namespaces of runs whose process is gone; the names removed."""
    removed = []
    for name in existing():
        pid = name.split("-")[1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
            removed.append(name)
    return removed
