"""The layers stay one-way (docs/architecture.md): checked on the source, every run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "milliwatt"

# package -> milliwatt packages it must never import
FORBIDDEN = {
    "shield": {"gateway", "agent", "models", "tools", "memory", "knowledge", "evals", "access"},
    "access": {"gateway", "agent", "models", "tools", "memory", "knowledge", "evals"},
    "telemetry": {"gateway", "agent", "models", "tools", "memory", "knowledge", "evals"},
    "models": {"gateway", "agent", "evals"},
    "tools": {"gateway", "agent", "evals"},
    "memory": {"gateway", "agent", "evals"},
    "knowledge": {"gateway", "agent", "evals"},
    "agent": {"gateway", "evals"},
    "gateway": {"evals"},
}


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "milliwatt" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package: str) -> None:
    offences = [
        f"{path.relative_to(SRC)} imports milliwatt.{imported}"
        for path in sorted((SRC / package).rglob("*.py"))
        for imported in imported_packages(path) & FORBIDDEN[package]
    ]
    assert offences == []


def test_relative_imports_are_not_used_to_cross_layers() -> None:
    crossing = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level > 1
    ]
    assert crossing == []


def test_the_error_hierarchy_is_a_leaf() -> None:
    """Every layer raises milliwatt.errors' types, so it may import nothing of milliwatt."""
    assert imported_packages(SRC / "errors.py") == set()
