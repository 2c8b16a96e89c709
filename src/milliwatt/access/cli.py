"""`milliwatt keys ...`, `milliwatt admin ...` and `milliwatt audit ...`.

Creating and revoking keys, setting a tenant's limits and exporting the audit trail need an
enrolled operator's TOTP code (`--operator NAME --code 123456`, or MILLIWATT_OPERATOR and a
prompt for the code). Listing keys shows ids and states, never a secret.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from milliwatt.access.admin import NO_OPERATOR, Admin, postgres_trail_url, trail_path
from milliwatt.access.keys import parse_duration
from milliwatt.access.limits import Limits
from milliwatt.access.operators import OperatorStore, OtpError
from milliwatt.access.policy_cli import policy_app
from milliwatt.config import load_settings, private_data_dir
from milliwatt.shield.audit_trail import read_trail, verify
from milliwatt.terminal import escape_controls, literal

keys_app = typer.Typer(help="API keys and tenants' limits.", no_args_is_help=True)
admin_app = typer.Typer(help="Operators and their TOTP second factor.", no_args_is_help=True)
admin_app.add_typer(policy_app, name="policy")
audit_app = typer.Typer(help="The hash-chained security audit trail.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

OperatorOpt = Annotated[
    str | None,
    typer.Option("--operator", envvar="MILLIWATT_OPERATOR", help="The enrolled operator acting."),
]
CodeOpt = Annotated[
    str | None, typer.Option("--code", help="The operator's current TOTP code (else prompted).")
]
RpmOpt = Annotated[int | None, typer.Option("--rpm", help="Requests per minute.")]
BurstOpt = Annotated[int, typer.Option("--burst", help="Requests at once within the rpm.")]
TpmOpt = Annotated[int | None, typer.Option("--tpm", help="Tokens per minute.")]
TpdOpt = Annotated[int | None, typer.Option("--tokens-per-day", help="Tokens per UTC day.")]
JpdOpt = Annotated[
    float | None, typer.Option("--joules-per-day", help="Estimated joules per UTC day.")
]
ConcOpt = Annotated[int | None, typer.Option("--concurrent", help="Requests in flight at once.")]


def _data_dir() -> Path:
    return private_data_dir(Path(load_settings().data_dir))


def _operator_store() -> OperatorStore:
    settings = load_settings()
    return OperatorStore(private_data_dir(Path(settings.data_dir)), settings.storage.url)


def _open_admin() -> Admin:
    settings = load_settings()
    return Admin.open(private_data_dir(Path(settings.data_dir)), settings.storage.url)


def _trail_url(path: Path | None) -> str | None:
    """The PostgreSQL audit trail's URL when `[storage] url` names one and no file is named."""
    return None if path is not None else postgres_trail_url(load_settings().storage.url)


def _trail_records(path: Path | None) -> Iterator[dict[str, Any]]:
    url = _trail_url(path)
    if url is not None:
        from milliwatt.shield.audit_trail_postgres import read_postgres_trail

        return read_postgres_trail(url)
    target = path or trail_path(_data_dir())
    if not target.is_file():
        raise FileNotFoundError(f"no audit trail at {target}")
    return read_trail(target)


def _credentials(admin: Admin, operator: str | None, code: str | None) -> tuple[str, str]:
    if not admin.operators.any_active():
        raise OtpError(NO_OPERATOR)
    if operator is None:
        raise ValueError("name the operator acting: --operator NAME (or MILLIWATT_OPERATOR)")
    if code is None:
        if not sys.stdin.isatty():
            raise ValueError("give the operator's TOTP code: --code 123456")
        code = typer.prompt(f"TOTP code for {operator}", hide_input=True)
    return operator, code


