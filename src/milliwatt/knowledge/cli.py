"""`milliwatt ingest` and `milliwatt knowledge ...`: load documents, search them.

Exit codes: 0 done, 1 a source could not be ingested (nothing was changed), 2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from milliwatt.config import DEFAULT_AGENT, load_settings, private_data_dir
from milliwatt.knowledge.base import KnowledgeBase, UnknownCollectionError
from milliwatt.knowledge.fetch import guarded_fetcher
from milliwatt.knowledge.loaders import LoadError
from milliwatt.knowledge.store import CollectionKey
from milliwatt.shield.egress import EgressPolicy, GuardedClient
from milliwatt.terminal import literal

EXIT_FAILED = 1
EXIT_USAGE = 2

knowledge_app = typer.Typer(
    help="Search and manage ingested documents (see also `milliwatt ingest`).",
    no_args_is_help=True,
)

CollectionOpt = Annotated[
    str, typer.Option("--collection", "-c", help="Collection name within the agent.")
]
AgentOpt = Annotated[str, typer.Option("--agent", help="The agent the collection belongs to.")]
TenantOpt = Annotated[str, typer.Option("--tenant", help="The tenant the agent belongs to.")]

_err = Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    # plain Text: file names may hold [brackets] that rich would read as markup
    _err.print(Text.assemble(("error: ", "red"), message), soft_wrap=True)
    return typer.Exit(code)


def _open() -> KnowledgeBase:
    settings = load_settings()
    data_dir = private_data_dir(Path(settings.data_dir))
    return KnowledgeBase(data_dir, storage_url=settings.storage.url)


def _key(tenant: str, agent: str, collection: str) -> CollectionKey:
    try:
        return CollectionKey(tenant, agent, collection)
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None


def ingest(
    sources: Annotated[
        list[str], typer.Argument(help="Files, folders (searched recursively) or http(s) URLs.")
    ],
    collection: CollectionOpt = "default",
    agent: AgentOpt = DEFAULT_AGENT,
    tenant: TenantOpt = "default",
    allow_network: Annotated[
        list[str] | None,
        typer.Option("--allow-network", help="CIDR a URL may resolve to, e.g. 10.0.0.0/8."),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Drop documents no longer in the named folders.")
    ] = False,
) -> None:
    """Ingest Markdown, text, HTML and PDF documents so that agents can search and cite them.

    Unchanged files are skipped; changed ones replace their earlier version. If any source
    fails, nothing is changed.
    """
    key = _key(tenant, agent, collection)
    try:
        policy = EgressPolicy(allow_networks=tuple(allow_network or ()))
    except ValueError as exc:
        raise _fail(f"--allow-network: {exc}", EXIT_USAGE) from None
    kb = _open()
    columns = (
        TextColumn("[bold]ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=_err, transient=True) as progress:
        task = progress.add_task("", total=None)

        def advance(source: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=Path(source).name)

        try:
            report = kb.ingest(
                sources,
                key,
                fetch_url=guarded_fetcher(GuardedClient(policy)),
                progress=advance,
                prune=prune,
            )
        except (LoadError, ValueError) as exc:
            progress.stop()
            raise _fail(f"{exc}\nnothing was changed in {key}", EXIT_FAILED) from None
        finally:
            kb.close()
    print(
        f"{key}: {len(report.added)} added, {len(report.replaced)} replaced, "
        f"{len(report.unchanged)} unchanged, {len(report.empty)} without text, "
        f"{len(report.pruned)} pruned; "
        f"{report.chunks} chunks in {report.seconds:.1f} s"
    )


@knowledge_app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    collection: Annotated[
        str | None,
        typer.Option("--collection", "-c", help="One collection; default: all of the agent's."),
    ] = None,
    agent: AgentOpt = DEFAULT_AGENT,
    tenant: TenantOpt = "default",
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many passages.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Search ingested documents: BM25 full text and embeddings, fused by rank."""
    kb = _open()
    try:
        if collection is None:
            keys = [c.key for c in kb.collections(tenant, agent)]
            passages = kb.search(query, keys, k) if keys else []
        else:
            passages = kb.search(query, _key(tenant, agent, collection), k)
    except (UnknownCollectionError, ValueError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    finally:
        kb.close()
    if as_json:
        for p in passages:
            row = {"citation": p.citation(), "score": round(p.score, 5)}
            row.update(source=p.source, heading=p.heading, start=p.start, end=p.end, text=p.text)
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    if not passages:
        _err.print("no passages found")
        return
    console = Console()
    for rank, p in enumerate(passages, start=1):
        console.print(literal(f"{rank}. {p.citation()}", "bold"), highlight=False)
        console.print(literal(p.text), highlight=False)
        console.print()


@knowledge_app.command("list")
def list_collections(agent: AgentOpt = DEFAULT_AGENT, tenant: TenantOpt = "default") -> None:
    """List an agent's collections with their document and chunk counts."""
    kb = _open()
    try:
        infos = kb.collections(tenant, agent)
    finally:
        kb.close()
    table = Table("collection", "documents", "chunks")
    for info in infos:
        table.add_row(literal(info.key.name), str(info.documents), str(info.chunks))
    Console().print(table)


@knowledge_app.command()
def drop(
    collection: Annotated[str, typer.Argument(help="The collection to delete.")],
    agent: AgentOpt = DEFAULT_AGENT,
    tenant: TenantOpt = "default",
) -> None:
    """Delete a collection and everything ingested into it."""
    key = _key(tenant, agent, collection)
    kb = _open()
    try:
        kb.drop(key)
    except UnknownCollectionError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    finally:
        kb.close()
    print(f"dropped {key}")
