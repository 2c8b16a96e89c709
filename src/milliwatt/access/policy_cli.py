"""`milliwatt admin policy ...`: show, set or reset an agent's information-flow policy.

Setting and resetting need an enrolled operator's TOTP code; a running `milliwatt serve`
uses the change from its next request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from milliwatt.access.admin import Admin
from milliwatt.access.operators import OtpError
from milliwatt.access.policies import parse_policy
from milliwatt.config import PolicyConfig, Settings, load_settings, private_data_dir

policy_app = typer.Typer(
    help="Agents' information-flow policies (changes need an operator's code).",
    no_args_is_help=True,
)
AgentArg = Annotated[str, typer.Argument(help="The agent's name, as in milliwatt.toml.")]


def _configured(settings: Settings, agent: str) -> PolicyConfig:
    try:
        return settings.agent(agent).policy
    except KeyError:
        names = ", ".join(a.name for a in settings.agents)
        raise ValueError(f"unknown agent: {agent!r} (agents: {names})") from None


def _show(admin_ops: Admin, agent: str, configured: PolicyConfig) -> None:
    override = admin_ops.policies.get(agent)
    source = "set by an operator" if override else "from milliwatt.toml"
    print(f"agent {agent}: policy {source}")
    print(json.dumps((override or configured).model_dump(mode="json"), indent=2))


def _open() -> tuple[Settings, Admin]:
    settings = load_settings()
    return settings, Admin.open(private_data_dir(Path(settings.data_dir)), settings.storage.url)


@policy_app.command("show")
def show(agent: AgentArg) -> None:
    """The policy the agent runs under now (an operator's override, else the configured)."""
    settings, admin_ops = _open()
    try:
        _show(admin_ops, agent, _configured(settings, agent))
    finally:
        admin_ops.close()


@policy_app.command("set")
def set_policy(
    agent: AgentArg,
    operator: Annotated[str | None, typer.Option("--operator", envvar="MILLIWATT_OPERATOR")] = None,
    code: Annotated[str | None, typer.Option("--code", help="The operator's TOTP code.")] = None,
    policy_json: Annotated[
        str | None, typer.Option("--json", help="The whole policy: '{\"send_to\": [...]}'.")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="The policy in a JSON file.")] = None,
) -> None:
    """Replace the agent's whole policy (keys left out take their defaults)."""
    from milliwatt.access.cli import _credentials, _fail

    if (policy_json is None) == (file is None):
        raise ValueError("give the policy once: --json '{...}' or --file policy.json")
    text = policy_json if policy_json is not None else Path(str(file)).read_text()
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the policy is not valid JSON: {exc}") from None
    policy = parse_policy(body)
    settings, admin_ops = _open()
    try:
        configured = _configured(settings, agent)
        admin_ops.set_policy(*_credentials(admin_ops, operator, code), agent, policy)
        _show(admin_ops, agent, configured)
    except OtpError as exc:
        raise _fail(exc) from None
    finally:
        admin_ops.close()


@policy_app.command("reset")
def reset(
    agent: AgentArg,
    operator: Annotated[str | None, typer.Option("--operator", envvar="MILLIWATT_OPERATOR")] = None,
    code: Annotated[str | None, typer.Option("--code", help="The operator's TOTP code.")] = None,
) -> None:
    """Go back to the policy in milliwatt.toml."""
    from milliwatt.access.cli import _credentials, _fail

    settings, admin_ops = _open()
    try:
        configured = _configured(settings, agent)
        removed = admin_ops.reset_policy(*_credentials(admin_ops, operator, code), agent)
        if not removed:
            print(f"agent {agent} had no override")
        _show(admin_ops, agent, configured)
    except OtpError as exc:
        raise _fail(exc) from None
    finally:
        admin_ops.close()
