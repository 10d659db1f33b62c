"""Synthetic data, idempotent loads and content-hashed snapshots, on a real FalkorDB."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pytest

from etl.loader import load_tables
from etl.snapshot import content_hash, export_snapshot, export_tables, read_tables, write_snapshot
from etl.synth import SynthConfig, generate
from etl.tables import TABLE_SCHEMAS
from graph_store import GraphStore, Statement
from graph_store.port import Row

SMALL = SynthConfig(donors=120, nonprofits=30, causes=6, regions=4, donations=1_500, seed=11)


def test_synth_is_seeded_and_schema_conformant() -> None:
    first, second = generate(SMALL), generate(SMALL)
    assert content_hash(first) == content_hash(second)
    assert content_hash(first) != content_hash(generate(SynthConfig(**{**SMALL.__dict__,
                                                                       "seed": 12})))
    for name, table in first.items():
        assert table.schema.equals(TABLE_SCHEMAS[name]), name
    assert first["donations"].num_rows == SMALL.donations
    assert len(set(first["donations"].column("id").to_pylist())) == SMALL.donations


def test_synth_plants_cause_affinity_and_heavy_tails() -> None:
    tables = generate(SynthConfig(donors=400, nonprofits=60, causes=8, regions=5,
                                  donations=6_000, seed=5))
    interests = {(r["donor_id"], r["cause_id"]) for r in tables["donor_causes"].to_pylist()}
    works_on: dict[str, set[str]] = {}
    for row in tables["nonprofit_causes"].to_pylist():
        works_on.setdefault(row["nonprofit_id"], set()).add(row["cause_id"])
    donations = tables["donations"].to_pylist()
    shared = np.mean([
        any((d["donor_id"], c) in interests for c in works_on[d["nonprofit_id"]])
        for d in donations
    ])
    assert shared > 0.7  # most gifts go to a cause the donor cares about
    per_donor = np.bincount(
        [int(d["donor_id"].split("-")[1]) for d in donations], minlength=400
    )
    top_decile = np.sort(per_donor)[::-1][:40].sum() / per_donor.sum()
    assert top_decile > 0.25  # the busiest 10% of donors give far more than 10% of gifts
    amounts = np.array([d["amount"] for d in donations])
    assert amounts.min() > 0
    assert np.mean(amounts) > 1.3 * np.median(amounts)  # right-skewed gift sizes


@pytest.mark.parametrize("bad", [{"donors": 0}, {"donations": -1}])
def test_synth_rejects_nonsense_sizes(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SynthConfig(**bad)


def test_loading_twice_leaves_the_graph_unchanged(store: GraphStore) -> None:
    tables = generate(SMALL)
    load_tables(store, tables, batch_size=500)
    once = export_tables(store)
    summary = load_tables(store, tables, batch_size=333)
    twice = export_tables(store)
    assert summary.rows["donations"] == SMALL.donations
    assert all(count == 0 for count in summary.unmatched.values())
    assert content_hash(once) == content_hash(twice)
    # And the graph holds exactly what was loaded, values included.
    for name, table in tables.items():
        exported = twice[name].sort_by([(c, "ascending") for c in table.column_names[:2]])
        expected = table.sort_by([(c, "ascending") for c in table.column_names[:2]])
        assert exported.equals(expected), name


def test_donations_to_unknown_nodes_are_counted_not_written(store: GraphStore) -> None:
    tables = generate(SMALL)
    load_tables(store, {k: v for k, v in tables.items() if k != "donations"})
    stray = pa.Table.from_pylist(
        [{"id": "x1", "donor_id": "donor-000000", "nonprofit_id": "nowhere", "amount": 1.0,
          "ts": 0}],
        schema=TABLE_SCHEMAS["donations"],
    )
    summary = load_tables(store, {"donations": stray})
    assert summary.unmatched["donations"] == 1
    assert export_tables(store)["donations"].num_rows == 0


def test_snapshot_of_an_unchanged_graph_has_the_same_hash(
    store: GraphStore, tmp_path: Path
) -> None:
    load_tables(store, generate(SMALL))
    first = export_snapshot(store, tmp_path / "snapshots")
    second = export_snapshot(store, tmp_path / "snapshots")
    assert first == second
    assert read_tables(first).keys() == TABLE_SCHEMAS.keys()
    manifest_hash = (first / "snapshot.json").read_text()
    assert content_hash(read_tables(first)) in manifest_hash


def test_read_tables_names_the_file_with_wrong_columns(tmp_path: Path) -> None:
    write_snapshot({"causes": pa.table({"id": ["c"], "title": ["x"]})}, tmp_path)
    with pytest.raises(ValueError, match=r"causes\.parquet"):
        read_tables(tmp_path)


class _WritesBetweenPages:
    """The store, with another writer adding a donor whose id sorts first right after the export
    read its first page of donors (as the API may while a snapshot runs)."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self.donor_pages = 0

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        rows = self._store.read(statement, params)
        if statement.name == "snapshot/donors":
            self.donor_pages += 1
            if self.donor_pages == 1:
                newcomer = pa.Table.from_pylist(
                    [{"id": "a-newcomer", "name": "New Donor", "region_id": None}],
                    schema=TABLE_SCHEMAS["donors"],
                )
                load_tables(self._store, {"donors": newcomer})
        return rows


def test_paged_export_reads_every_row_once_and_hashes_the_same(store: GraphStore) -> None:
    tables = generate(SMALL)
    load_tables(store, tables)
    whole = export_tables(store)
    # Pages of 7: every table but the smallest spans several (donors 120, donations 1,500).
    paged = export_tables(store, page_size=7)
    assert content_hash(paged) == content_hash(whole) == content_hash(export_tables(store, 7))
    for name, table in tables.items():
        assert paged[name].num_rows == table.num_rows, name
    assert paged["donations"].column("id").to_pylist() == sorted(
        tables["donations"].column("id").to_pylist()
    )


def test_a_write_between_pages_neither_repeats_nor_drops_a_row(store: GraphStore) -> None:
    tables = generate(SMALL)
    load_tables(store, tables)
    writer = _WritesBetweenPages(store)
    exported = export_tables(cast(GraphStore, writer), page_size=10)
    assert writer.donor_pages > 2
    ids = exported["donors"].column("id").to_pylist()
    # An offset (SKIP) would read the tenth donor again: the newcomer shifted it onto page 2.
    assert len(ids) == len(set(ids))
    assert set(tables["donors"].column("id").to_pylist()) <= set(ids)
    assert ids == sorted(ids)
    # Every donation of an exported donor, and only those.
    exported_donors = set(ids)
    assert set(exported["donations"].column("donor_id").to_pylist()) <= exported_donors
    assert exported["donations"].num_rows == tables["donations"].num_rows


def test_page_size_must_be_positive(store: GraphStore) -> None:
    with pytest.raises(ValueError, match="page_size"):
        export_tables(store, page_size=0)
