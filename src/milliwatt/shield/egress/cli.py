"""`milliwatt egress`: check URLs against the outbound policy, or fetch one through the guard.

Exit codes: 0 allowed (or fetched), 3 blocked, 2 bad input, 1 the fetch failed.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from .addresses import IPAddress
from .client import GuardedClient
from .errors import EgressBlocked, EgressError
from .policy import WEB_PORTS, EgressGuard, EgressPolicy
from .resolver import Resolver, StaticResolver, SystemResolver, parse_resolve_entry

EXIT_BLOCK = 3
EXIT_USAGE = 2

egress_app = typer.Typer(
    help="The egress guard: check URLs against the outbound policy; fetch through it.",
    no_args_is_help=True,
)

ResolveOpt = Annotated[
    list[str] | None,
    typer.Option("--resolve", help="HOST=IP[,IP]: use these addresses for HOST instead of DNS."),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Never ask DNS; names not given addresses are refused.")
]
NetworkOpt = Annotated[
    list[str] | None,
    typer.Option("--allow-network", help="CIDR to allow deliberately, e.g. 127.0.0.0/8."),
]
PortOpt = Annotated[
    list[int] | None,
    typer.Option("--port", help=f"Allowed port (repeat it); default {WEB_PORTS}."),
]
AnyPortOpt = Annotated[bool, typer.Option("--any-port", help="Allow every port.")]

_IP_TOKEN = re.compile(r"[0-9A-Fa-f:.]{2,}")


class _Answer:
    """One case's DNS: the addresses the case says its name resolves to, for whatever name."""

    def __init__(self, addresses: list[IPAddress], fallback: Resolver) -> None:
        self._addresses = addresses
        self._fallback = fallback

    def resolve(self, name: str, timeout: float) -> list[IPAddress]:
        return list(self._addresses) or self._fallback.resolve(name, timeout)


@egress_app.command()
def check(
    url: Annotated[str | None, typer.Argument(help="The URL to check.")] = None,
    resolve: ResolveOpt = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="JSON lines with 'input' and optional 'resolves_to'; - reads stdin."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    offline: OfflineOpt = False,
    allow_network: NetworkOpt = None,
    port: PortOpt = None,
    any_port: AnyPortOpt = False,
    dns_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for DNS before blocking.")
    ] = 5.0,
) -> None:
    """Say whether the guard allows URL, and why not; exit 0 allow, 3 block."""
    if (url is None) == (file is None):
        _usage("give either a URL or --file")
    policy = _policy(allow_network, port, any_port)
    resolver = _resolver(resolve, offline)
    if file is not None:
        _check_file(file, policy, resolver, dns_timeout)
        return
    assert url is not None
    verdict = _verdict(EgressGuard(policy, resolver), url, dns_timeout)
    if as_json:
        typer.echo(json.dumps(verdict, ensure_ascii=False))
    elif verdict["verdict"] == "allow":
        typer.echo(f"allow {verdict['url']} -> {', '.join(verdict['addresses'])}")
    else:
        typer.echo(f"block {verdict['reason']}")
    raise typer.Exit(0 if verdict["verdict"] == "allow" else EXIT_BLOCK)


@egress_app.command()
def fetch(
    url: Annotated[str, typer.Argument(help="The URL to fetch.")],
    resolve: ResolveOpt = None,
    offline: OfflineOpt = False,
    allow_network: NetworkOpt = None,
    port: PortOpt = None,
    any_port: AnyPortOpt = False,
    max_bytes: Annotated[int, typer.Option(min=1, help="Stop reading after this many bytes.")] = (
        EgressPolicy().max_bytes
    ),
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds for the whole fetch.")] = (
        EgressPolicy().timeout
    ),
) -> None:
    """Fetch URL through the guard: the body to stdout, status and final URL to stderr."""
    policy = _policy(allow_network, port, any_port, max_bytes=max_bytes, timeout=timeout)
    client = GuardedClient(policy, _resolver(resolve, offline))
    try:
        response = client.get(url)
    except EgressBlocked as exc:
        typer.echo(f"block {exc.reason}", err=True)
        raise typer.Exit(EXIT_BLOCK) from None
    except EgressError as exc:
        typer.echo(f"error {exc}", err=True)
        raise typer.Exit(1) from None
    cut = " (truncated)" if response.truncated else ""
    typer.echo(f"{response.status} {response.url} from {response.address}{cut}", err=True)
    sys.stdout.buffer.write(response.content)
    sys.stdout.flush()


