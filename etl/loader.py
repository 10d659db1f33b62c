"""Write canonical tables into the graph with batched, parameterised `UNWIND ... MERGE`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from etl.tables import TABLE_ORDER
from graph_store import GraphStore, statement

DEFAULT_BATCH_SIZE = 2_000

Progress = Callable[[str, int], None]  # (table, rows just written)


@dataclass
class LoadSummary:
    rows: dict[str, int] = field(default_factory=dict)
    # Rows that matched no existing endpoint (e.g. a donation to an unknown nonprofit).
    unmatched: dict[str, int] = field(default_factory=dict)


def load_tables(
    store: GraphStore,
    tables: Mapping[str, pa.Table],
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> LoadSummary:
    """MERGE every table into the store, nodes first; loading the same tables twice is a no-op."""
    unknown = set(tables) - set(TABLE_ORDER)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; expected some of {TABLE_ORDER}")
    summary = LoadSummary()
    for name in TABLE_ORDER:
        if name not in tables:
            continue
        merge = statement(f"etl/merge_{name}")
        rows = written = 0
        for batch in tables[name].to_batches(max_chunksize=batch_size):
            result = store.write(merge, {"rows": batch.to_pylist()})
            rows += batch.num_rows
            written += int(result[0]["written"]) if result else 0
            if progress:
                progress(name, batch.num_rows)
        summary.rows[name] = rows
        summary.unmatched[name] = rows - written
    return summary