def _fail(exc: Exception) -> typer.Exit:
    err.print(literal(f"error: {exc}", "red"))
    return typer.Exit(1)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key acts for.")],
    agents: Annotated[
        str, typer.Option("--agents", help="Agents it may use, comma-separated (* for all).")
    ] = "*",
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime: 30d, 12h, 15m ...")
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="May use /console, /metrics and /admin.")
    ] = False,
    label: Annotated[str, typer.Option("--label", help="A note: who or what uses it.")] = "",
    rpm: RpmOpt = None,
    burst: BurstOpt = 1,
    tpm: TpmOpt = None,
    tokens_per_day: TpdOpt = None,
    joules_per_day: JpdOpt = None,
    concurrent: ConcOpt = None,
    operator: OperatorOpt = None,
    code: CodeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    limits = Limits(rpm, burst, tpm, tokens_per_day, joules_per_day, concurrent)
    lifetime = parse_duration(expires) if expires else None
    names = tuple(a.strip() for a in agents.split(",") if a.strip()) or ("*",)
    admin_ops = _open_admin()
    try:
        who, otp = _credentials(admin_ops, operator, code)
        key, info = admin_ops.create_key(
            who, otp, tenant, agents=names, admin=admin, limits=limits, expires_in=lifetime,
            label=label,
        )  # fmt: skip
    except OtpError as exc:
        raise _fail(exc) from None
    finally:
        admin_ops.close()
    if as_json:
        print(json.dumps(info.to_dict() | {"key": key}))
        return
    print(key)
    err.print(literal(f"key {info.id} for tenant {tenant}: shown once, stored as a hash", "dim"))


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys: id, tenant, agents, limits and state (never a secret)."""
    admin_ops = _open_admin()
    infos = admin_ops.keys.list(tenant)
    admin_ops.close()
    if as_json:
        print(escape_controls(json.dumps([i.to_dict() for i in infos], indent=2)))
        return
    table = Table("id", "tenant", "agents", "admin", "limits", "expires", "state")
    for i in infos:
        expires = _when(i.expires) if i.expires else "never"
        limits = " ".join(f"{k}={v}" for k, v in i.limits.to_dict().items())
        cells = (i.id, i.tenant, ",".join(i.agents), "yes" if i.admin else "", limits, expires)
        table.add_row(*(literal(c) for c in (*cells, i.state())))
    console.print(table if infos else "no API keys")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")],
    operator: OperatorOpt = None,
    code: CodeOpt = None,
) -> None:
    """Revoke a key: its next request (in every process) gets 401."""
    admin_ops = _open_admin()
    try:
        info = admin_ops.revoke_key(*_credentials(admin_ops, operator, code), key_id)
    except OtpError as exc:
        raise _fail(exc) from None
    finally:
        admin_ops.close()
    print(f"revoked key {info.id} of tenant {info.tenant}")


@keys_app.command("limits")
def tenant_limits(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant.")],
    rpm: RpmOpt = None,
    burst: BurstOpt = 1,
    tpm: TpmOpt = None,
    tokens_per_day: TpdOpt = None,
    joules_per_day: JpdOpt = None,
    concurrent: ConcOpt = None,
    operator: OperatorOpt = None,
    code: CodeOpt = None,
) -> None:
    """Set a tenant's limits, shared by all its keys (none given: no limits)."""
    limits = Limits(rpm, burst, tpm, tokens_per_day, joules_per_day, concurrent)
    admin_ops = _open_admin()
    try:
        admin_ops.set_tenant_limits(*_credentials(admin_ops, operator, code), tenant, limits)
    except OtpError as exc:
        raise _fail(exc) from None
    finally:
        admin_ops.close()
    print(f"tenant {tenant}: {json.dumps(limits.to_dict()) if not limits.empty else 'no limits'}")


@admin_app.command("enroll")
def enroll(
    name: Annotated[str, typer.Argument(help="The new operator's name.")],
    operator: OperatorOpt = None,
    code: CodeOpt = None,
) -> None:
    """Enroll an operator: shows the otpauth URI and its QR code for an authenticator app.
    Once an operator is active, enrolling another needs an active operator's code."""
    admin_ops = _open_admin()
    try:
        if admin_ops.operators.any_active():
            admin_ops.authorize(*_credentials(admin_ops, operator, code), "operator.enroll", "cli")
        uri = admin_ops.operators.enroll(name)
        admin_ops.trail.record(
            "admin.action", {"action": "operator.enroll", "operator": operator, "enrolled": name}
        )
    except OtpError as exc:
        raise _fail(exc) from None
    finally:
        admin_ops.close()
    print(uri)
    if sys.stdout.isatty():
        print(_qr(uri))
    err.print(literal(f"scan it, then: milliwatt admin confirm {name} CODE", "dim"))


