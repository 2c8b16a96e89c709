"""Graph tools: load a user's weighted graph (CSV or JSON edges), then find shortest paths.

Each user's graphs live in SQLite under the tool context's data directory and survive restarts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel, Field

from milliwatt.tools.registry import Effect, Tool, ToolContext, ToolError, tool

MAX_FILE_BYTES = 50 << 20
MAX_EDGES = 1_000_000
MAX_NAME_CHARS = 200
DATABASE = "graphs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS graphs (
    user TEXT NOT NULL, name TEXT NOT NULL, directed INTEGER NOT NULL,
    PRIMARY KEY (user, name));
CREATE TABLE IF NOT EXISTS edges (
    user TEXT NOT NULL, graph TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
    weight REAL NOT NULL);
CREATE INDEX IF NOT EXISTS edges_by_graph ON edges (user, graph);
"""


class Edge(BaseModel):
    source: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    target: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    weight: float = 1.0


class GraphError(ValueError):
    """The edges could not be read, or the graph or a node does not exist."""


def _connect(context: ToolContext) -> sqlite3.Connection:
    context.data_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(context.data_dir / DATABASE, timeout=10, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_SCHEMA)
    return db


def read_edges(path: Path) -> list[Edge]:
    """Edges from a .csv (source,target[,weight], header optional) or .json file."""
    if not path.is_file():
        raise GraphError(f"{path} is not a file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise GraphError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB")
    text = path.read_text(encoding="utf-8", errors="strict")
    if path.suffix.lower() == ".json":
        return edges_from_json(text)
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return edges_from_csv(text, "\t" if path.suffix.lower() == ".tsv" else ",")
    raise GraphError(f"{path.name}: use a .csv, .tsv or .json file of edges")


def edges_from_csv(text: str, delimiter: str = ",") -> list[Edge]:
    edges = []
    for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and _is_header(cells):
            continue
        if len(cells) not in (2, 3):
            raise GraphError(
                f"line {number}: expected source,target[,weight], got {len(cells)} cells"
            )
        weight = cells[2] if len(cells) == 3 and cells[2] else "1"
        try:
            edges.append(Edge(source=cells[0], target=cells[1], weight=float(weight)))
        except ValueError:
            raise GraphError(
                f"line {number}: a node name is empty or too long, or the weight is not a number"
            ) from None
    return edges


def _is_header(cells: list[str]) -> bool:
    names = [c.lower() for c in cells]
    if names[:2] in (["source", "target"], ["from", "to"], ["src", "dst"], ["node1", "node2"]):
        return True
    try:
        float(cells[2]) if len(cells) == 3 else None
    except ValueError:
        return names[2] in ("weight", "distance", "cost", "length", "w")
    return False


def edges_from_json(text: str) -> list[Edge]:
    """A list of edges, or {"edges": [...]}; each edge [a, b(, w)] or {source, target, weight}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    items = data.get("edges") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise GraphError('JSON edges must be a list or {"edges": [...]}')
    edges = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, list | tuple) and len(item) in (2, 3):
                edges.append(
                    Edge(
                        source=str(item[0]),
                        target=str(item[1]),
                        weight=item[2] if len(item) == 3 else 1.0,
                    )
                )
            elif isinstance(item, dict):
                edges.append(Edge.model_validate(item))
            else:
                raise ValueError
        except ValueError:
            raise GraphError(
                f"edge {index}: expected [source, target, weight] or "
                "{source, target, weight} with a numeric weight"
            ) from None
    return edges


def store_graph(context: ToolContext, name: str, edges: list[Edge], directed: bool) -> None:
    if not edges:
        raise GraphError("the graph has no edges")
    if len(edges) > MAX_EDGES:
        raise GraphError(f"too many edges ({len(edges):,}; limit {MAX_EDGES:,})")
    for edge in edges:
        if not math.isfinite(edge.weight) or edge.weight < 0:
            raise GraphError(f"edge {edge.source}-{edge.target}: weights must be finite and >= 0")
    with closing(_connect(context)) as db:
        # one transaction: a failed load leaves the previous graph as it was
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM edges WHERE user = ? AND graph = ?", (context.user, name))
            db.execute(
                "INSERT OR REPLACE INTO graphs VALUES (?, ?, ?)",
                (context.user, name, int(directed)),
            )
            db.executemany(
                "INSERT INTO edges VALUES (?, ?, ?, ?, ?)",
                ((context.user, name, e.source, e.target, e.weight) for e in edges),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def load_graph(context: ToolContext, name: str = "default") -> nx.Graph[str] | None:
    """The user's graph, or None when it was never loaded."""
    path = context.data_dir / DATABASE
    if not path.is_file():
        return None
    with closing(_connect(context)) as db:
        row = db.execute(
            "SELECT directed FROM graphs WHERE user = ? AND name = ?", (context.user, name)
        ).fetchone()
        if row is None:
            return None
        graph: nx.Graph[str] = nx.DiGraph() if row[0] else nx.Graph()
        for source, target, weight in db.execute(
            "SELECT source, target, weight FROM edges WHERE user = ? AND graph = ?",
            (context.user, name),
        ):
            # parallel edges: the lightest one is the one a shortest path would take
            if not graph.has_edge(source, target) or graph[source][target]["weight"] > weight:
                graph.add_edge(source, target, weight=weight)
    return graph


