"""Write validated canonical rows into the graph: one `UNWIND ... MERGE` statement per batch.

Each statement is atomic in both stores, so a batch is written entirely or not at all. Every
statement stamps `load_id` on what it changes and returns how many rows it wrote and changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from etl.entities import ENTITIES
from graph_store import GraphStore, Statement, statement


@dataclass(frozen=True)
class Written:
    rows: int
    written: int  # rows whose endpoints existed (the rest named unknown nodes)
    changed: int  # rows whose stored values this write created or modified


# Entities a first load into an empty graph writes with CREATE (`etl load --initial`): the
# big ones, each with a unique id the store's constraint guards. The rest always MERGE.
CREATED = frozenset({"donors", "nonprofits", "donations"})


def merge_statement(entity: str) -> Statement:
    return statement(f"etl/merge_{entity}")


def write_statement(entity: str, initial: bool = False) -> Statement:
    return statement(f"etl/create_{entity}") if initial and entity in CREATED \
        else merge_statement(entity)


def graph_is_empty(store: GraphStore) -> bool:
    rows = store.read(statement("etl/graph_is_empty"))
    return bool(rows and rows[0]["empty"])


def complete(entity: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every canonical column (absent optional ones as null), nothing else."""
    columns = ENTITIES[entity].column_names
    return [{c: row.get(c) for c in columns} for row in rows]


def write_batch(
    store: GraphStore, entity: str, rows: Sequence[dict[str, Any]], load_id: str,
    initial: bool = False,
) -> Written:
    if not rows:
        return Written(0, 0, 0)
    result = store.write(write_statement(entity, initial),
                         {"rows": list(rows), "load_id": load_id})
    first = result[0] if result else {}
    return Written(len(rows), int(first.get("written") or 0), int(first.get("changed") or 0))


def existing_ids(store: GraphStore, entity: str, ids: list[str]) -> set[str]:
    """Which of `ids` the store holds as nodes of `entity`."""
    found: set[str] = set()
    for start in range(0, len(ids), 5_000):
        rows = store.read(statement(f"etl/existing_{entity}"), {"ids": ids[start:start + 5_000]})
        found.update(str(row["id"]) for row in rows)
    return found


def donation_endpoints(store: GraphStore, ids: list[str]) -> dict[str, tuple[str, str]]:
    """Stored donations among `ids`: id -> (donor id, nonprofit id)."""
    rows = store.read(statement("etl/donation_endpoints"), {"ids": ids})
    return {str(r["id"]): (str(r["donor_id"]), str(r["nonprofit_id"])) for r in rows}
