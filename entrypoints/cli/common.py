"""What every command group shares: the console, the store for one command, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from graph_store import GraphStore, StoreError, StoreSettings, open_store

# Messages are not wrapped at the terminal's width: a path or id broken across lines cannot be
# copied back.
console = Console(stderr=True, soft_wrap=True)


@contextmanager
def open_graph(settings: StoreSettings | None = None) -> Iterator[GraphStore]:
    """The product store for one command; a store error ends the command with exit 1."""
    store = open_store(settings or StoreSettings())
    try:
        yield store
    except StoreError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        store.close()


def progress_bars() -> Progress:
    return Progress(
        # The ETA: training a large graph takes tens of minutes at a steady rate per step.
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(), console=console,
    )
