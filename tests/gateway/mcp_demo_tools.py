"""A small typed tool set served by `milliwatt mcp serve --tools <this file>:registry` in tests."""

from __future__ import annotations

from pydantic import BaseModel

from milliwatt.tools.registry import Effect, ToolContext, ToolError, ToolRegistry, tool


class Point(BaseModel):
    x: float
    y: float


@tool(effects=[Effect.PURE])
def distance(a: Point, b: Point, scale: float = 1.0) -> float:
    """Euclidean distance between two points, times a scale."""
    return scale * ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5


@tool(effects=[Effect.WRITES])
def countdown(start: int, context: ToolContext) -> str:
    """Count down from start to zero; says who asked."""
    if start < 0:
        raise ToolError("start must not be negative")
    return f"{context.user}: " + " ".join(str(n) for n in range(start, -1, -1))


def registry() -> ToolRegistry:
    return ToolRegistry([distance, countdown])
