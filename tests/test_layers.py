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
    # storage: the database connections below memory, knowledge and the audit trail
    "storage": {"gateway", "agent", "models", "tools", "memory", "knowledge", "evals", "access"},
    # edge: geography, placement, the front door and the lab; it reaches PoPs over HTTP only
    "edge": {"gateway", "agent", "models", "tools", "memory", "knowledge", "evals", "access"},
    # cluster: the top layer beside cli, it deploys the gateway on Ray Serve
    "cluster": {"evals"},
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


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_name(path: Path) -> str:
    parts = ["milliwatt", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The milliwatt modules a module imports when it loads: its top-level statements only
    (imports inside functions run later), `if TYPE_CHECKING:` blocks left out (never run).
    `from P import x` needs P itself (its __init__ runs), and P.x as well when x is a module."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    pending: list[ast.stmt] = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If):
            pending.extend(node.orelse if _is_type_checking(node.test) else node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            pending.extend(s for h in node.handlers for s in h.body)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base in modules:
                found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules)
    return found


def import_cycles() -> list[list[str]]:
    """Every cycle of module-level imports among milliwatt's modules, one path per cycle."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: module_imports(path, name, set(paths)) for name, path in paths.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_no_import_cycles_within_any_package() -> None:
    """A module never needs, while it loads, a module that needs it back (imports under
    `if TYPE_CHECKING:` are left out: they never run)."""
    assert [" -> ".join(cycle) for cycle in import_cycles()] == []


def test_cycle_check_sees_a_package_imported_by_its_own_module(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import f\n")
    (pkg / "a.py").write_text("from pkg import b\nif TYPE_CHECKING:\n    import pkg.c\n")
    (pkg / "b.py").write_text("def f() -> None:\n    import pkg.a\n")
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    assert module_imports(pkg / "a.py", "pkg.a", modules) == {"pkg", "pkg.b"}
    assert module_imports(pkg / "b.py", "pkg.b", modules) == set()
    assert module_imports(pkg / "__init__.py", "pkg", modules) == {"pkg.a"}


def test_the_error_hierarchy_is_a_leaf() -> None:
    """Every layer raises milliwatt.errors' types, so it may import nothing of milliwatt."""
    assert imported_packages(SRC / "errors.py") == set()
