"""The model registry on real trained versions: the quality gate, promote, rollback, list, the
`donor-match model` commands, the admin-only `promoteModel` mutation and MLflow tracking."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import TEST_AUTH, TINY_TRAINING, ServedGraph, error_codes, graphql
from starlette.testclient import TestClient

from donor_match.services.auth import Role
from donor_match.services.served_model import ServedModel
from entrypoints.asgi import create_app
from etl.snapshot import write_snapshot
from graph_model.artifacts import (
    CURRENT,
    current_artifact_dir,
    read_history,
    registry_lock,
    set_current,
)
from graph_model.config import TrainConfig
from graph_model.registry import GateFailedError, Registry, RegistryError, UnknownVersionError
from graph_model.tracking import history_series, track_training
from graph_model.train import train

CLI = [sys.executable, "-m", "entrypoints.cli"]


@pytest.fixture(scope="module")
def good(served_graph: ServedGraph) -> Path:
    """The session's tiny trained model (it beats popularity; tests/test_model.py checks that)."""
    path = current_artifact_dir(served_graph.app_settings.models_dir)
    assert path is not None
    return path


@pytest.fixture(scope="module")
def untrained(served_graph: ServedGraph, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real version whose weights never moved (learning rate 0): it loses to popularity."""
    snapshot = tmp_path_factory.mktemp("snapshot")
    write_snapshot(served_graph.tables, snapshot)
    # Candidates off: with them, training would serve a better candidate than this GNN.
    config = TrainConfig(steps=1, learning_rate=0.0, seed=TINY_TRAINING.seed, candidates=False)
    return train(snapshot, tmp_path_factory.mktemp("untrained"), config)


def _registry_with(root: Path, **versions: Path) -> Registry:
    """A registry whose versions are copies of real trained ones, first one served."""
    for name, source in versions.items():
        shutil.copytree(source, root / name)
    (root / CURRENT).write_text(next(iter(versions)) + "\n")
    return Registry(root, tolerance=0.05)


def test_gate_refuses_a_model_worse_than_popularity(good: Path, untrained: Path, tmp_path: Path):
    metrics = json.loads((untrained / "metrics.json").read_text())
    assert metrics["model"]["recall@20"] < metrics["popularity"]["recall@20"], metrics
    registry = _registry_with(tmp_path, v1=good, v2=untrained)
    report = registry.gate("v2")
    assert not report.passed
    assert any("worse than the popularity baseline" in r for r in report.reasons), report
    with pytest.raises(GateFailedError, match="popularity"):
        registry.promote("v2")
    assert registry.current() == "v1"
    assert read_history(tmp_path) == []  # a refusal changes nothing


def test_gate_refuses_artifacts_that_do_not_load(good: Path, tmp_path: Path) -> None:
    registry = _registry_with(tmp_path, v1=good, v2=good, v3=good)
    (tmp_path / "v2" / "nonprofit_embeddings.npy").write_bytes(b"not a numpy file")
    np.save(
        tmp_path / "v3" / "donor_embeddings.npy",
        np.full_like(np.load(good / "donor_embeddings.npy"), np.nan),
    )
    for version, why in (("v2", "do not load"), ("v3", "NaN")):
        with pytest.raises(GateFailedError, match=why):
            registry.promote(version)
    assert registry.current() == "v1"
    # The API's loader agrees: it would keep serving v1.
    assert ServedModel(tmp_path).current().version == "v1"


def test_gate_refuses_a_regression_beyond_the_tolerance(good: Path, tmp_path: Path) -> None:
    registry = _registry_with(tmp_path, v1=good, v2=good, v3=good)
    recall = json.loads((good / "metrics.json").read_text())["model"]["recall@20"]
    for version, factor in (("v2", 0.97), ("v3", 0.90)):  # tolerance is 5%
        metrics = json.loads((tmp_path / version / "metrics.json").read_text())
        metrics["model"]["recall@20"] = recall * factor
        (tmp_path / version / "metrics.json").write_text(json.dumps(metrics))
    assert registry.gate("v2").passed
    report = registry.gate("v3")
    assert report.compared_with == "v1"
    assert [r for r in report.reasons if "worse than production v1" in r], report.reasons


def test_promote_rollback_and_list(good: Path, untrained: Path, tmp_path: Path) -> None:
    registry = _registry_with(tmp_path, v1=good, v2=good, v3=good, v4=untrained)
    served = ServedModel(tmp_path, recheck_s=0)
    assert registry.promote("v2").previous == "v1"
    assert registry.promote("v3").action == "promote"
    assert served.current().version == "v3"
    assert registry.promote("v3").action == "unchanged"
    with pytest.raises(UnknownVersionError):
        registry.promote("v9")
    with pytest.raises(UnknownVersionError):
        registry.promote("../v1")

    listed = {v.version: v for v in registry.versions()}
    assert list(listed) == ["v1", "v2", "v3", "v4"]
    assert [v for v in listed.values() if v.serving] == [listed["v3"]]
    assert not listed["v4"].promoted
    assert listed["v3"].headline("recall") == pytest.approx(
        json.loads((good / "metrics.json").read_text())["model"]["recall@20"]
    )

    assert registry.rollback().version == "v2"
    assert served.current().version == "v2"
    assert registry.rollback().version == "v1"  # v1 was served before v2 (written by hand)
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()
    assert [e["action"] for e in read_history(tmp_path)] == [
        "promote",
        "promote",
        "rollback",
        "rollback",
    ]


def test_a_first_version_that_fails_its_gate_is_withdrawn(
    good: Path, untrained: Path, tmp_path: Path
) -> None:
    shutil.copytree(untrained, tmp_path / "v1")
    with registry_lock(tmp_path):
        set_current(tmp_path, "v1", action="bootstrap")  # as write_artifact serves a first version
    registry = Registry(tmp_path)
    assert not registry.gate("v1").passed
    assert registry.withdraw("v1")
    assert registry.current() is None and ServedModel(tmp_path).current() is None
    shutil.copytree(good, tmp_path / "v2")
    assert registry.promote("v2").previous is None
    assert not registry.withdraw("v2")  # only a bootstrap can be withdrawn
    assert registry.current() == "v2"


def test_rollback_needs_a_history(good: Path, tmp_path: Path) -> None:
    registry = _registry_with(tmp_path, v1=good)
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()


def test_model_commands(good: Path, untrained: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    _registry_with(models, v1=good, v2=good, v3=untrained)
    env = {**os.environ, "DONOR_MATCH_MODELS_DIR": str(models)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "model", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = json.loads(cli("list", "--json").stdout)
    assert [(v["version"], v["serving"]) for v in listed] == [
        ("v1", True),
        ("v2", False),
        ("v3", False),
    ]
    refused = cli("promote", "v3")
    assert refused.returncode == 3
    assert "popularity baseline" in refused.stderr and "Traceback" not in refused.stderr
    assert cli("promote", "v2").returncode == 0
    assert (models / CURRENT).read_text().strip() == "v2"
    unknown = cli("promote", "nope")
    assert unknown.returncode == 2 and "no model version 'nope'" in unknown.stderr
    assert cli("rollback").returncode == 0
    assert (models / CURRENT).read_text().strip() == "v1"
    again = cli("rollback")
    assert again.returncode == 2 and "nothing to roll back to" in again.stderr


def test_promote_model_mutation_is_for_admins_and_keeps_the_gate(
    served_graph: ServedGraph, good: Path, untrained: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    _registry_with(models, v1=good, v2=good, v3=untrained)
    settings = served_graph.app_settings.model_copy(update={"models_dir": models})
    app = create_app(settings, served_graph.store_settings, TEST_AUTH)
    admin = served_graph.token(Role.ADMIN, "ops")

    def promote(version: str, headers: dict[str, str]) -> dict:
        query = "mutation($v: String!) { promoteModel(version: $v) { version previous changed } }"
        return graphql(client, query, headers, v=version)

    with TestClient(app) as client:
        assert error_codes(promote("v2", {})) == ["UNAUTHENTICATED"]
        for role, subject in (
            (Role.DONOR, "donor-000001"),
            (Role.ANALYST, "ana"),
            (Role.INTEGRATOR, "platform"),
        ):
            assert error_codes(promote("v2", served_graph.token(role, subject))) == ["FORBIDDEN"]
        assert (models / CURRENT).read_text().strip() == "v1"

        refused = promote("v3", admin)
        assert error_codes(refused) == ["BAD_USER_INPUT"]
        assert "quality gate" in refused["errors"][0]["message"]
        assert error_codes(promote("v9", admin)) == ["NOT_FOUND"]

        body = promote("v2", admin)
        assert body["data"]["promoteModel"] == {"version": "v2", "previous": "v1", "changed": True}
        assert promote("v2", admin)["data"]["promoteModel"]["changed"] is False
        assert (models / CURRENT).read_text().strip() == "v2"


def test_history_series_reads_both_shapes() -> None:
    records = [{"epoch": 1, "loss": 0.5, "recall@20": 0.1}, {"epoch": 2, "loss": 0.4}]
    assert history_series(records) == [("loss", 0.5, 1), ("recall_at_20", 0.1, 1), ("loss", 0.4, 2)]
    assert history_series({"loss": [0.9, 0.8], "epochs": [{"epoch": 3, "ndcg": 0.2}]}) == [
        ("loss", 0.9, 1),
        ("loss", 0.8, 2),
        ("ndcg", 0.2, 3),
    ]


def test_training_runs_are_tracked_in_mlflow(good: Path, tmp_path: Path) -> None:
    version = tmp_path / "models" / "v1"
    shutil.copytree(good, version)
    # What train() left there: history.json (loss per step, evaluations) and tensorboard/.
    history = json.loads((good / "history.json").read_text())
    assert list(good.glob("tensorboard/**/events.out.tfevents*"))
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    kwargs = {
        "tracking_uri": uri,
        "artifacts_dir": tmp_path / "mlartifacts",
        "tensorboard_dir": tmp_path / "tensorboard",
    }
    run_id = track_training(version, losses=[0.9, 0.7, 0.6], **kwargs)
    assert track_training(version, losses=[0.9], **kwargs) == run_id  # logged once

    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    metrics = json.loads((good / "metrics.json").read_text())
    assert run.data.tags["snapshot_hash"] == metrics["snapshot_hash"]
    assert run.data.params["config.steps"] == str(metrics["config"]["steps"])
    assert run.data.metrics["model.recall_at_20"] == pytest.approx(metrics["model"]["recall@20"])
    losses = client.get_metric_history(run_id, "loss")
    assert sorted((m.step, round(m.value, 6)) for m in losses) == [(1, 0.9), (2, 0.7), (3, 0.6)]
    evaluations = client.get_metric_history(run_id, "recall_at_20")
    assert sorted((m.step, m.value) for m in evaluations if m.step) == [
        (e["step"], e["recall@20"]) for e in history["evaluations"]
    ]
    logged = {a.path for a in client.list_artifacts(run_id, "model")}
    assert {"model/metrics.json", "model/history.json", "model/saved_model"} <= logged
    assert "model/tensorboard" in logged
    assert list((tmp_path / "tensorboard" / "v1").rglob("events.out.tfevents*"))
