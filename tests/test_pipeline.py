"""`donor-match pipeline run` end to end on the embedded store (issue 6), run as the CronJob runs
it, twice (idempotent); then `donor-match drift export` and the drift arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import mlflow
import pyarrow.compute as pc
import pytest
from conftest import TINY_GRAPH, ServedGraph, free_port, store_env

from donor_match.repositories.store import StoreMatches
from donor_match.services.served_matches import ServedMatchCounter
from etl.loader import load_tables
from etl.snapshot import write_snapshot
from etl.synth import generate
from graph_model.artifacts import CURRENT
from graph_store import GraphStore, StoreSettings, open_store, statement
from mlops.drift import DriftReport, Feedback, drift_report, export, psi

CLI = [sys.executable, "-m", "entrypoints.cli"]
STEPS = ["snapshot", "validate", "train", "evaluate", "gate", "register", "promote"]


def test_psi_on_a_hand_computed_example() -> None:
    # (0.9 - 0.5) ln(0.9 / 0.5) + (0.1 - 0.5) ln(0.1 / 0.5) = 0.2351 + 0.6438
    assert psi([50, 50], [90, 10]) == pytest.approx(0.87889, abs=1e-4)
    assert psi([3, 7], [30, 70]) == 0.0


@pytest.fixture
def env(store: GraphStore, store_settings: StoreSettings, tmp_path: Path) -> dict[str, str]:
    load_tables(store, generate(TINY_GRAPH))
    return {
        **store_env(store_settings),
        "DONOR_MATCH_SNAPSHOTS_DIR": str(tmp_path / "snapshots"),
        "DONOR_MATCH_MODELS_DIR": str(tmp_path / "models"),
        "DONOR_MATCH_PIPELINE_DIR": str(tmp_path / "pipeline"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DONOR_MATCH_MLFLOW_ARTIFACTS_DIR": str(tmp_path / "mlartifacts"),
        "DONOR_MATCH_TENSORBOARD_DIR": str(tmp_path / "tensorboard"),
        "DONOR_MATCH_PUSHGATEWAY_URL": "",
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=400, check=False
    )


def test_pipeline_runs_end_to_end_and_again_without_training(
    env: dict[str, str], store: GraphStore, tmp_path: Path
) -> None:
    first = run(["pipeline", "run", "--steps", "30"], env)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(Path(first.stdout.strip()).read_text())
    assert manifest["status"] == "succeeded", manifest
    steps = {s["name"]: s for s in manifest["steps"]}
    assert list(steps) == STEPS
    assert all(s["status"] == "done" for s in manifest["steps"][:-1]), manifest
    version = manifest["version"]
    assert steps["train"]["outputs"] == {"version": version, "reused": False, "steps": 30}
    assert steps["gate"]["outputs"]["passed"] is True
    assert steps["validate"]["outputs"]["donations"] == TINY_GRAPH.donations
    assert (tmp_path / "models" / CURRENT).read_text().strip() == version
    run_id = steps["register"]["outputs"]["mlflow_run_id"]
    tracked = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(run_id)
    assert tracked.data.tags["snapshot_hash"] == manifest["snapshot_hash"]
    assert tracked.data.tags["pipeline_run"] == manifest["run_id"]

    second = run(["pipeline", "run", "--steps", "30"], env)
    assert second.returncode == 0, second.stderr
    again = json.loads(Path(second.stdout.strip()).read_text())
    assert again["run_id"] != manifest["run_id"]
    assert (again["snapshot_hash"], again["version"]) == (manifest["snapshot_hash"], version)
    steps = {s["name"]: s for s in again["steps"]}
    assert steps["train"]["status"] == "skipped" and steps["train"]["outputs"]["reused"]
    assert steps["register"]["outputs"]["mlflow_run_id"] == run_id  # not logged twice
    assert steps["promote"]["outputs"]["action"] == "unchanged"
    assert "reusing" in second.stderr
    assert len(list((tmp_path / "models").glob("2*"))) == 1

    # Drift of the same graph: no shift; the feedback rate from the graph's counts.
    served = ServedMatchCounter(StoreMatches(store), flush_interval_s=3600)
    served.add(version, 8)
    served.add(version, 2)
    served.flush()
    now = int(time.time())
    for donor, nonprofit, action, ts in (
        ("donor-000001", "nonprofit-00001", "CLICKED", now),
        ("donor-000002", "nonprofit-00002", "CLICKED", now),
        ("donor-000001", "nonprofit-00003", "DONATED", now),
        ("donor-000001", "nonprofit-00004", "DONATED", now - 3 * 86400),  # outside the window
    ):
        store.write(
            statement("api/record_feedback"),
            {
                "donor_id": donor,
                "nonprofit_id": nonprofit,
                "action": action,
                "ts": ts,
                "model_version": version,
            },
        )
    textfile = tmp_path / "drift.prom"
    drift = run(["drift", "export", "--textfile", str(textfile)], env)
    assert drift.returncode == 0, drift.stderr
    assert drift.stdout == textfile.read_text()
    metrics = dict(
        line.rsplit(" ", 1) for line in drift.stdout.splitlines() if not line.startswith("#")
    )
    for feature in (
        "donation_amount",
        "donations_per_donor",
        "nonprofit_degree",
        "donor_region",
        "donor_cause",
        "score",
    ):
        assert float(metrics[f'donor_match_drift_psi{{feature="{feature}"}}']) == 0.0
    assert float(metrics['donor_match_feedback_rate{action="clicked"}']) == pytest.approx(0.2)
    assert float(metrics['donor_match_feedback_rate{action="donated"}']) == pytest.approx(0.1)
    assert float(metrics["donor_match_feedback_matches_served"]) == 10


def test_drift_sees_a_shift_in_one_feature(served_graph: ServedGraph, tmp_path: Path) -> None:
    tables = dict(served_graph.tables)
    donations = tables["donations"]
    tables["donations"] = donations.set_column(
        donations.schema.get_field_index("amount"),
        "amount",
        pc.multiply(donations["amount"], 5.0),
    )
    shifted = tmp_path / "shifted"
    write_snapshot(tables, shifted)
    settings = served_graph.app_settings
    store = open_store(served_graph.store_settings)
    try:
        report = drift_report(shifted, settings.models_dir, settings.snapshots_dir, store, 3600)
    finally:
        store.close()
    assert report.psi["donation_amount"] > 1.0, report.psi
    assert {k: v for k, v in report.psi.items() if k != "donation_amount"} == {
        "donations_per_donor": 0.0,
        "nonprofit_degree": 0.0,
        "donor_region": 0.0,
        "donor_cause": 0.0,
        "score": 0.0,
    }
    assert report.snapshot != report.reference_snapshot


def test_no_matches_served_means_no_rate_rather_than_a_false_drop() -> None:
    assert Feedback(86400, 0, {"donated": 3}).rates == {}
    assert Feedback(86400, 10, {"donated": 3}).rates == {
        "clicked": 0.0,
        "donated": 0.3,
        "dismissed": 0.0,
    }


@pytest.fixture
def pushgateway() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A stand-in Pushgateway that records what it is sent (method, path, body)."""
    received: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            received.append(
                ("PUT", self.path, self.rfile.read(int(self.headers["Content-Length"])))
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def test_export_pushes_to_the_pushgateway(
    pushgateway: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    url, received = pushgateway
    report = DriftReport(
        "v1", "a" * 64, "b" * 64, {"donation_amount": 0.3}, Feedback(86400, 50, {"donated": 5})
    )
    text = export(report, url)
    ((method, path, body),) = received
    assert (method, path) == ("PUT", "/metrics/job/donor-match-drift")
    assert body.decode() == text
    assert 'donor_match_drift_psi{feature="donation_amount"} 0.3' in text
    assert 'donor_match_feedback_rate{action="donated"} 0.1' in text
