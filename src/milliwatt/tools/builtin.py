"""The tools milliwatt ships, in one registry. An agent's `tools` patterns pick from it."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from milliwatt.tools import (
    arithmetic,
    code,
    dates,
    email,
    files,
    graph,
    knowledge,
    scheduling,
    text,
    units,
    web,
)
from milliwatt.tools.registry import Effect, ToolRegistry

_FAMILIES = (arithmetic, units, dates, text, graph, scheduling, knowledge, web, email, files, code)


def builtin_registry() -> ToolRegistry:
    return ToolRegistry(t for family in _FAMILIES for t in family.TOOLS)


def select_tools(registry: ToolRegistry, patterns: Iterable[str]) -> list[str]:
    """Tool names matching the patterns (`*`, `math.*`, `units.convert`), in registry order.

    A pattern that matches nothing is an error: it is almost always a typo. Tools that run
    code are opt-in: only a pattern naming their family (`code.*`, `code.run`) selects them.
    """
    names = registry.names()
    executes = {t.name for t in registry if Effect.EXECUTES in t.effects}
    chosen: set[str] = set()
    for pattern in patterns:
        matched = fnmatch.filter(names, pattern)
        if pattern.startswith(("*", "?", "[")):
            matched = [n for n in matched if n not in executes]
        if not matched:
            raise ValueError(f"tool pattern {pattern!r} matches no tool; known: {', '.join(names)}")
        chosen.update(matched)
    return [n for n in names if n in chosen]
