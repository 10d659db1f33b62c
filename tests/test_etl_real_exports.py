"""Real exports are partial and repetitive: missing optional columns, repeated and conflicting
rows, one entity over its reject limit. Every file here is written by the test itself."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import store_env

from etl.export import GraphExport, export_graph
from etl.pipeline import LoadOptions, LoadReport, run_load
from etl.sources import open_source
from graph_store import GraphStore, StoreSettings

NOW = 1_735_689_600.0  # 2025-01-01 UTC: the validation clock (and "load time") of these tests

SCHOOLS = [
    {"School ID": "s1", "School Name": "Mission High", "School State": "California",
     "School Zip": "94110", "School City": "San Francisco"},
    {"School ID": "s2", "School Name": "P.S. 123", "School State": "New York",
     "School Zip": "10026", "School City": "New York"},
]
PROJECTS = [
    {"Project ID": "p1", "School ID": "s1", "Project Title": "Books",
     "Project Subject Category Tree": "Literacy & Language",
     "Project Subject Subcategory Tree": "Literacy", "Project Posted Date": "2017-09-01"},
    {"Project ID": "p2", "School ID": "s2", "Project Title": "Drums",
     "Project Subject Category Tree": "Music & The Arts",
     "Project Subject Subcategory Tree": "Music", "Project Posted Date": "2017-11-02"},
]
DONORS = [
    {"Donor ID": "d1", "Donor City": "San Francisco", "Donor State": "California",
     "Donor Is Teacher": "No", "Donor Zip": "941"},
    {"Donor ID": "d2", "Donor City": "Brooklyn", "Donor State": "New York",
     "Donor Is Teacher": "Yes", "Donor Zip": "112"},
    {"Donor ID": "d3", "Donor City": "Austin", "Donor State": "Texas",
     "Donor Is Teacher": "No", "Donor Zip": "787"},
]
DONATIONS = [
    {"Project ID": "p1", "Donation ID": "g1", "Donor ID": "d1", "Donation Amount": "$25.00",
     "Donation Received Date": "2017-12-24 10:15:57"},
    {"Project ID": "p1", "Donation ID": "g2", "Donor ID": "d2", "Donation Amount": "10",
     "Donation Received Date": "2017-12-25 08:00:00"},
    {"Project ID": "p2", "Donation ID": "g3", "Donor ID": "d3", "Donation Amount": "100",
     "Donation Received Date": "2017-11-05 12:00:00"},
    {"Project ID": "p2", "Donation ID": "g4", "Donor ID": "d1", "Donation Amount": "5",
     "Donation Received Date": "2017-11-06 12:00:00"},
]
FILES = {"Schools.csv": SCHOOLS, "Projects.csv": PROJECTS, "Donors.csv": DONORS,
         "Donations.csv": DONATIONS}
# Every optional column of the Kaggle export that the adapter reads.
OPTIONAL = [
    ("Donations.csv", "Donation Amount"), ("Donations.csv", "Donation Received Date"),
    ("Donors.csv", "Donor City"), ("Donors.csv", "Donor State"),
    ("Donors.csv", "Donor Is Teacher"), ("Donors.csv", "Donor Zip"),
    ("Schools.csv", "School State"), ("Schools.csv", "School Zip"),
    ("Schools.csv", "School City"), ("Projects.csv", "Project Title"),
    ("Projects.csv", "Project Subject Category Tree"),
    ("Projects.csv", "Project Subject Subcategory Tree"), ("Projects.csv", "Project Posted Date"),
]


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def write_csv(path: Path, rows: list[dict[str, str]], drop: str | None = None) -> Path:
    columns = [c for c in rows[0] if c != drop]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_export(directory: Path, drop: tuple[str, str] | None = None,
                 **replace: list[dict[str, str]]) -> Path:
    """A small DonorsChoose export; `drop` removes one column of one file; keyword arguments
    (file stem: rows) replace a file's rows."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in FILES.items():
        rows = replace.get(name.removesuffix(".csv"), rows)
        write_csv(directory / name, rows, drop[1] if drop and drop[0] == name else None)
    return directory


