"""graph.load and graph.shortest_path over real SQLite files, per user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milliwatt.tools.graph import load, shortest_path
from milliwatt.tools.registry import ToolContext


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ToolContext:
    monkeypatch.chdir(tmp_path)  # the tool reads files in the working or data directory
    return ToolContext(user="ada", data_dir=tmp_path / "data")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def route(context: ToolContext, a: str, b: str, name: str = "default") -> dict[str, object]:
    outcome = shortest_path.call({"source": a, "target": b, "name": name}, context)
    assert outcome.ok, outcome.error
    return outcome.value


def test_csv_with_header_and_weights(tmp_path: Path, context: ToolContext) -> None:
    path = write(tmp_path, "g.csv", "source,target,weight\nA,B,4\nA,C,1\nC,B,2\nB,D,5\n")
    summary = load.call({"path": path}, context).value
    assert summary == {"name": "default", "nodes": 4, "edges": 4, "directed": False}
    found = route(context, "A", "D")
    assert found["path"] == ["A", "C", "B", "D"]
    assert found["distance"] == 8
    assert found["hops"] == 3
    # undirected: the way back is as short
    assert route(context, "D", "A")["distance"] == 8


def test_json_forms_and_case_insensitive_names(tmp_path: Path, context: ToolContext) -> None:
    objects = {
        "edges": [
            {"source": "Oslo", "target": "Berlin", "weight": 8.5},
            {"source": "Berlin", "target": "Rome", "weight": 11},
        ]
    }
    load.call({"path": write(tmp_path, "g.json", json.dumps(objects))}, context)
    assert route(context, "oslo", "ROME")["distance"] == 19.5
    pairs = [["x", "y", 2], ["y", "z"]]
    load.call({"path": write(tmp_path, "p.json", json.dumps(pairs)), "name": "p"}, context)
    assert route(context, "x", "z", "p")["distance"] == 3


def test_directed_graph_and_unreachable(tmp_path: Path, context: ToolContext) -> None:
    edges = [{"source": "a", "target": "b", "weight": 1}, {"source": "c", "target": "d"}]
    load.call({"edges": edges, "directed": True}, context)
    assert route(context, "a", "b")["distance"] == 1
    assert "no path from b to a" in (
        shortest_path.call({"source": "b", "target": "a"}, context).error or ""
    )
    assert "no path" in (shortest_path.call({"source": "a", "target": "d"}, context).error or "")


def test_parallel_edges_keep_the_lightest(context: ToolContext) -> None:
    load.call(
        {
            "edges": [
                {"source": "a", "target": "b", "weight": 9},
                {"source": "a", "target": "b", "weight": 2},
            ]
        },
        context,
    )
    assert route(context, "a", "b")["distance"] == 2


def test_graphs_persist_and_belong_to_their_user(tmp_path: Path, context: ToolContext) -> None:
    load.call({"edges": [{"source": "a", "target": "b", "weight": 3}]}, context)
    again = ToolContext(user="ada", data_dir=tmp_path / "data")  # a fresh process would see this
    assert route(again, "a", "b")["distance"] == 3
    other = ToolContext(user="bob", data_dir=tmp_path / "data")
    assert "no graph named 'default'" in (
        shortest_path.call({"source": "a", "target": "b"}, other).error or ""
    )


def test_failed_load_keeps_the_previous_graph(tmp_path: Path, context: ToolContext) -> None:
    load.call({"edges": [{"source": "a", "target": "b", "weight": 3}]}, context)
    bad = load.call({"edges": [{"source": "a", "target": "b", "weight": -1}]}, context)
    assert "weights must be finite and >= 0" in (bad.error or "")
    assert route(context, "a", "b")["distance"] == 3


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("g.csv", "a,b,1\nc,d,x\n", "line 2"),
        ("g.csv", "a,b,1,2\n", "expected source,target[,weight]"),
        ("g.csv", "", "no edges"),
        ("g.json", "{", "invalid JSON"),
        ("g.json", '{"nodes": []}', "must be a list"),
        ("g.json", '[["a"]]', "edge 0"),
        ("g.json", '[{"source": "a", "target": "b", "weight": "heavy"}]', "edge 0"),
        ("g.txt", "a,b,inf\n", "finite"),
        ("g.xml", "<a/>", "use a .csv, .tsv or .json"),
    ],
)
def test_bad_files(tmp_path: Path, context: ToolContext, name: str, text: str, reason: str) -> None:
    outcome = load.call({"path": write(tmp_path, name, text)}, context)
    assert reason in (outcome.error or ""), outcome.error


def test_bad_arguments(tmp_path: Path, context: ToolContext) -> None:
    assert "either path or edges" in (load.call({}, context).error or "")
    assert "is not a file" in (load.call({"path": str(tmp_path)}, context).error or "")
    assert "cannot read" in (
        load.call({"path": write(tmp_path, "b.csv", "") and str(_binary(tmp_path))}, context).error
        or ""
    )
    load.call({"edges": [{"source": "a", "target": "b"}]}, context)
    missing = shortest_path.call({"source": "a", "target": "zzz"}, context)
    assert "not in graph 'default': 'zzz'" in (missing.error or "")


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00bad")
    return path


def test_files_outside_the_working_and_data_directories_are_refused(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, context: ToolContext
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "secret.csv"
    elsewhere.write_text("root,x,0\n")
    (tmp_path / "link.csv").symlink_to(elsewhere)
    for path in (str(elsewhere), str(tmp_path / "link.csv"), "../../../etc/hostname", "~/x.csv"):
        outcome = load.call({"path": path}, context)
        assert "only files in the working or data directory" in (outcome.error or ""), path
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "mine.csv").write_text("a,b,2\n")
    assert load.call({"path": str(tmp_path / "data" / "mine.csv")}, context).ok
    assert load.call({"path": "data/mine.csv"}, context).ok
