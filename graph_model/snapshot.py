"""Read a snapshot directory into index arrays (TF-free: pyarrow + numpy only)."""

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
    donor_region: np.ndarray  # region index per donor
    nonprofit_region: np.ndarray  # region index per nonprofit
    donor_causes: np.ndarray  # (edges, 2): donor index, cause index
    nonprofit_causes: np.ndarray  # (edges, 2): nonprofit index, cause index
    donations: Donations


def _index(values: pa.ChunkedArray, ids: pa.Array, what: str) -> np.ndarray:
    index = pc.index_in(values, value_set=ids)
    if index.null_count:
        raise ValueError(f"{what} references an id that is not in its table")
    return index.to_numpy(zero_copy_only=False).astype(np.int64)


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
        if len(pc.unique(values)) != len(values):
            raise ValueError(f"duplicate {name} ids")

    def pairs(table: str, owner: str) -> np.ndarray:
        links = read(table)
        return np.stack(
            [
                _index(links[f"{owner}_id"], ids[owner], table),
                _index(links["cause_id"], ids["cause"], table),
            ],
            axis=1,
        ).reshape(-1, 2)

    donations = read("donations")
    return Snapshot(
        hash=json.loads((snapshot_dir / "snapshot.json").read_text())["hash"],
        donor_ids=ids["donor"].to_pylist(),
        nonprofit_ids=ids["nonprofit"].to_pylist(),
        cause_ids=ids["cause"].to_pylist(),
        region_ids=ids["region"].to_pylist(),
        donor_region=_index(donors["region_id"], ids["region"], "donors"),
        nonprofit_region=_index(nonprofits["region_id"], ids["region"], "nonprofits"),
        donor_causes=pairs("donor_causes", "donor"),
        nonprofit_causes=pairs("nonprofit_causes", "nonprofit"),
        donations=Donations(
            donor=_index(donations["donor_id"], ids["donor"], "donations"),
            nonprofit=_index(donations["nonprofit_id"], ids["nonprofit"], "donations"),
            ts=donations["ts"].to_numpy().astype(np.int64),
        ),
    )
