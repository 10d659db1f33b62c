"""`donor-match quickstart` on a small DonorsChoose export the test writes: partial (no donation
dates), repetitive (repeated donor rows) and too young to evaluate a model on."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from conftest import free_port

CLI = [sys.executable, "-m", "entrypoints.cli"]


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_export(directory: Path) -> Path:
    directory.mkdir()
    states = ["California", "New York", "Texas", ""]
    _write(directory / "Schools.csv", [
        {"School ID": f"s{i}", "School Name": f"School {i}", "School State": states[i % 3]}
        for i in range(4)])
    _write(directory / "Projects.csv", [
        {"Project ID": f"p{i}", "School ID": f"s{i % 4}", "Project Title": f"Project {i}",
         "Project Subject Category Tree": ["Literacy & Language", "Music & The Arts"][i % 2],
         "Project Posted Date": f"2017-{i + 1:02d}-01"} for i in range(8)])
    donors = [{"Donor ID": f"d{i}", "Donor State": states[i % 4], "Donor Is Teacher": "No"}
              for i in range(30)]
    _write(directory / "Donors.csv", donors + donors[:5])  # five rows repeated exactly
    # No "Donation Received Date" column, as in the export that started issue 19.
    _write(directory / "Donations.csv", [
        {"Project ID": f"p{(i * 3) % 8}", "Donation ID": f"g{i}", "Donor ID": f"d{i % 30}",
         "Donation Amount": "25.00"} for i in range(90)])
    return directory


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_quickstart_loads_a_real_export_trains_and_says_what_it_could_not(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "DONOR_MATCH_DATA_DIR": str(tmp_path / "var"),
        "DONOR_MATCH_FALKORDB_PORT": str(free_port()),
        "DONOR_MATCH_FALKORDB_ANALYST_PORT": str(free_port()),
        "DONOR_MATCH_SNAPSHOTS_DIR": str(tmp_path / "snapshots"),
        "DONOR_MATCH_MODELS_DIR": str(tmp_path / "models"),
    }
    export = write_export(tmp_path / "export")
    try:
        done = run(["quickstart", "--format", "donorschoose", str(export), "--steps", "3",
                    "--no-serve"], env)
        assert done.returncode == 0, done.stderr
        err = done.stderr
        assert "note: Donations.csv has no 'donation received date' column" in err
        assert "note: donors: 5 rows repeated an earlier row exactly" in err
        assert "what the quickstart could not do:" in err
        assert "- evaluate the model: the temporal split leaves" in err
        assert "model promote --force" in err
        assert not (tmp_path / "models" / "CURRENT").exists()  # unevaluated: not served
        # What reached the graph: every school, project, donor and donation, nothing lost.
        snapshot = Path(run(["etl", "snapshot"], env).stdout.strip())
        assert pq.read_table(snapshot / "donors.parquet").num_rows == 30
        assert pq.read_table(snapshot / "nonprofits.parquet").num_rows == 4
        donations = pq.read_table(snapshot / "donations.parquet")
        assert donations.num_rows == 90
        dates = donations.column("ts").to_pylist()
        assert 1_483_228_800 <= min(dates) <= max(dates) < 1_514_764_800  # 2017: posted dates
        regions = pq.read_table(snapshot / "donors.parquet").column("region_id").to_pylist()
        assert regions.count(None) == 7  # donors with an empty state load without a region
    finally:
        run(["store", "stop"], env)
