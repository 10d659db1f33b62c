"""`donor-match store`: the local graph store (embedded FalkorDB or Neo4j)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from entrypoints.cli.common import console, open_graph
from graph_store import StoreSettings

if TYPE_CHECKING:
    from graph_store.embedded import LocalFalkorDB
    from graph_store.local_neo4j import LocalNeo4j

app = typer.Typer(help="The graph store (embedded FalkorDB or Neo4j).", no_args_is_help=True)


def local_store(settings: StoreSettings) -> LocalFalkorDB | LocalNeo4j:
    """The local servers `store start|stop` manage for the configured backend: the product's
    and the analysts'."""
    from graph_store.embedded import LocalFalkorDB
    from graph_store.local_neo4j import LocalNeo4j, Neo4jSetupError

    if settings.backend == "falkordb":
        return LocalFalkorDB(settings)
    try:
        return LocalNeo4j(settings)
    except Neo4jSetupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def start_local_store(settings: StoreSettings) -> None:
    """Start the local servers (idempotent) and say where they run; exit 1 when one cannot."""
    from graph_store.local_neo4j import Neo4jSetupError

    try:
        statuses = local_store(settings).start()
    except (Neo4jSetupError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for status in statuses:
        console.print(f"{status.name} running on 127.0.0.1:{status.port} (pid {status.pid}), "
                      f"data in {status.data_dir}")


@app.command("start")
def store_start() -> None:
    """Start the local store on 127.0.0.1 (data under DONOR_MATCH_DATA_DIR): the embedded
    FalkorDB and the analysts' FalkorDB, or with DONOR_MATCH_STORE=neo4j the Neo4j server and the
    analysts' Neo4j server."""
    start_local_store(StoreSettings())


@app.command("stop")
def store_stop() -> None:
    """Stop the local store cleanly (FalkorDB flushes its append-only file, Neo4j checkpoints)."""
    settings = StoreSettings()
    local_store(settings).stop()
    console.print(f"{settings.backend} stopped")


@app.command("status")
def store_status() -> None:
    """Say which backend is configured, its version, URI and data directory, and whether it
    answers."""
    settings = StoreSettings()
    with open_graph(settings) as store:
        store.ping()
        console.print(f"{settings.backend} {store.version()} is up at {store.uri}, "
                      f"data in {settings.data_dir.resolve()}")


@app.command("init")
def store_init() -> None:
    """Create the constraints and indexes of neo4j/schema.cypher (idempotent)."""
    with open_graph() as store:
        store.apply_schema()
        console.print(f"schema applied to {store.uri}")
