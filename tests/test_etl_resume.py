"""Idempotent, resumable, traced loads: re-runs change nothing, killed loads resume to exactly
the graph of one clean run, manifests describe each load, lineage moves only on change."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from conftest import fresh_store_settings, store_env, wipe

from etl.export import export_graph
from etl.loader import load_tables
from etl.manifest import sha256_file
from etl.pipeline import LoadOptions, LoadReport, run_load
from etl.snapshot import content_hash, export_tables
from etl.sources import open_source
from etl.synth import SynthConfig, generate
from etl.tables import Tables
from graph_store import GraphStore, StoreSettings, open_store

NOW = 1_735_689_600.0
SMALL = SynthConfig(donors=80, nonprofits=20, causes=6, regions=4, donations=600, seed=5)
KILL_GRAPH = SynthConfig(donors=300, nonprofits=40, causes=6, regions=5, donations=2_000, seed=9)
KILL_BATCH = 20


def write_csv(tables: Tables, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pacsv.write_csv(table, directory / f"{name}.csv")
    return directory


def load(store: GraphStore, path: Path, loads: Path, **options: object) -> LoadReport:
    return run_load(store, open_source("canonical", path),
                    LoadOptions(loads_dir=loads, now=NOW, **options),  # type: ignore[arg-type]
                    path=path)


def test_rerunning_a_load_changes_nothing_lineage_included(
    store: GraphStore, tmp_path: Path
) -> None:
    path = write_csv(generate(SMALL), tmp_path / "in")
    first = load(store, path, tmp_path / "loads")
    once = export_graph(store)
    second = load(store, path, tmp_path / "loads")
    assert first.ok and second.ok
    assert second.load_id == first.load_id
    assert all(e.changed == 0 for e in second.entities.values())
    assert all(e.changed == e.written for e in first.entities.values())
    assert export_graph(store).canonical() == once.canonical()
    # Every node and edge names the load that wrote it.
    stamps = {n["properties"].get("load_id") for n in once.nodes}
    stamps |= {r["properties"].get("load_id") for r in once.relationships}
    assert stamps == {first.load_id}

    manifest = json.loads((tmp_path / "loads" / first.load_id / "manifest.json").read_text())
    assert manifest["load_id"] == first.load_id
    assert manifest["status"] == "complete"
    assert [r["status"] for r in manifest["runs"]] == ["complete", "complete"]
    assert {Path(i["path"]).name: i["sha256"] for i in manifest["inputs"]} == {
        p.name: sha256_file(p) for p in path.iterdir()
    }
    assert manifest["entities"]["donations"]["accepted"] == SMALL.donations
    assert manifest["rejects"] == {"file": "rejects.csv", "count": 0}
    assert manifest["code_version"]["etl"]
    assert manifest["started_at"] <= manifest["ended_at"]


def test_lineage_moves_only_where_a_value_changed(store: GraphStore, tmp_path: Path) -> None:
    tables = generate(SMALL)
    first = load(store, write_csv(tables, tmp_path / "v1"), tmp_path / "loads")
    donors = tables["donors"].to_pylist()
    donors[3]["name"] = "Renamed Donor"
    donors[4]["region_id"] = next(r for r in tables["regions"].column("id").to_pylist()
                                  if r != donors[4]["region_id"])
    gifts = tables["donations"].to_pylist()
    gifts[7]["amount"] += 1.0
    changed = {**tables,
               "donors": pa.Table.from_pylist(donors, schema=tables["donors"].schema),
               "donations": pa.Table.from_pylist(gifts, schema=tables["donations"].schema)}
    second = load(store, write_csv(changed, tmp_path / "v2"), tmp_path / "loads")
    assert second.load_id != first.load_id
    assert {n: e.changed for n, e in second.entities.items() if e.changed} == {
        "donors": 2, "donations": 1,
    }
    graph = export_graph(store)
    moved = {n["properties"]["id"] for n in graph.nodes
             if n["properties"]["load_id"] == second.load_id}
    assert moved == {donors[3]["id"], donors[4]["id"]}
    gift_stamps = {r["properties"]["id"]: r["properties"]["load_id"]
                   for r in graph.relationships if r["type"] == "DONATED"}
    assert [g for g, stamp in gift_stamps.items() if stamp == second.load_id] == [gifts[7]["id"]]
    lives = [r for r in graph.relationships
             if r["type"] == "LIVES_IN" and r["source"] == donors[4]["id"]]
    assert [(r["target"], r["properties"]["load_id"]) for r in lives] == [
        (donors[4]["region_id"], second.load_id)
    ]
    assert content_hash(export_tables(store)) == content_hash(changed)


def test_snapshots_ignore_lineage(store_settings: StoreSettings, tmp_path: Path) -> None:
    """The same content loaded under different load ids snapshots to the same hash."""
    tables = generate(SMALL)
    store = open_store(store_settings)
    try:
        store.apply_schema()
        load(store, write_csv(tables, tmp_path / "in"), tmp_path / "loads")
        first = content_hash(export_tables(store))
        wipe(store)
        load_tables(store, tables, load_id="another-load")
        assert content_hash(export_tables(store)) == first
    finally:
        store.close()


def _cli_load(path: Path) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", "etl", "load", str(path),
            "--batch-size", str(KILL_BATCH), "--json"]


def _kill_when(process: subprocess.Popen[str], reached: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reached():  # type: ignore[operator]
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            return
        if process.poll() is not None:
            pytest.fail(f"the load ended before the kill point: {process.stderr.read()}")  # type: ignore[union-attr]
        time.sleep(0.001)
    process.kill()
    pytest.fail("kill point not reached")


@pytest.fixture(scope="module")
def clean_run(backend: str, request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The input, the graph one uninterrupted CLI run makes of it, and the load id."""
    root = tmp_path_factory.mktemp("kill")
    path = write_csv(generate(KILL_GRAPH), root / "in")
    settings = fresh_store_settings(backend, request, root / "var")
    done = subprocess.run(_cli_load(path), env=store_env(settings),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    store = open_store(settings)
    try:
        exported = export_graph(store).canonical()
    finally:
        store.close()
    return path, exported, summary["load_id"]


@pytest.mark.parametrize(("entity", "batches"), [
    ("start", 0), ("donors", 2), ("donations", 3), ("donations", 60),
])
def test_a_killed_load_resumes_to_exactly_the_clean_graph(
    clean_run: tuple[Path, str, str], store_settings: StoreSettings, tmp_path: Path,
    entity: str, batches: int,
) -> None:
    path, clean_export, load_id = clean_run
    env = store_env(store_settings)
    load_dir = tmp_path / "var" / "loads" / load_id

    def reached() -> bool:
        if entity == "start":
            return (load_dir / "manifest.json").is_file()
        try:
            done = json.loads((load_dir / "checkpoint.json").read_text())["done"]
        except (OSError, ValueError, KeyError):
            return False
        return done.get(entity, 0) >= batches

    process = subprocess.Popen(_cli_load(path), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _kill_when(process, reached)
    assert process.returncode == -signal.SIGKILL

    rerun = subprocess.run(_cli_load(path), env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["load_id"] == load_id
    if entity != "start":
        assert summary["resumed_batches"] >= batches
    assert summary["entities"]["donations"]["accepted"] == KILL_GRAPH.donations
    store = open_store(store_settings)
    try:
        assert export_graph(store).canonical() == clean_export
    finally:
        store.close()
    runs = json.loads((load_dir / "manifest.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["running", "complete"]  # the killed run never ended


def test_an_initial_load_stores_what_a_merging_load_stores(
    store: GraphStore, tmp_path: Path
) -> None:
    path = write_csv(generate(SMALL), tmp_path / "in")
    merged = load(store, path, tmp_path / "merge-loads")
    assert merged.ok
    expected = export_graph(store).canonical()
    wipe(store)
    initial = load(store, path, tmp_path / "initial-loads", initial=True)
    assert initial.ok, initial.error
    assert initial.load_id == merged.load_id  # the same files: the same lineage stamps
    assert {n: (e.written, e.changed) for n, e in initial.entities.items()} == {
        n: (e.written, e.changed) for n, e in merged.entities.items()}
    assert export_graph(store).canonical() == expected


def test_an_initial_load_is_refused_on_a_graph_with_nodes(
    store: GraphStore, tmp_path: Path
) -> None:
    path = write_csv(generate(SMALL), tmp_path / "in")
    assert load(store, path, tmp_path / "loads").ok
    before = export_graph(store).canonical()
    refused = load(store, path, tmp_path / "other-loads", initial=True)
    assert (refused.status, refused.failure) == ("failed", "not_empty")
    assert "without --initial" in (refused.error or "")
    assert export_graph(store).canonical() == before


def test_a_killed_initial_load_resumes_by_merging(store: GraphStore, tmp_path: Path) -> None:
    """The batch in flight when a first load died may have landed without its checkpoint:
    creating it again would break the ids' uniqueness, so the resumed load merges."""
    path = write_csv(generate(SMALL), tmp_path / "in")
    loads = tmp_path / "loads"
    first = load(store, path, loads, initial=True, batch_size=100)
    assert first.ok, first.error
    clean = export_graph(store).canonical()
    checkpoint_path = loads / first.load_id / "checkpoint.json"
    checkpoint = json.loads(checkpoint_path.read_text())
    # As if killed after the last donation batch committed, before its checkpoint was written.
    checkpoint["complete"] = False
    checkpoint["done"]["donations"] -= 1
    checkpoint_path.write_text(json.dumps(checkpoint))
    resumed = load(store, path, loads, initial=True, batch_size=100)
    assert resumed.ok, resumed.error
    assert resumed.resumed_batches > 0
    assert any("--initial" in note for note in resumed.notes)
    assert export_graph(store).canonical() == clean
