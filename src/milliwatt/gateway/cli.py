"""`milliwatt serve`, `milliwatt chat` and `milliwatt sessions`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from milliwatt.access.policies import PolicyOverrides
from milliwatt.agent.runner import Agent
from milliwatt.agent.runtime import Runtime
from milliwatt.config import load_settings
from milliwatt.gateway.approvals import TerminalApprover
from milliwatt.memory.sessions import SessionInfo
from milliwatt.terminal import escape_controls, literal

console = Console()
err = Console(stderr=True)
sessions_app = typer.Typer(help="Stored conversations.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth", help="Serve without API keys, even on a non-loopback address (unsafe)."
        ),
    ] = False,
) -> None:
    """Serve the configured agents over an OpenAI-compatible HTTP API."""
    import uvicorn

    from milliwatt.gateway.deadline import limited_protocol
    from milliwatt.gateway.server import build_server_app

    settings = load_settings()
    host = host or settings.host
    port = settings.port if port is None else port
    app = build_server_app(settings, log=err.print, host=host, port=port, no_auth=no_auth)
    limits = settings.server
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        # httptools, with a deadline per request and a bound on the request line and headers
        http=limited_protocol(limits.request_timeout_seconds, limits.max_header_bytes),
        timeout_keep_alive=limits.keep_alive_seconds,
    )


def chat(
    message: Annotated[
        str | None, typer.Argument(help="Ask once; omit for an interactive session.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Continue (and store) this conversation.")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Which configured agent answers.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per answer.")
    ] = False,
) -> None:
    """Chat with an agent in the terminal; answers stream as they are generated."""
    runtime = Runtime(load_settings(), approver=TerminalApprover())
    runtime.policy_override = PolicyOverrides(runtime.data_dir).get  # operators' changes
    try:
        chosen = runtime.agent(agent)
        if message is not None:
            _answer(chosen, message, session, as_json)
            return
        session = session or datetime.now().strftime("chat-%Y%m%d-%H%M%S")
        err.print(literal(f"session {session}; Ctrl-D or /exit to leave", "dim"))
        while True:
            try:
                line = input("you> ") if sys.stdin.isatty() else sys.stdin.readline()
            except EOFError:
                break
            if not line or line.strip() in {"/exit", "/quit"}:
                break
            if line.strip():
                _answer(chosen, line.strip(), session, as_json)
    except (ValueError, KeyError) as exc:
        err.print(Text.assemble(("error: ", "red"), literal(str(exc))))
        raise typer.Exit(2) from None
    finally:
        runtime.close()


def _answer(agent: Agent, message: str, session: str | None, as_json: bool) -> None:
    stream = None if as_json else (lambda text: print(escape_controls(text), end="", flush=True))
    result = agent.run(message, session=session, on_text=stream)
    if as_json:
        print(escape_controls(json.dumps(result.to_dict(), ensure_ascii=False)), flush=True)
    else:
        print(flush=True)
        for notice in result.notices:  # calls the policy refused, content held back
            err.print(literal(f"[policy] {notice}", "yellow"))
        cost = result.to_dict()["cost"]
        summary = (
            f"{result.route}: {result.model or result.tools_called[0].name} · "
            f"{result.ledger.tokens} tokens · {cost['ms']:.0f} ms · "
            f"~{cost['joules_est']:.3g} J (estimate)"
        )
        err.print(literal(summary, "dim"))


@sessions_app.command("list")
def sessions_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List stored conversations, newest first."""
    runtime = Runtime(load_settings())
    infos = runtime.store.list()
    runtime.close()
    if as_json:
        print(escape_controls(json.dumps([_info_dict(i) for i in infos], indent=2)))
        return
    table = Table("session", "agent", "turns", "messages", "tokens", "updated")
    for i in infos:
        cells = (i.name, i.agent, str(i.turns), str(i.messages), str(i.cost.tokens), i.updated)
        table.add_row(*(literal(cell) for cell in cells))
    console.print(table if infos else "no stored sessions")


@sessions_app.command("show")
def sessions_show(
    name: Annotated[str, typer.Argument(help="The session's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a stored conversation."""
    runtime = Runtime(load_settings())
    info = runtime.store.info(name)
    messages = runtime.store.history(name)
    runtime.close()
    if info is None:
        err.print(Text.assemble(("error: ", "red"), literal(f"no session named {name!r}")))
        raise typer.Exit(1)
    if as_json:
        body = _info_dict(info) | {
            "messages": [
                {"role": m.role, "content": m.content}
                | ({"name": m.name} if m.name else {})
                | ({"tool_calls": [c.__dict__ for c in m.tool_calls]} if m.tool_calls else {})
                for m in messages
            ]
        }
        print(escape_controls(json.dumps(body, indent=2, ensure_ascii=False)))
        return
    summary = f" ({info.agent}, {info.turns} turns, {info.cost.tokens} tokens)"
    console.print(Text.assemble(literal(info.name, "bold"), literal(summary)), highlight=False)
    for m in messages:
        console.print(
            Text.assemble(literal(m.role, "cyan"), ": ", literal(m.content)), highlight=False
        )


def _info_dict(info: SessionInfo) -> dict[str, object]:
    return asdict(info)
