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
        digest.update(sink.getvalue().to_pybytes())
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


def export_tables(store: GraphStore) -> Tables:
    """Read every canonical table out of the graph, in a deterministic order."""
    tables: Tables = {}
    for name in TABLE_ORDER:
        export = statement(f"snapshot/{name}")
        rows: list[dict[str, object]] = []
        while True:
            page = store.read(export, {"skip": len(rows), "limit": PAGE_SIZE})
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                break
        tables[name] = pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS[name])
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
