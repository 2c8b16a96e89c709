"""Routes over the user's loaded graph: "shortest path from A to D".

Answers only when the user has loaded a graph and both places are nodes of it; otherwise
("distance from Paris to London" with no graph) the request goes to the model.
"""

from __future__ import annotations

import re
from typing import Any

from milliwatt.agent.resolvers.common import Match, Request, plain_number
from milliwatt.tools.graph import find_node, load_graph
from milliwatt.tools.registry import ToolContext

_NODE = r"[\w .'&-]{1,80}?"
_KIND = r"(?:(?:the )?(?:node|city|station|stop|town|place) )?"
A = rf"{_KIND}(?P<a>{_NODE})"
B = rf"{_KIND}(?P<b>{_NODE})"
_WHERE = r"(?: in my graph| on my graph| in the graph| on the map)?"
_PATTERNS = [
    re.compile(
        rf"^(?:what(?:'s| is) |find |show me |give me |compute |tell me )?(?:the )?"
        rf"(?:shortest|quickest|fastest|cheapest|best) (?:path|route|way|distance|road)"
        rf"(?: length)?(?: to get| to go)? (?:from|between) {A} (?:to|and) {B}{_WHERE}$",
        re.I,
    ),
    re.compile(rf"^how (?:far|long) is it (?:from )?{A} to {B}{_WHERE}$", re.I),
    re.compile(rf"^how far is {B} from {A}{_WHERE}$", re.I),
    re.compile(
        rf"^(?:what(?:'s| is) )?(?:the )?(?:shortest )?distance (?:from|between) {A} "
        rf"(?:to|and) {B}{_WHERE}$",
        re.I,
    ),
    re.compile(rf"^how (?:do|can|should) i (?:get|go|travel) from {A} to {B}{_WHERE}$", re.I),
]


class GraphResolver:
    tools = frozenset({"graph.shortest_path"})

    def match(self, request: Request, context: ToolContext) -> Match | None:
        for pattern in _PATTERNS:
            m = pattern.fullmatch(request.plain)
            if m is None:
                continue
            graph = load_graph(context)
            if graph is None:
                return None
            a, b = find_node(graph, m.group("a")), find_node(graph, m.group("b"))
            if a is None or b is None:
                return None
            return Match("graph.shortest_path", {"source": a, "target": b}, _say)
        return None


def _say(value: dict[str, Any]) -> str:
    route = " -> ".join(str(n) for n in value["path"])
    hops = value["hops"]
    return (
        f"Shortest path: {route} (distance {plain_number(value['distance'])}, "
        f"{hops} hop{'s' if hops != 1 else ''})."
    )
