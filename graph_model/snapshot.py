"""Read a snapshot directory into index arrays (TF-free: pyarrow + numpy only).

Every graph the schema allows reads: donors and nonprofits without a region or causes,
nonprofits without donations, one region, one cause. What the schema does not allow (an unknown
or missing reference, a repeated id) raises `SnapshotError` naming the table, the column, how
many rows and an example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Donations:
    """Donations as parallel arrays: donor index, nonprofit index, epoch seconds."""

    donor: np.ndarray
    nonprofit: np.ndarray
    ts: np.ndarray

    def __len__(self) -> int:
        return len(self.donor)

    def select(self, mask: np.ndarray) -> Donations:
        return Donations(self.donor[mask], self.nonprofit[mask], self.ts[mask])


@dataclass(frozen=True)
class Snapshot:
    """A snapshot with every id replaced by its position in the sorted ids of its table."""

    hash: str
    donor_ids: list[str]
    nonprofit_ids: list[str]
    cause_ids: list[str]
    region_ids: list[str]
    donor_region: np.ndarray  # region index per donor; NO_REGION (-1) for none
    nonprofit_region: np.ndarray  # region index per nonprofit; NO_REGION (-1) for none
    donor_causes: np.ndarray  # (edges, 2): donor index, cause index
    nonprofit_causes: np.ndarray  # (edges, 2): nonprofit index, cause index
    donations: Donations


class SnapshotError(ValueError):
    """A snapshot that is not a graph the schema allows: names the table, the column, how many
    rows and an example."""


NO_REGION = -1  # region index of a donor or nonprofit without a region (the schema allows it)


def _example(values: pa.ChunkedArray | pa.Array, mask: pa.Array | np.ndarray) -> str:
    picked = pc.filter(values, pa.array(np.asarray(mask, dtype=bool)))
    return repr(picked[0].as_py()) if len(picked) else "?"


def _index(table: pa.Table, name: str, column: str, ids: pa.Array, target: str,
           *, nullable: bool = False) -> np.ndarray:
    """Positions of `table[column]`'s ids in `ids` (the sorted ids of `target`); a null stays
    NO_REGION when the column is `nullable`, else it is an error, as is an unknown id."""
    values = table[column]
    index = pc.index_in(values, value_set=ids)
    if index.null_count:
        missing = pc.is_null(values).to_numpy(zero_copy_only=False)
        unknown = pc.is_null(index).to_numpy(zero_copy_only=False) & ~missing
        key = "id" if "id" in table.column_names else table.column_names[0]
        if unknown.any():
            raise SnapshotError(
                f"{name}.{column}: {int(unknown.sum())} of {table.num_rows} rows name a {target} "
                f"that is not in {target}s.parquet (e.g. {_example(values, unknown)} in the "
                f"row with {key} {_example(table[key], unknown)})"
            )
        if missing.any() and not nullable:
            raise SnapshotError(
                f"{name}.{column}: {int(missing.sum())} of {table.num_rows} rows have no "
                f"{target} (e.g. the row with {key} {_example(table[key], missing)})"
            )
    return pc.fill_null(index, NO_REGION).to_numpy(zero_copy_only=False).astype(np.int64)


def read_snapshot(snapshot_dir: Path) -> Snapshot:
    """Load `<snapshot_dir>/<table>.parquet` and `snapshot.json` as index arrays."""

    def read(name: str) -> pa.Table:
        return pq.read_table(snapshot_dir / f"{name}.parquet")

    # Sorted by id so that node indices do not depend on the row order the ETL wrote.
    donors, nonprofits = read("donors").sort_by("id"), read("nonprofits").sort_by("id")
    ids = {
        "region": read("regions")["id"].combine_chunks().sort(),
        "cause": read("causes")["id"].combine_chunks().sort(),
        "donor": donors["id"].combine_chunks(),
        "nonprofit": nonprofits["id"].combine_chunks(),
    }
    for name, values in ids.items():
        if values.null_count:
            raise SnapshotError(f"{name}s.id: {values.null_count} of {len(values)} rows have "
                                f"no id")
        if len(pc.unique(values)) != len(values):
            counts = pc.value_counts(values)
            repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
            raise SnapshotError(f"{name}s.id: {len(repeated)} ids occur more than once among "
                                f"{len(values)} rows (e.g. {repeated[0].as_py()!r})")

    def pairs(table: str, owner: str) -> np.ndarray:
        links = read(table)
        return np.stack(
            [
                _index(links, table, f"{owner}_id", ids[owner], owner),
                _index(links, table, "cause_id", ids["cause"], "cause"),
            ],
            axis=1,
        ).reshape(-1, 2)

    donations = read("donations")
    if donations["ts"].null_count:
        missing = pc.is_null(donations["ts"]).to_numpy(zero_copy_only=False)
        raise SnapshotError(f"donations.ts: {int(missing.sum())} of {donations.num_rows} rows "
                            f"have no timestamp (e.g. donation "
                            f"{_example(donations['id'], missing)})")
    return Snapshot(
        hash=json.loads((snapshot_dir / "snapshot.json").read_text())["hash"],
        donor_ids=ids["donor"].to_pylist(),
        nonprofit_ids=ids["nonprofit"].to_pylist(),
        cause_ids=ids["cause"].to_pylist(),
        region_ids=ids["region"].to_pylist(),
        donor_region=_index(donors, "donors", "region_id", ids["region"], "region",
                            nullable=True),
        nonprofit_region=_index(nonprofits, "nonprofits", "region_id", ids["region"], "region",
                                nullable=True),
        donor_causes=pairs("donor_causes", "donor"),
        nonprofit_causes=pairs("nonprofit_causes", "nonprofit"),
        donations=Donations(
            donor=_index(donations, "donations", "donor_id", ids["donor"], "donor"),
            nonprofit=_index(donations, "donations", "nonprofit_id", ids["nonprofit"],
                             "nonprofit"),
            ts=donations["ts"].to_numpy().astype(np.int64),
        ),
    )
