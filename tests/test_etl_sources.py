"""File loads with validation: canonical CSV/JSON Lines/Parquet, mappings, rejects, bad files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import store_env

from etl.entities import ENTITIES
from etl.export import export_graph
from etl.parse import parse_amount, parse_ein, parse_timestamp
from etl.pipeline import LoadOptions, LoadReport, run_load
from etl.snapshot import content_hash, export_tables
from etl.sources import SourceError, open_source
from etl.synth import SynthConfig, generate
from etl.tables import Tables
from graph_store import GraphStore, StoreSettings

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent
CRM_MAPPING = REPO / "config" / "mappings" / "example_crm.yaml"
NOW = 1_735_689_600.0  # 2025-01-01 UTC: the validation clock of these tests
SMALL = SynthConfig(donors=60, nonprofits=15, causes=5, regions=4, donations=400, seed=21)


def write_canonical(tables: Tables, directory: Path, fmt: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if fmt == "csv":
            pacsv.write_csv(table, directory / f"{name}.csv")
        elif fmt == "jsonl":
            lines = (json.dumps(row) for row in table.to_pylist())
            (directory / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
        else:
            pq.write_table(table, directory / f"{name}.parquet")
    return directory


def load(store: GraphStore, path: Path, tmp_path: Path, fmt: str = "canonical",
         mapping: Path | None = None, **options: object) -> LoadReport:
    source = open_source(fmt, path, mapping)
    opts = LoadOptions(loads_dir=tmp_path / "loads", now=NOW, **options)  # type: ignore[arg-type]
    return run_load(store, source, opts, path=path, mapping=mapping)


def rejects_of(report: LoadReport) -> list[dict[str, str]]:
    assert report.directory is not None
    with (report.directory / "rejects.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_each_canonical_format_loads_exactly_the_tables(
    store: GraphStore, tmp_path: Path, fmt: str
) -> None:
    tables = generate(SMALL)
    report = load(store, write_canonical(tables, tmp_path / fmt, fmt), tmp_path, fmt)
    assert report.ok, report.error
    assert report.rejects == 0
    assert {n: e.accepted for n, e in report.entities.items()} == {
        n: t.num_rows for n, t in tables.items()
    }
    assert content_hash(export_tables(store)) == content_hash(tables)


def test_mapping_file_loads_a_platform_export_and_rejects_bad_rows(
    store: GraphStore, tmp_path: Path
) -> None:
    report = load(store, FIXTURES / "crm", tmp_path, mapping=CRM_MAPPING, max_reject_rate=1.0)
    assert report.ok, report.error
    accepted = {n: (e.accepted, e.rejected) for n, e in report.entities.items()}
    assert accepted == {
        "regions": (2, 0), "causes": (3, 0), "donors": (2, 3), "nonprofits": (2, 0),
        "donor_causes": (2, 1), "nonprofit_causes": (2, 0), "donations": (3, 5),
    }
    found = {(r["entity"], Path(r["file"]).name, int(r["line"]), r["column"]): r["reason"]
             for r in rejects_of(report)}
    assert found[("donors", "crm_supporters.csv", 4, "email")].startswith("not an e-mail")
    assert "not in this load or the store" in found[("donors", "crm_supporters.csv", 5,
                                                      "region_id")]
    assert "unknown value 'x'" in found[("donors", "crm_supporters.csv", 6, "donor_type")]
    assert "was rejected" in found[("donor_causes", "crm_interests.csv", 4, "donor_id")]
    assert "was rejected" in found[("donations", "crm_gifts.csv", 5, "donor_id")]
    assert "Nonprofit id 'C-9'" in found[("donations", "crm_gifts.csv", 6, "nonprofit_id")]
    assert found[("donations", "crm_gifts.csv", 7, "amount")] == "negative amount"
    assert found[("donations", "crm_gifts.csv", 8, "ts")] == "date in the future"
    assert found[("donations", "crm_gifts.csv", 9, "amount")] == "not a finite number"
    assert found[("donations", "crm_gifts.csv", 9, "recurring")].startswith("not a boolean")

    graph = export_graph(store)
    donors = {n["properties"]["id"]: n["properties"] for n in graph.nodes
              if n["labels"] == ["Donor"]}
    assert donors["S-001"]["donor_type"] == "individual"
    assert donors["S-002"]["donor_type"] == "foundation"
    assert donors["S-001"]["name"] == "Maria García"
    gifts = {r["properties"]["id"]: r["properties"] for r in graph.relationships
             if r["type"] == "DONATED"}
    assert gifts["G-1"]["amount"] == 1250.0
    assert gifts["G-1"]["ts"] == 1_703_412_900
    assert gifts["G-2"]["recurring"] is True
    parts = [(r["source"], r["target"]) for r in graph.relationships if r["type"] == "PART_OF"]
    assert parts == [("EDU-LIT", "EDU")]
    nonprofits = {n["properties"]["id"]: n["properties"] for n in graph.nodes
                  if n["labels"] == ["Nonprofit"]}
    assert nonprofits["C-1"]["ein"] == "941234567"


def test_too_many_rejects_fail_and_leave_the_failing_batch_unwritten(
    store: GraphStore, tmp_path: Path
) -> None:
    tables = generate(SMALL)
    rows = tables["donations"].to_pylist()
    for row in rows[200:260]:  # 60 bad rows, all in the third batch of 100
        row["amount"] = -1.0
    tables["donations"] = pa.Table.from_pylist(rows, schema=tables["donations"].schema)
    path = write_canonical(tables, tmp_path / "in", "csv")
    report = load(store, path, tmp_path, batch_size=100, max_reject_rate=0.1,
                  min_rows_for_rate=100)
    # Only donations stop; every other entity loaded in full.
    assert report.status == "partial" and report.failure == "rejects"
    assert "donations: 60 of 300 rows rejected (20.0%)" in (report.error or "")
    stored = export_tables(store)
    written = stored["donations"].column("id").to_pylist()
    assert sorted(written) == sorted(r["id"] for r in rows[:200])  # batches 1-2, not 3
    # Batch 3 (40 good rows) and batch 4 (100): validated, counted, not written.
    assert report.entities["donations"].withheld == 140
    assert report.entities["donations"].stopped is not None
    for name in ("regions", "causes", "donors", "nonprofits", "donor_causes"):
        assert stored[name].num_rows == tables[name].num_rows, name
        assert report.entities[name].stopped is None
    manifest = json.loads((report.directory / "manifest.json").read_text())  # type: ignore[operator]
    assert manifest["status"] == "partial" and manifest["rejects"]["count"] == 60


def test_a_clean_file_within_the_rate_loads_everything_good(
    store: GraphStore, tmp_path: Path
) -> None:
    tables = generate(SMALL)
    rows = tables["donations"].to_pylist()
    rows[5]["amount"] = float("nan")
    tables["donations"] = pa.Table.from_pylist(rows, schema=tables["donations"].schema)
    report = load(store, write_canonical(tables, tmp_path / "in", "parquet"), tmp_path)
    assert report.ok
    assert report.entities["donations"].rejected == 1
    assert export_tables(store)["donations"].num_rows == len(rows) - 1


def _expect_source_error(path: Path, fmt: str, match: str, mapping: Path | None = None) -> None:
    with pytest.raises(SourceError, match=match) as info:
        open_source(fmt, path, mapping).check()
    assert str(path) in str(info.value) or (mapping and str(mapping) in str(info.value))


def test_malformed_files_fail_fast_naming_the_file(tmp_path: Path) -> None:
    good = write_canonical(generate(SMALL), tmp_path / "good", "parquet")

    semicolons = tmp_path / "semi" / "donors.csv"
    semicolons.parent.mkdir()
    semicolons.write_text("id;name;region_id\nd1;Ann;r1\n")
    _expect_source_error(semicolons, "csv", "wrong delimiter.*';'")

    binary = tmp_path / "bin" / "donors.csv"
    binary.parent.mkdir()
    binary.write_bytes(b"PK\x03\x04\x00\x00" + bytes(range(256)) * 50)
    _expect_source_error(binary, "csv", "binary file")

    truncated = tmp_path / "trunc" / "donations.parquet"
    truncated.parent.mkdir()
    data = (good / "donations.parquet").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    _expect_source_error(truncated, "parquet", "not a readable Parquet file")

    unknown = tmp_path / "unknown" / "donors.csv"
    unknown.parent.mkdir()
    unknown.write_text("id,name,favourite_colour\nd1,Ann,blue\n")
    _expect_source_error(unknown, "csv", r"unknown columns \['favourite_colour'\].*--mapping")

    missing = tmp_path / "missing" / "donations.jsonl"
    missing.parent.mkdir()
    missing.write_text('{"id": "g1", "colour": "blue"}\n')
    _expect_source_error(missing, "jsonl", r"unknown columns \['colour'\]")

    empty = tmp_path / "empty" / "causes.csv"
    empty.parent.mkdir()
    empty.write_text("")
    _expect_source_error(empty, "csv", "file is empty")

    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "people.csv").write_text("id,name\n1,x\n")
    _expect_source_error(stray / "people.csv", "canonical", "names no entity")

    required = tmp_path / "required" / "donations.csv"
    required.parent.mkdir()
    required.write_text("id,donor_id,amount,ts\ng1,d1,5,0\n")
    _expect_source_error(required, "csv", r"missing required columns \['nonprofit_id'\]")

    bad_mapping = tmp_path / "mapping.yaml"
    bad_mapping.write_text("entities:\n  donors:\n    columns: {identifier: ID}\n")
    _expect_source_error(good, "canonical", r"unknown columns \['identifier'\]", bad_mapping)


def test_record_level_damage_is_rejected_not_fatal(store: GraphStore, tmp_path: Path) -> None:
    directory = tmp_path / "in"
    directory.mkdir()
    (directory / "regions.csv").write_bytes(
        b"id,name\n"
        b"r1,North\n"
        b'r2,"Sou\xffth"\n'  # one undecodable byte
        b"r3\n"  # too few fields
        b'r4,"Line\nbreak"\n'  # a quoted newline: the next record starts on line 6
        b"r5,East,extra\n"
        b"r6,West\n"
    )
    (directory / "causes.jsonl").write_text(
        '{"id": "c1", "name": "Ok"}\n'
        "{not json}\n"
        "[1, 2]\n"
        '{"id": "c2", "name": "Also ok"}\n'
    )
    report = load(store, directory, tmp_path, max_reject_rate=1.0)
    assert report.ok
    reasons = {(r["entity"], int(r["line"])): r["reason"] for r in rejects_of(report)}
    assert reasons == {
        ("regions", 3): "not valid UTF-8 text",
        ("regions", 4): "expected 2 fields, found 1",
        ("regions", 7): "expected 2 fields, found 3",
        ("causes", 2): reasons[("causes", 2)],
        ("causes", 3): "expected a JSON object, found list",
    }
    assert reasons[("causes", 2)].startswith("invalid JSON")
    regions = export_tables(store)["regions"].to_pylist()
    assert [(r["id"], r["name"]) for r in regions] == [
        ("r1", "North"), ("r4", "Line\nbreak"), ("r6", "West")
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("$1,234.50", 1234.5), (" 25 ", 25.0), ("0", 0.0), (7, 7.0), ("1e3", 1000.0),
     ("$ 5", 5.0), (-0.0, 0.0)],
)
def test_amounts_accept_money_spellings(raw: object, expected: float) -> None:
    assert parse_amount(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("-$5", "negative"), ("$-5", "negative"), (float("nan"), "finite"), ("inf", "finite"),
     (True, "boolean"), ("12abc", "not a number"), (1e12, "above"), ([1], "expected a number"),
     (10**400, "too large")],
)
def test_amounts_reject_the_rest(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_amount(raw)


def test_timestamps_and_eins() -> None:
    now = int(NOW)
    assert parse_timestamp("2024-02-01", now) == 1_706_745_600
    assert parse_timestamp("2024-02-01 01:00:00", now) == 1_706_749_200
    assert parse_timestamp("2024-02-01T02:00:00+01:00", now) == 1_706_749_200
    assert parse_timestamp(1_706_745_600.9, now) == 1_706_745_600
    for bad, reason in [("2025-01-03", "future"), ("1899-12-31", "before 1900"),
                        ("yesterday", "not a date"), (float("nan"), "finite")]:
        with pytest.raises(ValueError, match=reason):
            parse_timestamp(bad, now)
    assert parse_ein("94-1234567") == "941234567"
    assert parse_ein("1234567") == "001234567"
    with pytest.raises(ValueError, match="not an EIN"):
        parse_ein("94-12345678")


def test_every_entity_has_an_id_or_references() -> None:
    for entity in ENTITIES.values():
        assert entity.required, entity.name


def test_cli_load_prints_json_and_exits_3_over_the_reject_rate(
    store_settings: StoreSettings, tmp_path: Path
) -> None:
    env = store_env(store_settings)
    command = [sys.executable, "-m", "entrypoints.cli", "etl", "load", "--format", "csv",
               "--mapping", str(CRM_MAPPING), "--json", str(FIXTURES / "crm")]
    strict = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert strict.returncode == 3, strict.stderr
    assert "donors: 3 of 5 rows rejected" in strict.stderr
    assert "Traceback" not in strict.stderr
    lenient = subprocess.run([*command, "--max-reject-rate", "0.7"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert lenient.returncode == 0, lenient.stderr
    summary = json.loads(lenient.stdout)
    assert summary["status"] == "complete"
    assert summary["entities"]["donations"]["accepted"] == 3
    assert summary["entities"]["donations"]["rejected"] == 5
    assert "rows/s" in lenient.stderr  # the progress bars' rate column
    bad = subprocess.run([*command[:-1], str(FIXTURES / "crm" / "nope.csv")], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2
    assert "nope.csv" in bad.stderr and "Traceback" not in bad.stderr