def _verdict(guard: EgressGuard, url: str, dns_timeout: float) -> dict[str, Any]:
    try:
        target = guard.check(url, timeout=dns_timeout)
    except EgressBlocked as exc:
        return {"input": url, "verdict": "block", "reason": exc.reason}
    except EgressError as exc:  # a DNS timeout: nothing was allowed
        return {"input": url, "verdict": "block", "reason": str(exc)}
    return {
        "input": url,
        "verdict": "allow",
        "reason": f"{target.url.host.text} is public and allowed by the policy",
        "url": str(target.url),
        "addresses": [str(a) for a in target.addresses],
    }


def _check_file(path: Path, policy: EgressPolicy, resolver: Resolver, dns_timeout: float) -> None:
    counts = {"allow": 0, "block": 0}
    expected = {"seen": 0, "met": 0}
    for case in _cases(path):
        answer = _Answer(_addresses_in(case.get("resolves_to")), resolver)
        verdict = _verdict(EgressGuard(policy, answer), case["input"], dns_timeout)
        if "id" in case:
            verdict["id"] = case["id"]
        counts[verdict["verdict"]] += 1
        if case.get("expect") in ("allow", "block"):
            expected["seen"] += 1
            expected["met"] += case["expect"] == verdict["verdict"]
        typer.echo(json.dumps(verdict, ensure_ascii=False))
    summary = f"{sum(counts.values())} cases: {counts['block']} blocked, {counts['allow']} allowed"
    if expected["seen"]:
        summary += f"; {expected['met']}/{expected['seen']} as expected"
    typer.echo(summary, err=True)


def _cases(path: Path) -> Iterator[dict[str, Any]]:
    try:
        lines = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        _usage(f"cannot read {path}: {exc.strerror}")
    for number, line in enumerate(lines.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as exc:
            _usage(f"{path} line {number} is not JSON: {exc.msg}")
        if not isinstance(case, dict) or not isinstance(case.get("input"), str):
            _usage(f"{path} line {number} needs an object with a string 'input'")
        yield case


def _addresses_in(resolves_to: object) -> list[IPAddress]:
    """Addresses named in a case's resolves_to: an address, a list, or a note holding some."""
    texts = resolves_to if isinstance(resolves_to, list) else [resolves_to]
    found: list[IPAddress] = []
    for text in texts:
        if not isinstance(text, str):
            continue
        for token in _IP_TOKEN.findall(text):
            try:
                found.append(ip_address(token.rstrip(".")))
            except ValueError:
                continue
    return found


def _policy(
    networks: list[str] | None, ports: list[int] | None, any_port: bool, **limits: Any
) -> EgressPolicy:
    settings: dict[str, Any] = {"allow_networks": networks or (), **limits}
    if any_port:
        settings["ports"] = None
    elif ports:
        settings["ports"] = ports
    try:
        return EgressPolicy(**settings)
    except ValueError as exc:
        _usage(str(exc))


def _resolver(entries: list[str] | None, offline: bool) -> Resolver:
    table: dict[str, list[IPAddress]] = {}
    for entry in entries or ():
        try:
            name, addresses = parse_resolve_entry(entry)
        except ValueError as exc:
            _usage(str(exc))
        table.setdefault(name, []).extend(addresses)
    return StaticResolver(table, fallback=None if offline else SystemResolver())


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)
