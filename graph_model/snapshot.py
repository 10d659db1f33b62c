"""Read a snapshot directory into index arrays (TF-free: pyarrow + numpy only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ENTITY_TABLES = ("regions", "causes", "donors", "nonprofits")
LINK_TABLES = ("donor_causes", "nonprofit_causes", "donations")


@dataclass(frozen=True)
class Donations:
    """Donations as parallel arrays of node indices, amounts and epoch seconds."""

    donor: np.ndarray
    nonprofit: np.ndarray
    amount: np.ndarray
    ts: np.ndarray

    def __len__(self) -> int:
        return len(self.donor)

    def select(self, mask: np.ndarray) -> Donations:
        return Donations(self.donor[mask], self.nonprofit[mask], self.amount[mask], self.ts[mask])


@dataclass(frozen=True)
class Snapshot:
    """A snapshot with every id replaced by its position in the sorted ids of its table."""

    hash: str
    donor_ids: list[str]
    nonprofit_ids: list[str]
    cause_ids: list[str]
    region_ids: list[str]
    region_latlon: np.ndarray  # (regions, 2) degrees
    donor_region: np.ndarray  # region index per donor
    nonprofit_region: np.ndarray  # region index per nonprofit
    donor_causes: np.ndarray  # (edges, 2): donor index, cause index
    nonprofit_causes: np.ndarray  # (edges, 2): nonprofit index, cause index
    donations: Donations


def _index(values: pa.ChunkedArray, entities: pa.Table, what: str) -> np.ndarray:
    index = pc.index_in(values, value_set=entities["id"].combine_chunks())
    if index.null_count:
        raise ValueError(f"{what} references an id that is not in its table")
    return index.to_numpy(zero_copy_only=False).astype(np.int64)


def _pairs(left: pa.ChunkedArray, left_table: pa.Table, right: pa.ChunkedArray,
           right_table: pa.Table, what: str) -> np.ndarray:  # fmt: skip
    return np.stack(
        [_index(left, left_table, what), _index(right, right_table, what)], axis=1
    ).reshape(-1, 2)


def read_snapshot(snapshot_dir: Path) -> Snapshot:
    """Load `<snapshot_dir>/<table>.parquet` and `snapshot.json` as index arrays."""
    # Sorted by id so that node indices do not depend on the row order the ETL wrote.
    entity = {name: pq.read_table(snapshot_dir / f"{name}.parquet").sort_by("id")
              for name in ENTITY_TABLES}  # fmt: skip
    for name, table in entity.items():
        if len(pc.unique(table["id"])) != table.num_rows:
            raise ValueError(f"duplicate ids in {name}")
    link = {name: pq.read_table(snapshot_dir / f"{name}.parquet") for name in LINK_TABLES}
    regions, causes = entity["regions"], entity["causes"]
    donors, nonprofits = entity["donors"], entity["nonprofits"]
    donations = link["donations"]
    return Snapshot(
        hash=json.loads((snapshot_dir / "snapshot.json").read_text())["hash"],
        donor_ids=donors["id"].to_pylist(),
        nonprofit_ids=nonprofits["id"].to_pylist(),
        cause_ids=causes["id"].to_pylist(),
        region_ids=regions["id"].to_pylist(),
        region_latlon=np.stack(
            [regions["lat"].to_numpy(), regions["lon"].to_numpy()], axis=1
        ).astype(np.float64),
        donor_region=_index(donors["region_id"], regions, "donors.region_id"),
        nonprofit_region=_index(nonprofits["region_id"], regions, "nonprofits.region_id"),
        donor_causes=_pairs(
            link["donor_causes"]["donor_id"], donors,
            link["donor_causes"]["cause_id"], causes, "donor_causes",
        ),  # fmt: skip
        nonprofit_causes=_pairs(
            link["nonprofit_causes"]["nonprofit_id"], nonprofits,
            link["nonprofit_causes"]["cause_id"], causes, "nonprofit_causes",
        ),  # fmt: skip
        donations=Donations(
            donor=_index(donations["donor_id"], donors, "donations.donor_id"),
            nonprofit=_index(donations["nonprofit_id"], nonprofits, "donations.nonprofit_id"),
            amount=donations["amount"].to_numpy().astype(np.float64),
            ts=donations["ts"].to_numpy().astype(np.int64),
        ),
    )