def load(store: GraphStore, path: Path, tmp_path: Path, fmt: str = "donorschoose",
         **options: Any) -> LoadReport:
    opts = LoadOptions(loads_dir=tmp_path / "loads", now=NOW, **options)
    return run_load(store, open_source(fmt, path), opts, path=path)


def nodes(graph: GraphExport, label: str) -> dict[str, dict[str, Any]]:
    return {n["properties"]["id"]: n["properties"] for n in graph.nodes if n["labels"] == [label]}


def edges(graph: GraphExport, kind: str) -> set[tuple[str, str]]:
    return {(r["source"], r["target"]) for r in graph.relationships if r["type"] == kind}


def gifts(graph: GraphExport) -> dict[str, dict[str, Any]]:
    return {r["properties"]["id"]: r["properties"] for r in graph.relationships
            if r["type"] == "DONATED"}


def rejects_of(report: LoadReport) -> list[dict[str, str]]:
    assert report.directory is not None
    with (report.directory / "rejects.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def counts(report: LoadReport) -> dict[str, tuple[int, int, int]]:
    return {n: (e.accepted, e.rejected, e.duplicates) for n, e in report.entities.items()}


def test_the_complete_export_loads_everything(store: GraphStore, tmp_path: Path) -> None:
    report = load(store, write_export(tmp_path / "in"), tmp_path)
    assert report.status == "complete" and report.notes == [] and report.rejects == 0
    graph = export_graph(store)
    assert set(nodes(graph, "Donor")) == {"d1", "d2", "d3"}
    assert {g["ts"] for g in gifts(graph).values()} == {
        epoch(d["Donation Received Date"]) for d in DONATIONS}
    assert not any(g.get("ts_approximate") for g in gifts(graph).values())


@pytest.mark.parametrize(("file", "column"), OPTIONAL, ids=[c for _, c in OPTIONAL])
def test_each_optional_column_may_be_missing(
    store: GraphStore, tmp_path: Path, file: str, column: str
) -> None:
    """One column removed: the load says what it did without it, and every node that does not
    depend on it arrives as in the complete export."""
    report = load(store, write_export(tmp_path / "in", (file, column)), tmp_path,
                  max_reject_rate=0.2, min_rows_for_rate=1)
    assert any(f"{file} has no {column.lower()!r} column" in note for note in report.notes), \
        report.notes
    graph = export_graph(store)
    assert set(nodes(graph, "Donor")) == {"d1", "d2", "d3"}
    assert set(nodes(graph, "Nonprofit")) == {"s1", "s2"}
    assert set(nodes(graph, "Initiative")) == {"p1", "p2"}
    if column == "Donation Amount":
        # Amounts are required: every donation is rejected, and only donations stop.
        assert report.status == "partial" and report.failure == "rejects"
        assert report.entities["donations"].stopped
        assert gifts(graph) == {}
        reasons = {r["reason"] for r in rejects_of(report) if r["entity"] == "donations"}
        assert reasons == {"missing required value (the row has no amount column)"}
    else:
        assert report.status == "complete", report.error
        assert set(gifts(graph)) == {"g1", "g2", "g3", "g4"}
    lives, located = edges(graph, "LIVES_IN"), edges(graph, "LOCATED_IN")
    assert lives == (set() if column == "Donor State" else
                     {("d1", "US-CA"), ("d2", "US-NY"), ("d3", "US-TX")})
    assert located == (set() if column == "School State" else
                       {("s1", "US-CA"), ("s2", "US-NY")})


def test_missing_donation_dates_take_the_projects_posted_date(
    store: GraphStore, tmp_path: Path
) -> None:
    projects = [*PROJECTS, {**PROJECTS[0], "Project ID": "p3", "Project Posted Date": ""}]
    donations = [*DONATIONS, {"Project ID": "p3", "Donation ID": "g5", "Donor ID": "d2",
                              "Donation Amount": "7", "Donation Received Date": "x"}]
    path = write_export(tmp_path / "in", ("Donations.csv", "Donation Received Date"),
                        Donations=donations, Projects=projects)
    report = load(store, path, tmp_path)
    assert report.ok
    assert report.entities["donations"].approximate == 5
    assert report.notes == [
        "Donations.csv has no 'donation received date' column: each donations row is dated "
        "by its initiative's posted date, or the load time when that is unknown, flagged "
        "ts_approximate"]
    stored = gifts(export_graph(store))
    assert stored["g1"]["ts"] == stored["g2"]["ts"] == epoch("2017-09-01")
    assert stored["g3"]["ts"] == epoch("2017-11-02")
    assert stored["g5"]["ts"] == NOW  # a project without a posted date: the load time
    assert all(g["ts_approximate"] is True for g in stored.values())
    assert stored["g1"]["amount"] == 25.0  # the rest of each row is as read


def test_missing_donation_dates_may_take_the_load_time(store: GraphStore, tmp_path: Path) -> None:
    path = write_export(tmp_path / "in", ("Donations.csv", "Donation Received Date"))
    report = load(store, path, tmp_path, ts_fallback="load-time")
    assert report.ok and "dated by the load time" in report.notes[0]
    assert {g["ts"] for g in gifts(export_graph(store)).values()} == {NOW}


def test_identical_repeats_are_duplicates_not_rejects(store: GraphStore, tmp_path: Path) -> None:
    # The repeats differ only in a column the loader does not read (as in the real export).
    donors = [{**d, "Donor Created": "2016-01-01"} for d in DONORS]
    repeated = [*donors, {**donors[0], "Donor Created": "2017-05-05"},
                {**donors[1], "Donor Created": "2018-01-01"}, donors[0]]
    donations = [*DONATIONS, DONATIONS[2]]
    path = write_export(tmp_path / "in", Donors=repeated, Donations=donations)
    # Three of six donor rows repeat: as rejects that would be 50%, far over the limit.
    report = load(store, path, tmp_path, max_reject_rate=0.05, min_rows_for_rate=1)
    assert report.status == "complete", report.error
    assert counts(report)["donors"] == (3, 0, 3)
    assert counts(report)["donations"] == (4, 0, 1)
    assert report.rejects == 0
    graph = export_graph(store)
    assert set(nodes(graph, "Donor")) == {"d1", "d2", "d3"}
    assert nodes(graph, "Donor")["d2"]["donor_type"] == "teacher"
    assert set(gifts(graph)) == {"g1", "g2", "g3", "g4"}
    manifest = json.loads((report.directory / "manifest.json").read_text())  # type: ignore[operator]
    assert manifest["entities"]["donors"]["duplicates"] == 3


def test_conflicting_repeats_are_rejected_naming_both_lines(
    store: GraphStore, tmp_path: Path
) -> None:
    repeated = [*DONORS, {**DONORS[0], "Donor City": "Oakland"}]  # line 5 contradicts line 2
    donations = [*DONATIONS, {**DONATIONS[0], "Donation Amount": "99"}]
    path = write_export(tmp_path / "in", Donors=repeated, Donations=donations)
    report = load(store, path, tmp_path, max_reject_rate=0.5)
    assert report.ok
    assert counts(report)["donors"] == (3, 1, 0)
    assert counts(report)["donations"] == (4, 1, 0)
    found = {(r["entity"], Path(r["file"]).name, r["line"], r["column"]): r["reason"]
             for r in rejects_of(report)}
    assert found[("donors", "Donors.csv", "5", "id")] == (
        f"conflicting repeat of id 'd1': {tmp_path / 'in' / 'Donors.csv'} line 2 has it with "
        f"other values (that row was kept)")
    assert "Donations.csv line 2 has it" in found[("donations", "Donations.csv", "6", "id")]
    graph = export_graph(store)
    assert nodes(graph, "Donor")["d1"]["city"] == "San Francisco"  # the first row was kept
    assert gifts(graph)["g1"]["amount"] == 25.0


def test_an_entity_over_its_reject_limit_stops_alone(store: GraphStore, tmp_path: Path) -> None:
    """Donors fail the rate at their third batch: their later rows are validated but not
    written, donations to those donors are refused saying why, and everything else loads."""
    directory = tmp_path / "canonical"
    directory.mkdir()
    write_csv(directory / "nonprofits.csv", [{"id": "n1", "name": "One"}])
    donors = [{"id": f"d{i}", "email": "bad" if i in (4, 5) else f"d{i}@example.org"}
              for i in range(10)]
    write_csv(directory / "donors.csv", donors)
    # Twelve gifts from written donors (lines 2-13), then two from withheld ones (14-15).
    write_csv(directory / "donations.csv", [
        {"id": f"g{i}", "donor_id": f"d{i % 4 if i < 12 else i - 4}", "nonprofit_id": "n1",
         "amount": "5", "ts": "2020-01-01"} for i in range(14)])
    report = load(store, directory, tmp_path, "canonical", batch_size=2, min_rows_for_rate=4,
                  max_reject_rate=0.2)
    assert report.status == "partial" and report.failure == "rejects"
    donors_report = report.entities["donors"]
    assert "donors: 2 of 6 rows rejected (33.3%)" in (donors_report.stopped or "")
    assert (donors_report.read, donors_report.accepted, donors_report.rejected,
            donors_report.withheld) == (10, 8, 2, 4)  # the whole file is counted
    graph = export_graph(store)
    assert set(nodes(graph, "Donor")) == {"d0", "d1", "d2", "d3"}
    assert set(nodes(graph, "Nonprofit")) == {"n1"}
    assert set(gifts(graph)) == {f"g{i}" for i in range(12)}
    reasons = {r["line"]: r["reason"] for r in rejects_of(report) if r["entity"] == "donations"}
    assert set(reasons) == {"14", "15"}
    assert reasons["14"] == ("unknown Donor id 'd8' (its row in this load was not written: its "
                             "entity stopped at the reject limit)")
    assert report.entities["donations"].stopped is None  # 2 of 14: within the limit
    assert report.error and report.error.startswith("donors:")


def test_canonical_files_without_dates_amounts_or_regions(
    store: GraphStore, tmp_path: Path
) -> None:
    directory = tmp_path / "canonical"
    directory.mkdir()
    write_csv(directory / "regions.csv", [{"id": "r1", "name": "North"}])
    write_csv(directory / "nonprofits.csv", [{"id": "n1", "name": "One", "region_id": "r1"}])
    write_csv(directory / "initiatives.csv", [
        {"id": "i1", "nonprofit_id": "n1", "posted_ts": "2020-03-01"}])
    write_csv(directory / "donors.csv", [{"id": "d1", "name": "Ann"}, {"id": "d2", "name": "Bo"}])
    write_csv(directory / "donations.csv", [
        {"id": "g1", "donor_id": "d1", "nonprofit_id": "n1", "initiative_id": "i1",
         "amount": "5"},
        {"id": "g2", "donor_id": "d2", "nonprofit_id": "n1", "initiative_id": "", "amount": "6"}])
    report = load(store, directory, tmp_path, "canonical")
    assert report.ok, report.error
    assert sorted(report.notes) == [
        "donations.csv has no 'ts' column: each donations row is dated by its initiative's "
        "posted date, or the load time when that is unknown, flagged ts_approximate",
        "donors.csv has no 'region_id' column: donors load without a region",
    ]
    stored = gifts(export_graph(store))
    assert stored["g1"]["ts"] == epoch("2020-03-01") and stored["g2"]["ts"] == NOW
    assert set(nodes(export_graph(store), "Donor")) == {"d1", "d2"}

    (directory / "donations.csv").unlink()
    write_csv(directory / "donations.csv", [
        {"id": "g3", "donor_id": "d1", "nonprofit_id": "n1", "ts": "2021-01-01"}])
    report = load(store, directory, tmp_path, "canonical", max_reject_rate=0.5)
    assert report.status == "partial" and "donations" in (report.error or "")
    assert any("has no 'amount' column: every donations row is rejected" in n
               for n in report.notes)
    assert set(gifts(export_graph(store))) == {"g1", "g2"}  # nothing right was lost


def test_irs_bmf_without_state_or_ntee_columns(store: GraphStore, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "eo_xx.csv", [
        {"EIN": "941234567", "NAME": "FOOD BANK", "CITY": "SAN FRANCISCO", "ZIP": "94107"},
        {"EIN": "012345678", "NAME": "READERS", "CITY": "OAKLAND", "ZIP": "94612"}])
    report = load(store, path, tmp_path, "irs-bmf")
    assert report.ok, report.error
    assert sorted(report.notes) == [
        "eo_xx.csv has no 'NTEE_CD' column: nonprofits load without causes",
        "eo_xx.csv has no 'STATE' column: nonprofits load without a region",
        "eo_xx.csv has no 'STREET' column: nonprofits load without street",
    ]
    graph = export_graph(store)
    assert set(nodes(graph, "Nonprofit")) == {"941234567", "012345678"}
    assert edges(graph, "LOCATED_IN") == set() and edges(graph, "WORKS_ON") == set()


def _cli(store_settings: StoreSettings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", "etl", "load", *args],
                          env=store_env(store_settings), capture_output=True, text=True,
                          timeout=120, check=False)


def test_cli_says_what_the_load_did_without_and_exits_by_outcome(
    store_settings: StoreSettings, tmp_path: Path
) -> None:
    undated = write_export(tmp_path / "undated", ("Donations.csv", "Donation Received Date"),
                           Donors=[*DONORS, DONORS[0]])
    done = _cli(store_settings, tmp_path, "--format", "donorschoose", "--json", str(undated))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "complete"
    assert summary["entities"]["donations"]["approximate"] == 4
    assert summary["entities"]["donors"]["duplicates"] == 1
    assert "note: Donations.csv has no 'donation received date' column" in done.stderr
    assert "note: donors: 1 rows repeated an earlier row exactly" in done.stderr

    no_amounts = write_export(tmp_path / "no_amounts", ("Donations.csv", "Donation Amount"))
    done = _cli(store_settings, tmp_path, "--format", "donorschoose", "--json", str(no_amounts))
    assert done.returncode == 3, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "partial"
    assert summary["entities"]["donors"]["written"] == 3
    assert "donations stopped at the reject limit" in done.stderr


OPENDATA_PROJECTS = [
    {"_projectid": "p1", "_teacher_acctid": "t1", "_schoolid": "s1",
     "school_ncesid": "060000100001", "school_city": "San Francisco", "school_state": "CA",
     "school_zip": "94110", "primary_focus_subject": "Literacy",
     "primary_focus_area": "Literacy & Language", "secondary_focus_subject": "Mathematics",
     "secondary_focus_area": "Math & Science", "date_posted": "2012-09-01"},
    {"_projectid": "p2", "_teacher_acctid": "t2", "_schoolid": "s2", "school_ncesid": "",
     "school_city": "New York", "school_state": "NY", "school_zip": "10026",
     "primary_focus_subject": "Music", "primary_focus_area": "Music & The Arts",
     "secondary_focus_subject": "", "secondary_focus_area": "", "date_posted": "2012-11-02"},
    {"_projectid": "p3", "_teacher_acctid": "t3", "_schoolid": "s1",
     "school_ncesid": "060000100001", "school_city": "San Francisco", "school_state": "CA",
     "school_zip": "94110", "primary_focus_subject": "Literacy",
     "primary_focus_area": "Literacy & Language", "secondary_focus_subject": "",
     "secondary_focus_area": "", "date_posted": "2013-01-05"},
]
OPENDATA_DONATIONS = [
    {"_donationid": "g1", "_projectid": "p1", "_donor_acctid": "d1", "_cartid": "c1",
     "donor_city": "San Francisco", "donor_state": "CA", "donor_zip": "941",
     "is_teacher_acct": "f", "donation_timestamp": "2012-09-10 10:00:00.000",
     "donation_total": "25.00", "payment_method": "paypal"},
    {"_donationid": "g2", "_projectid": "p1", "_donor_acctid": "d2", "_cartid": "c2",
     "donor_city": "Brooklyn", "donor_state": "NY", "donor_zip": "112", "is_teacher_acct": "t",
     "donation_timestamp": "2012-09-11 10:00:00", "donation_total": "10.00",
     "payment_method": "creditcard"},
    {"_donationid": "g3", "_projectid": "p2", "_donor_acctid": "d1", "_cartid": "c3",
     "donor_city": "San Francisco", "donor_state": "CA", "donor_zip": "941",
     "is_teacher_acct": "f", "donation_timestamp": "2012-11-05 12:00:00",
     "donation_total": "100.00", "payment_method": "amazon"},
    {"_donationid": "g4", "_projectid": "p3", "_donor_acctid": "d3", "_cartid": "c4",
     "donor_city": "", "donor_state": "", "donor_zip": "", "is_teacher_acct": "f",
     "donation_timestamp": "2013-01-06 12:00:00", "donation_total": "5.50",
     "payment_method": "paypal"},
]


@pytest.mark.parametrize("undated", [False, True], ids=["dated", "undated"])
def test_the_older_donorschoose_export_loads(store: GraphStore, tmp_path: Path,
                                             undated: bool) -> None:
    """opendata_projects.csv + opendata_donations.csv: schools and donors repeat on every row
    of their projects and donations; there are no school names."""
    directory = tmp_path / "opendata"
    directory.mkdir()
    write_csv(directory / "opendata_projects.csv", OPENDATA_PROJECTS)
    write_csv(directory / "opendata_donations.csv", OPENDATA_DONATIONS,
              "donation_timestamp" if undated else None)
    (directory / "opendata_essays.csv").write_text("_projectid,title\np1,Books\n")  # not read
    report = load(store, directory, tmp_path)
    assert report.status == "complete" and report.rejects == 0, report.error
    assert counts(report)["donors"] == (3, 0, 0)  # one row per donor, not per donation
    assert counts(report)["nonprofits"] == (2, 0, 0)
    assert ("opendata_projects.csv has no 'school name' column: nonprofits are named after "
            "their id") in report.notes
    graph = export_graph(store)
    schools = nodes(graph, "Nonprofit")
    assert {k: v["name"] for k, v in schools.items()} == {"s1": "School 060000100001",
                                                          "s2": "School s2"}
    assert edges(graph, "LOCATED_IN") == {("s1", "US-CA"), ("s2", "US-NY")}
    assert edges(graph, "LIVES_IN") == {("d1", "US-CA"), ("d2", "US-NY")}  # d3: no state
    assert nodes(graph, "Donor")["d2"]["donor_type"] == "teacher"
    assert ("dc-sub-mathematics", "dc-cat-math-science") in edges(graph, "PART_OF")
    assert {c for s, c in edges(graph, "WORKS_ON") if s == "s1"} == {
        "dc-cat-literacy-language", "dc-cat-math-science"}
    stored = gifts(graph)
    assert {g: (v["amount"], v["initiative_id"]) for g, v in stored.items()} == {
        "g1": (25.0, "p1"), "g2": (10.0, "p1"), "g3": (100.0, "p2"), "g4": (5.5, "p3")}
    if undated:
        assert stored["g1"]["ts"] == epoch("2012-09-01") and stored["g1"]["ts_approximate"]
        assert report.entities["donations"].approximate == 4
    else:
        assert stored["g1"]["ts"] == epoch("2012-09-10 10:00:00")
        assert stored["g1"].get("ts_approximate") is None