def find_node(graph: nx.Graph[str], name: str) -> str | None:
    """The node called `name`, matched exactly, else case-insensitively when unambiguous."""
    if name in graph:
        return name
    folded = [n for n in graph.nodes if str(n).casefold() == name.strip().casefold()]
    return folded[0] if len(folded) == 1 else None


def _readable(path: str, context: ToolContext) -> Path:
    """A path the tool may read: inside the working or data directory, after links resolve.

    The path may come from a model that read a hostile document; it must not be a way to pull
    /etc/passwd or ~/.ssh into a graph whose node names are then shown (operators load other
    files with `milliwatt tools load-graph`)."""
    resolved = Path(path).expanduser().resolve()
    roots = (Path.cwd().resolve(), context.data_dir.expanduser().resolve())
    if not any(resolved.is_relative_to(root) for root in roots):
        raise GraphError(f"{path}: only files in the working or data directory can be loaded")
    return resolved


@tool(
    effects={Effect.WRITES},
    name="graph.load",
    examples=["load the graph from routes.csv", "load these edges: A-B 5, B-C 3"],
)
def load(
    context: ToolContext,
    path: str | None = None,
    edges: list[Edge] | None = None,
    name: str = "default",
    directed: bool = False,
) -> dict[str, Any]:
    """Load a weighted graph for this user from a CSV/TSV/JSON file of edges (in the working
    directory or the user's data directory) or a list of edges (source, target, weight >= 0),
    replacing any graph of the same name."""
    if (path is None) == (edges is None):
        raise ToolError("give either path or edges")
    try:
        loaded = read_edges(_readable(path, context)) if path is not None else list(edges or [])
        store_graph(context, name, loaded, directed)
    except (GraphError, UnicodeDecodeError, OSError) as exc:
        raise ToolError(
            str(exc) if isinstance(exc, GraphError) else f"cannot read {path}"
        ) from None
    graph = load_graph(context, name)
    assert graph is not None
    return {
        "name": name,
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "directed": directed,
    }


@tool(
    effects={Effect.READS_UNTRUSTED},  # node names come from a file anyone may have written
    name="graph.shortest_path",
    examples=["shortest route from A to D", "how far is it from Oslo to Rome in my graph"],
)
def shortest_path(
    context: ToolContext, source: str, target: str, name: str = "default"
) -> dict[str, Any]:
    """Find the shortest (least total weight) path between two nodes of the user's loaded
    graph: the nodes along it, its total distance and its number of hops."""
    graph = load_graph(context, name)
    if graph is None:
        raise ToolError(f"no graph named {name!r} is loaded; load one with graph.load")
    a, b = find_node(graph, source), find_node(graph, target)
    if a is None or b is None:
        missing = [n for n, found in ((source, a), (target, b)) if found is None]
        raise ToolError(f"not in graph {name!r}: {', '.join(repr(m[:80]) for m in missing)}")
    try:
        distance, path = nx.single_source_dijkstra(graph, a, b, weight="weight")
    except nx.NetworkXNoPath:
        raise ToolError(f"there is no path from {a} to {b}") from None
    return {"source": a, "target": b, "path": path, "distance": distance, "hops": len(path) - 1}


TOOLS: list[Tool] = [load, shortest_path]