def _qr(text: str) -> str:
    import qrcode

    code = qrcode.QRCode(border=1)
    code.add_data(text)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


@admin_app.command("qr")
def show_qr(uri: Annotated[str, typer.Argument(help="An otpauth:// URI.")]) -> None:
    """Print a QR code of an otpauth URI in the terminal."""
    print(_qr(uri))


@admin_app.command("confirm")
def confirm(
    name: Annotated[str, typer.Argument(help="The enrolled operator.")],
    code: Annotated[str, typer.Argument(help="A code from the authenticator app.")],
) -> None:
    """Activate an enrolled operator with a first code."""
    store = _operator_store()
    try:
        store.confirm(name, code)
    except OtpError as exc:
        raise _fail(exc) from None
    finally:
        store.close()
    admin_ops = _open_admin()
    admin_ops.trail.record("admin.action", {"action": "operator.confirm", "operator": name})
    admin_ops.close()
    print(f"operator {name} is active")


@admin_app.command("operators")
def operators() -> None:
    """List enrolled operators."""
    store = _operator_store()
    found = store.list()
    store.close()
    for o in found:
        print(f"{o.name}\t{'active' if o.active else 'pending'}\t{_when(o.created)}")
    if not found:
        print("no operators enrolled")


@audit_app.command("verify")
def audit_verify(
    path: Annotated[Path | None, typer.Option("--path", help="Default: the data dir's.")] = None,
) -> None:
    """Check the hash chain and checkpoints; names each edited, removed or moved record."""
    url = _trail_url(path)
    if url is not None:  # [storage] url: the trail is a PostgreSQL table
        from milliwatt.shield.audit_trail_postgres import verify_postgres

        where, verdict = "audit_trail (PostgreSQL)", verify_postgres(url)
    else:
        target = path or trail_path(_data_dir())
        if not target.is_file():
            raise FileNotFoundError(f"no audit trail at {target}")
        where, verdict = str(target), verify(target)
    for finding in verdict.findings:
        print(f"{where}: {finding}")
    if not verdict.ok:
        print(
            f"audit trail BROKEN: {len(verdict.findings)} problem(s) in {verdict.records} records"
        )
        raise typer.Exit(1)
    print(f"audit trail intact: {verdict.records} records")


@audit_app.command("tail")
def audit_tail(
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many records.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record a line.")] = False,
    path: Annotated[Path | None, typer.Option("--path", help="Default: the data dir's.")] = None,
) -> None:
    """The newest records of the audit trail."""
    records = list(_trail_records(path))[-lines:] if lines > 0 else []
    for r in records:
        if as_json:
            print(escape_controls(json.dumps(r, ensure_ascii=False)))
        else:
            fields = " ".join(f"{k}={v}" for k, v in r.get("fields", {}).items() if v is not None)
            print(
                escape_controls(
                    f"{r.get('seq')}\t{_when(r.get('time'))}\t{r.get('event')}\t{fields}"
                )
            )


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", help="Where to write the copy.")],
    operator: OperatorOpt = None,
    code: CodeOpt = None,
) -> None:
    """Copy the whole audit trail (and its checkpoints) out; needs an operator's code."""
    admin_ops = _open_admin()
    try:
        admin_ops.authorize_export(*_credentials(admin_ops, operator, code))
        if out.exists():
            raise ValueError(f"{out} exists; choose a new file")
        # a PostgreSQL trail's records come out as the file's lines: `verify --path` reads them
        exported = admin_ops.trail.export()
    except OtpError as exc:
        raise _fail(exc) from None
    finally:
        admin_ops.close()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as copy:
        copy.write(exported)
    print(f"exported {sum(1 for _ in read_trail(out))} records to {out}")


def _when(stamp: object) -> str:
    if not isinstance(stamp, int | float):
        return "?"
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


# the same key commands under `milliwatt admin keys ...`, beside the operators' own
admin_app.add_typer(keys_app, name="keys")
