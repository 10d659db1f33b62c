"""Training snapshots: the canonical tables as Parquet files in a content-addressed directory.

`snapshot.json` records the content hash; two snapshots of an unchanged graph hash the same, so
a model can name exactly the data it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.tables import TABLE_ORDER, TABLE_SCHEMAS, Tables
from graph_store import GraphStore, statement

PAGE_SIZE = 10_000
MANIFEST = "snapshot.json"


def content_hash(tables: Mapping[str, pa.Table]) -> str:
    """SHA-256 of the tables' names, schemas and values, independent of file encoding."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        table = tables[name].combine_chunks()
        digest.update(name.encode())
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        # The buffer itself, not a bytes copy of it (10M donations: ~1 GB).
        digest.update(sink.getvalue())
    return digest.hexdigest()


def write_snapshot(tables: Mapping[str, pa.Table], directory: Path) -> str:
    """Write `tables` as Parquet plus `snapshot.json` into `directory`; return the content hash."""
    directory.mkdir(parents=True, exist_ok=True)
    snapshot_hash = content_hash(tables)
    for name, table in tables.items():
        pq.write_table(table, directory / f"{name}.parquet")
    manifest = {
        "hash": snapshot_hash,
        "counts": {name: table.num_rows for name, table in sorted(tables.items())},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return snapshot_hash


def read_tables(directory: Path) -> Tables:
    """Read whichever canonical tables `directory` holds, checked against their schemas."""
    tables: Tables = {}
    for name in TABLE_ORDER:
        path = directory / f"{name}.parquet"
        if path.is_file():
            table = pq.read_table(path)
            expected = TABLE_SCHEMAS[name]
            if not table.schema.equals(expected):
                raise ValueError(
                    f"{path}: columns {table.schema.names} do not match {expected.names}"
                )
            tables[name] = table
    if not tables:
        raise ValueError(f"{directory} holds none of {[f'{n}.parquet' for n in TABLE_ORDER]}")
    return tables


# The order of each exported table (the content hash covers row order).
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "regions": ("id",),
    "causes": ("id",),
    "donors": ("id",),
    "nonprofits": ("id",),
    "donor_causes": ("donor_id", "cause_id"),
    "nonprofit_causes": ("nonprofit_id", "cause_id"),
    "donations": ("id",),
}
# Relationship tables are read per page of the node table whose ids they start from.
EDGE_SOURCES: dict[str, str] = {
    "donor_causes": "donors",
    "nonprofit_causes": "nonprofits",
    "donations": "donors",
}


def export_tables(store: GraphStore, page_size: int = PAGE_SIZE) -> Tables:
    """Read every canonical table out of the graph, each sorted by its `SORT_KEYS`.

    Node tables page by key: the next `page_size` nodes after the last id read (`WHERE x.id >
    $after ... ORDER BY x.id LIMIT`), which the unique-id index serves on both stores, where
    `SKIP` re-sorted the whole table for every page (quadratic) and shifted under concurrent
    writes (a row read twice or never). Relationship tables are read for `page_size` exported
    source nodes at a time, each looked up by its id, with no ordering in the store; so a
    relationship whose source node was not exported is not exported either. Python sorts each
    table, so the store's order never reaches the hash.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    tables: Tables = {}
    for name in TABLE_ORDER:
        export = statement(f"snapshot/{name}")
        schema = TABLE_SCHEMAS[name]
        pages: list[pa.Table] = []
        if name in EDGE_SOURCES:
            ids = tables[EDGE_SOURCES[name]].column("id")
            for start in range(0, len(ids), page_size):
                page = ids.slice(start, page_size).to_pylist()
                pages.append(pa.Table.from_pylist(store.read(export, {"ids": page}), schema))
        else:
            after = ""  # ids are non-empty text (etl.entities), so every id sorts after it
            while True:
                rows = store.read(export, {"after": after, "limit": page_size})
                if rows:
                    pages.append(pa.Table.from_pylist(rows, schema=schema))
                if len(rows) < page_size:
                    break
                after = max(str(row["id"]) for row in rows)
        table = pa.concat_tables(pages) if pages else schema.empty_table()
        tables[name] = table.sort_by([(key, "ascending") for key in SORT_KEYS[name]])
    return tables


def export_snapshot(store: GraphStore, root: Path) -> Path:
    """Export the graph into `root/<hash prefix>/`; an unchanged graph maps to the same dir."""
    tables = export_tables(store)
    target = root / content_hash(tables)[:16]
    if (target / MANIFEST).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves a half snapshot.
    staging = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=root))
    try:
        write_snapshot(tables, staging)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
