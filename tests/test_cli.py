"""The `donor-match` command line, run as a user runs it: a subprocess with its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import free_port

from graph_store import Statement, StoreSettings, open_analytics_store

CLI = [sys.executable, "-m", "entrypoints.cli"]


def run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        CLI + args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_store_lifecycle_synth_load_and_snapshot(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DONOR_MATCH_DATA_DIR": str(tmp_path / "var"),
        "DONOR_MATCH_FALKORDB_PORT": str(free_port()),
        "DONOR_MATCH_FALKORDB_ANALYST_PORT": str(free_port()),
        "DONOR_MATCH_SNAPSHOTS_DIR": str(tmp_path / "snapshots"),
    }
    down = run(["store", "status"], env)
    assert down.returncode == 1
    assert "donor-match store start" in down.stderr
    assert "Traceback" not in down.stderr

    assert run(["store", "start"], env).returncode == 0
    try:
        assert run(["store", "init"], env).returncode == 0
        assert "is up" in run(["store", "status"], env).stderr
        synth = run(["etl", "synth", "--out", str(tmp_path / "data"), "--donors", "50",
                     "--nonprofits", "10", "--donations", "300"], env)
        assert synth.returncode == 0, synth.stderr
        loaded = run(["etl", "load", str(tmp_path / "data")], env)
        assert loaded.returncode == 0, loaded.stderr
        first = run(["etl", "snapshot"], env)
        second = run(["etl", "snapshot"], env)
        assert first.returncode == 0, first.stderr
        assert first.stdout == second.stdout  # unchanged graph, same content-addressed snapshot
        assert (Path(first.stdout.strip()) / "donations.parquet").is_file()
    finally:
        assert run(["store", "stop"], env).returncode == 0
    assert run(["store", "status"], env).returncode == 1


def test_load_names_a_missing_directory(tmp_path: Path) -> None:
    result = run(["etl", "load", str(tmp_path / "nope")], dict(os.environ))
    assert result.returncode == 2
    assert "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_loads_trains_and_prints_a_working_query(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DONOR_MATCH_DATA_DIR": str(tmp_path / "var"),
        "DONOR_MATCH_FALKORDB_PORT": str(free_port()),
        "DONOR_MATCH_FALKORDB_ANALYST_PORT": str(free_port()),
        "DONOR_MATCH_SNAPSHOTS_DIR": str(tmp_path / "snapshots"),
        "DONOR_MATCH_MODELS_DIR": str(tmp_path / "models"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DONOR_MATCH_MLFLOW_ARTIFACTS_DIR": str(tmp_path / "mlartifacts"),
        "DONOR_MATCH_TENSORBOARD_DIR": str(tmp_path / "tensorboard"),
    }
    env.pop("DONOR_MATCH_JWT_SECRET", None)
    try:
        demo = run(["demo", "--donors", "120", "--nonprofits", "25", "--donations", "900",
                    "--steps", "5", "--no-serve"], env, timeout=300)
        assert demo.returncode == 0, demo.stderr
        assert (tmp_path / "models" / "CURRENT").is_file()
        assert "matches(donorId:" in demo.stderr
        assert '"Authorization": "Bearer ' in demo.stderr
        # The analyst graph is built too: analyticsQuery has something to read.
        settings = StoreSettings(
            falkordb_port=int(env["DONOR_MATCH_FALKORDB_PORT"]),
            data_dir=Path(env["DONOR_MATCH_DATA_DIR"]),  # where `store start` kept the password
            falkordb_analyst_port=int(env["DONOR_MATCH_FALKORDB_ANALYST_PORT"]),
        )
        analyst = open_analytics_store(settings)
        try:
            donors = analyst.read(Statement("count", "MATCH (d:Donor) RETURN count(d) AS n"))
        finally:
            analyst.close()
        assert donors[0]["n"] > 0
    finally:
        run(["store", "stop"], env)


def test_neo4j_demo_and_store_lifecycle(tmp_path: Path) -> None:
    """`DONOR_MATCH_STORE=neo4j make demo`'s path: the local Neo4j servers start with generated
    passwords, the demo loads and trains on them, and status names backend, version, URI and
    data directory."""
    env = {
        **os.environ,
        "DONOR_MATCH_STORE": "neo4j",
        "NEO4J_URI": f"neo4j://127.0.0.1:{free_port()}",
        "NEO4J_ANALYST_URI": f"neo4j://127.0.0.1:{free_port()}",
        "DONOR_MATCH_NEO4J_HEAP": "512m",
        "DONOR_MATCH_NEO4J_PAGECACHE": "64m",
        "DONOR_MATCH_STORE_CONNECT_TIMEOUT_S": "10",
        "DONOR_MATCH_DATA_DIR": str(tmp_path / "var"),
        "DONOR_MATCH_SNAPSHOTS_DIR": str(tmp_path / "snapshots"),
        "DONOR_MATCH_MODELS_DIR": str(tmp_path / "models"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DONOR_MATCH_MLFLOW_ARTIFACTS_DIR": str(tmp_path / "mlartifacts"),
        "DONOR_MATCH_TENSORBOARD_DIR": str(tmp_path / "tensorboard"),
    }
    for name in ("NEO4J_PASSWORD", "NEO4J_ANALYST_PASSWORD", "DONOR_MATCH_JWT_SECRET"):
        env.pop(name, None)
    down = run(["store", "status"], env)
    assert down.returncode == 1
    assert "donor-match store start" in down.stderr
    assert "Traceback" not in down.stderr
    try:
        demo = run(["demo", "--donors", "120", "--nonprofits", "25", "--donations", "900",
                    "--steps", "5", "--no-serve"], env, timeout=480)
        assert demo.returncode == 0, demo.stderr
        assert (tmp_path / "models" / "CURRENT").is_file()
        status = run(["store", "status"], env)
        assert status.returncode == 0, status.stderr
        assert "neo4j Neo4j/2026.08.1 is up at neo4j://neo4j@127.0.0.1:" in status.stderr
        assert str(tmp_path / "var") in status.stderr
        secret = tmp_path / "var" / "neo4j" / "secrets" / "neo4j"
        assert secret.stat().st_mode & 0o777 == 0o600
    finally:
        assert run(["store", "stop"], env).returncode == 0
    assert run(["store", "status"], env).returncode == 1
