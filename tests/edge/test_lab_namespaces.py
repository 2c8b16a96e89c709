"""Namespaces and veth pairs are made, addressed and always removed (root only)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from milliwatt.edge.lab import namespaces
from milliwatt.edge.lab.namespaces import PREFIX, LabUnavailableError, Topology, existing

REASON = namespaces.unavailable_reason()
needs_netns = pytest.mark.skipif(REASON is not None, reason=f"no network namespaces: {REASON}")


def addresses(namespace: str, device: str) -> list[str]:
    shown = json.loads(namespaces.ip("-j", "-4", "-n", namespace, "addr", "show", "dev", device))
    return [info["local"] for link in shown for info in link["addr_info"]]


@needs_netns
def test_namespaces_are_linked_addressed_and_removed() -> None:
    with Topology() as topology:
        a, b = topology.add("alpha"), topology.add("beta")
        link = topology.link("alpha", "beta")
        assert {a, b} <= set(existing())
        assert addresses(a, "v-beta") == [link.a_address] == ["10.200.0.1"]
        assert addresses(b, "v-alpha") == [link.b_address] == ["10.200.0.2"]
        # the pair carries traffic: a ping-like UDP datagram from alpha reaches beta
        receive = subprocess.Popen(
            topology.command("beta", ["python3", "-c", RECEIVE]), stdout=subprocess.PIPE, text=True
        )
        assert receive.stdout is not None and receive.stdout.readline() == "listening\n"
        subprocess.run(topology.command("alpha", ["python3", "-c", SEND]), check=True)
        assert receive.communicate(timeout=10)[0] == "hello\n"
    assert a not in existing() and b not in existing()


RECEIVE = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.200.0.2", 9999))
print("listening", flush=True); print(s.recv(100).decode())
"""
SEND = """
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello", ("10.200.0.2", 9999))
"""


@needs_netns
def test_a_failure_inside_still_removes_everything() -> None:
    with pytest.raises(KeyError), Topology() as topology:
        made = topology.add("alpha")
        topology.link("alpha", "nobody")  # no such role: fails after a namespace exists
    assert made not in existing()


@needs_netns
def test_runs_side_by_side_do_not_clash() -> None:
    with Topology() as one, Topology() as two:
        for topology in (one, two):
            topology.add("user")
            topology.add("pop")
            topology.link("user", "pop")  # same roles, same device names, same addresses
        assert one.namespaces["user"] != two.namespaces["user"]


@needs_netns
def test_namespaces_of_a_dead_run_are_stale_and_removed() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names no process
    stale = f"{PREFIX}-{gone.pid}-dead00-user"
    namespaces.ip("netns", "add", stale)
    with Topology() as live:
        mine = live.add("user")
        removed = namespaces.remove_stale()
        assert stale in removed and stale not in existing()
        assert mine in existing()  # this process is alive: its namespace stays


def test_bad_roles_are_refused_before_anything_is_made() -> None:
    topology = Topology()
    for role in ("User", "a-b", "", "averyveryverylongrole"):
        with pytest.raises(ValueError, match="lower-case letters or digits"):
            topology.add(role)
    assert topology.namespaces == {}


def test_without_root_the_reason_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert namespaces.unavailable_reason() == (
        "the topology lab makes network namespaces and veth pairs: it needs root"
    )


def test_a_failing_ip_command_names_itself() -> None:
    if REASON is not None and "needs root" in REASON:
        pytest.skip(REASON)
    with pytest.raises(LabUnavailableError, match="ip netns delete mwlab-no-such-namespace"):
        namespaces.ip("netns", "delete", "mwlab-no-such-namespace")
