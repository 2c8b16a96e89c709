"""The command families of `milliwatt`, each imported only when its command runs.

`milliwatt --help` lists every family from FAMILIES without importing one: importing them
all (the agent runtime, the knowledge base, the MCP SDK) took seconds per command.
A test checks that each family's help here is the help its module gives.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import typer
import typer.main
from typer._click import Command, Context  # typer vendors click: its groups take these
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Family:
    target: str  # "module:attribute": a typer app (a group) or a function (one command)
    help: str  # the one line `milliwatt --help` shows


FAMILIES: dict[str, Family] = {
    "serve": Family(
        "milliwatt.gateway.cli:serve",
        "Serve the configured agents over an OpenAI-compatible HTTP API.",
    ),
    "chat": Family(
        "milliwatt.gateway.cli:chat",
        "Chat with an agent in the terminal; answers stream as they are generated.",
    ),
    "doctor": Family(
        "milliwatt.doctor:doctor",
        "Check the models, grammar-constrained output, the data directory and versions.",
    ),
    "report": Family(
        "milliwatt.telemetry.cli:report",
        "One page of what the server did: route mix, cost and savings, latency, blocks.",
    ),
    "ingest": Family(
        "milliwatt.knowledge.cli:ingest",
        "Ingest Markdown, text, HTML and PDF documents so that agents can search and cite them.",
    ),
    "admin": Family("milliwatt.access.cli:admin_app", "Operators and their TOTP second factor."),
    "audit": Family("milliwatt.access.cli:audit_app", "The hash-chained security audit trail."),
    "keys": Family("milliwatt.access.cli:keys_app", "API keys and tenants' limits."),
    "egress": Family(
        "milliwatt.shield.egress.cli:egress_app",
        "The egress guard: check URLs against the outbound policy; fetch through it.",
    ),
    "edge": Family(
        "milliwatt.edge.cli:edge_app", "The inference edge: where points of presence go."
    ),
    "eval": Family("milliwatt.evals.cli:app", "Evaluate milliwatt on public benchmarks."),
    "mcp": Family(
        "milliwatt.gateway.mcp_cli:app",
        "Model Context Protocol: serve milliwatt's tools and agents to MCP clients.",
    ),
    "models": Family(
        "milliwatt.models.cli:models_app", "The configured models; fetch more with `pull`."
    ),
    "sandbox": Family(
        "milliwatt.shield.sandbox_cli:sandbox_app", "Run commands in the OS sandbox (bubblewrap)."
    ),
    "shield": Family("milliwatt.shield.cli:app", "The WAF and the prompt firewall."),
    "waf": Family(
        "milliwatt.shield.waf.cli:app", "The web application firewall (OWASP CRS engine)."
    ),
    "tools": Family(
        "milliwatt.tools.cli:tools_app",
        "The deterministic tools: math, units, dates, text, graph, calendar.",
    ),
    "sessions": Family("milliwatt.gateway.cli:sessions_app", "Stored conversations."),
    "frontdoor": Family(
        "milliwatt.edge.frontdoor_cli:frontdoor",
        "Send each request to the nearest healthy PoP by measured RTT, failing over on loss.",
    ),
    "cluster": Family(
        "milliwatt.cluster.cli:app", "Run the agents on a Ray cluster: each PoP a set of Ray nodes."
    ),
    "storage": Family(
        "milliwatt.storage.cli:storage_app",
        "Where sessions, facts, calendars and documents live; copy them to PostgreSQL.",
    ),
    "knowledge": Family(
        "milliwatt.knowledge.cli:knowledge_app",
        "Search and manage ingested documents (see also `milliwatt ingest`).",
    ),
    "lab": Family(
        "milliwatt.edge.lab.cli:app",
        "The topology lab: an agent's loop served from the nearest PoP and from a central region.",
    ),
}


def load(name: str) -> Command:
    """The family's real command, its module imported now."""
    module, attribute = FAMILIES[name].target.split(":")
    found = getattr(importlib.import_module(module), attribute)
    command: Command
    if isinstance(found, typer.Typer):  # a group, even of one command (`sandbox run`)
        command = typer.main.get_group(found)
    else:  # a function: one command
        single = typer.Typer()
        single.command()(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A typer group whose FAMILIES are listed by their help line and loaded when invoked."""

    def list_commands(self, ctx: Context) -> list[str]:
        loaded = super().list_commands(ctx)
        return [*loaded, *(name for name in FAMILIES if name not in loaded)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in self.commands or cmd_name not in FAMILIES:
            return super().get_command(ctx, cmd_name)
        # listed only: a stand-in with the help line, so that --help imports nothing
        return TyperCommand(cmd_name, help=FAMILIES[cmd_name].help)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name = args[0] if args else None
        if name in FAMILIES and name not in self.commands:
            self.add_command(load(name), name)
        return super().resolve_command(ctx, args)
