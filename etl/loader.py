"""Write canonical tables into the graph with batched, parameterised `UNWIND ... MERGE`.

`load_tables` trusts its tables (synthetic data, snapshots); files from outside go through
`etl.pipeline.run_load`, which validates every row first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from etl.entities import LOAD_ORDER
from etl.snapshot import content_hash
from etl.writer import complete, write_batch
from graph_store import GraphStore

DEFAULT_BATCH_SIZE = 2_000

Progress = Callable[[str, int], None]  # (table, rows just written)


@dataclass
class LoadSummary:
    rows: dict[str, int] = field(default_factory=dict)
    # Rows that matched no existing endpoint (e.g. a donation to an unknown nonprofit).
    unmatched: dict[str, int] = field(default_factory=dict)
    # Rows whose stored values this load created or modified (0 everywhere on a re-run).
    changed: dict[str, int] = field(default_factory=dict)


def tables_load_id(tables: Mapping[str, pa.Table]) -> str:
    """A load id derived from the tables' content: the same tables always get the same id."""
    return "tables-" + content_hash(tables)[:16]


def load_tables(
    store: GraphStore,
    tables: Mapping[str, pa.Table],
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    load_id: str | None = None,
) -> LoadSummary:
    """MERGE every table into the store, nodes first; loading the same tables twice is a no-op."""
    unknown = set(tables) - set(LOAD_ORDER)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; expected some of {LOAD_ORDER}")
    load_id = load_id or tables_load_id(tables)
    summary = LoadSummary()
    for name in LOAD_ORDER:
        if name not in tables:
            continue
        rows = written = changed = 0
        for batch in tables[name].to_batches(max_chunksize=batch_size):
            result = write_batch(store, name, complete(name, batch.to_pylist()), load_id)
            rows += result.rows
            written += result.written
            changed += result.changed
            if progress:
                progress(name, batch.num_rows)
        summary.rows[name] = rows
        summary.unmatched[name] = rows - written
        summary.changed[name] = changed
    return summary
