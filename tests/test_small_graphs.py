"""Training takes every graph the schema allows, says what is wrong with one it does not, and
registers a model its holdout cannot judge as unevaluated: never served unless forced. The
quality gate refuses what it cannot judge. Every snapshot here is written by the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from etl.snapshot import write_snapshot
from etl.synth import SynthConfig, generate
from etl.tables import TABLE_SCHEMAS, Tables
from graph_model.artifacts import CURRENT, load_artifact, read_history
from graph_model.config import TrainConfig
from graph_model.registry import GateFailedError, Registry
from graph_model.snapshot import SnapshotError, read_snapshot

CLI = [sys.executable, "-m", "entrypoints.cli"]
QUICK = TrainConfig(steps=3, eval_every=3, embedding_dim=8, seed=0)
SMALL = SynthConfig(donors=80, nonprofits=20, causes=4, regions=3, donations=1_200, seed=5)


def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS[name])


def replace(tables: Tables, name: str, rows: list[dict[str, Any]]) -> Tables:
    return {**tables, name: table(name, rows)}


def tiny(distinct_ts: bool = True) -> Tables:
    """Six donors, three nonprofits, twelve donations: far too few test donors to judge."""
    donations = [
        {"id": f"g{i}", "donor_id": f"d{i % 6}", "nonprofit_id": f"n{i % 3}", "amount": 10.0,
         "ts": 1_600_000_000 + (i * 86_400 if distinct_ts else 0)}
        for i in range(12)
    ]
    return {
        "regions": table("regions", [{"id": "r1", "name": "North"}]),
        "causes": table("causes", [{"id": "c1", "name": "Reading"}]),
        "donors": table("donors", [{"id": f"d{i}", "region_id": "r1" if i % 2 else None}
                                   for i in range(6)]),
        "nonprofits": table("nonprofits", [{"id": f"n{i}", "name": f"N{i}", "region_id": "r1"}
                                           for i in range(3)]),
        "donor_causes": table("donor_causes", [{"donor_id": "d0", "cause_id": "c1"}]),
        "nonprofit_causes": table("nonprofit_causes", [{"nonprofit_id": "n0", "cause_id": "c1"}]),
        "donations": table("donations", donations),
    }


def snapshot_of(tables: Tables, directory: Path) -> Path:
    write_snapshot(tables, directory)
    return directory


def _without_regions_or_causes(tables: Tables) -> Tables:
    donors = tables["donors"].to_pylist()
    for donor in donors[::3]:
        donor["region_id"] = None  # a third of the donors have no region
    nonprofits = tables["nonprofits"].to_pylist()
    nonprofits += [{"id": f"new-{i}", "name": "No gifts yet", "region_id": None}
                   for i in range(3)]  # nonprofits without donations, region or causes
    stated = [link for link in tables["donor_causes"].to_pylist()
              if int(link["donor_id"].rsplit("-", 1)[-1]) % 2]  # half state no cause
    tables = replace(tables, "donors", donors)
    tables = replace(tables, "nonprofits", nonprofits)
    return replace(tables, "donor_causes", stated)


def _one_region_one_cause(tables: Tables) -> Tables:
    region, cause = tables["regions"].to_pylist()[0], tables["causes"].to_pylist()[0]
    tables = replace(tables, "regions", [region])
    tables = replace(tables, "causes", [cause])
    for name in ("donors", "nonprofits"):
        tables = replace(tables, name, [{**row, "region_id": region["id"]}
                                        for row in tables[name].to_pylist()])
    for name, owner in (("donor_causes", "donor_id"), ("nonprofit_causes", "nonprofit_id")):
        owners = sorted({row[owner] for row in tables[name].to_pylist()})
        tables = replace(tables, name, [{owner: o, "cause_id": cause["id"]} for o in owners])
    return tables


def _no_regions_no_causes(tables: Tables) -> Tables:
    tables = {**tables, **{name: table(name, []) for name in
                           ("regions", "causes", "donor_causes", "nonprofit_causes")}}
    for name in ("donors", "nonprofits"):
        tables = replace(tables, name, [{**row, "region_id": None}
                                        for row in tables[name].to_pylist()])
    return tables


@pytest.mark.parametrize("shape", [_without_regions_or_causes, _one_region_one_cause,
                                   _no_regions_no_causes], ids=lambda f: f.__name__[1:])
def test_training_takes_every_graph_the_schema_allows(tmp_path: Path, shape: Any) -> None:
    from graph_model.train import train

    tables = shape(generate(SMALL))
    version = train(snapshot_of(tables, tmp_path / "snapshot"), tmp_path / "models", QUICK)
    artifact = load_artifact(version)
    assert artifact.donor_ids == sorted(tables["donors"].column("id").to_pylist())
    assert len(artifact.nonprofit_ids) == tables["nonprofits"].num_rows
    assert np.isfinite(artifact.donor_embeddings).all()
    assert np.isfinite(artifact.nonprofit_embeddings).all()
    metrics = json.loads((version / "metrics.json").read_text())
    assert metrics["evaluation"]["status"] == "evaluated", metrics["evaluation"]
    assert metrics["test"]["donors"] >= QUICK.min_test_donors


def test_snapshot_checks_name_table_column_rows_and_an_example(tmp_path: Path) -> None:
    base = tiny()
    cases = [
        (replace(base, "donations", [*base["donations"].to_pylist(),
                                     {"id": "g-x", "donor_id": "ghost", "nonprofit_id": "n0",
                                      "amount": 1.0, "ts": 1_600_000_000}]),
         "donations.donor_id: 1 of 13 rows name a donor that is not in donors.parquet "
         "(e.g. 'ghost' in the row with id 'g-x')"),
        (replace(base, "donors", [*base["donors"].to_pylist(), {"id": "d7", "region_id": "r9"}]),
         "donors.region_id: 1 of 7 rows name a region that is not in regions.parquet "
         "(e.g. 'r9' in the row with id 'd7')"),
        (replace(base, "donors", [*base["donors"].to_pylist(), {"id": "d1", "region_id": None}]),
         "donors.id: 1 ids occur more than once among 7 rows (e.g. 'd1')"),
        (replace(base, "nonprofit_causes", [{"nonprofit_id": "n0", "cause_id": "c9"}]),
         "nonprofit_causes.cause_id: 1 of 1 rows name a cause that is not in causes.parquet "
         "(e.g. 'c9' in the row with nonprofit_id 'n0')"),
        (replace(base, "donations", [{**row, "nonprofit_id": None} if row["id"] == "g4" else row
                                     for row in base["donations"].to_pylist()]),
         "donations.nonprofit_id: 1 of 12 rows have no nonprofit (e.g. the row with id 'g4')"),
    ]
    for index, (tables, message) in enumerate(cases):
        with pytest.raises(SnapshotError) as info:
            read_snapshot(snapshot_of(tables, tmp_path / str(index)))
        assert str(info.value) == message
    # Donors without a region are allowed: they read, with no region (-1).
    snapshot = read_snapshot(snapshot_of(base, tmp_path / "ok"))
    assert snapshot.donor_region.tolist() == [-1, 0, -1, 0, -1, 0]


@pytest.fixture(scope="module")
def unevaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graph_model.train import train

    root = tmp_path_factory.mktemp("unevaluated")
    return train(snapshot_of(tiny(), root / "snapshot"), root / "models", QUICK)


def test_too_little_data_trains_an_unevaluated_model_that_is_never_served(
    unevaluated: Path,
) -> None:
    metrics = json.loads((unevaluated / "metrics.json").read_text())
    evaluation = metrics["evaluation"]
    assert evaluation["status"] == "unevaluated" and not evaluation["possible"]
    assert evaluation["min_test_donors"] == 20
    assert evaluation["test_donors"] < 20
    assert f"leaves {evaluation['test_donors']} test donors" in evaluation["reason"] or (
        "no test pairs" in evaluation["reason"])
    assert metrics["model"] == {"recall@20": None, "ndcg@20": None}  # no verdict from noise
    assert np.isfinite(load_artifact(unevaluated).donor_embeddings).all()  # it did train
    root = unevaluated.parent
    assert not (root / CURRENT).exists()  # the first version, yet not served on arrival
    registry = Registry(root)
    report = registry.gate(unevaluated.name)
    assert report.reasons == [f"it is unevaluated: {evaluation['reason']}"]
    with pytest.raises(GateFailedError, match="unevaluated"):
        registry.promote(unevaluated.name)
    assert registry.current() is None


def test_one_timestamp_for_every_donation_still_trains(tmp_path: Path) -> None:
    from graph_model.train import train

    version = train(snapshot_of(tiny(distinct_ts=False), tmp_path / "snapshot"),
                    tmp_path / "models", QUICK)
    evaluation = json.loads((version / "metrics.json").read_text())["evaluation"]
    assert evaluation["reason"].startswith("no temporal split is possible: no donations before "
                                           "the split time")
    assert "(1 distinct timestamps)" in evaluation["reason"]
    assert not (tmp_path / "models" / CURRENT).exists()


def _copy_with(unevaluated: Path, root: Path, name: str, **changes: Any) -> str:
    shutil.copytree(unevaluated, root / name)
    metrics = json.loads((root / name / "metrics.json").read_text())
    metrics["evaluation"] = {"status": "evaluated", "possible": True}
    metrics["model"] = {"recall@20": 0.5, "ndcg@20": 0.3}
    metrics["popularity"] = {"recall@20": 0.2, "ndcg@20": 0.1}
    for key, value in changes.items():
        metrics[key] = value
    (root / name / "metrics.json").write_text(json.dumps(metrics))
    return name


def test_the_gate_refuses_what_it_cannot_judge(unevaluated: Path, tmp_path: Path) -> None:
    """Loadable versions whose recorded evaluation has no test pairs, too few test donors, or a
    model below popularity are refused with a clear reason and never promoted."""
    cases = {
        "no-pairs": ({"test": {"pairs": 0, "donors": 0}},
                     "its evaluation has no test pairs: nothing to judge it by"),
        "few-donors": ({"test": {"pairs": 40, "donors": 7}},
                       "its evaluation has 7 test donors; at least 20 are needed to judge it"),
        "below-popularity": ({"test": {"pairs": 400, "donors": 90},
                              "model": {"recall@20": 0.1, "ndcg@20": 0.3}},
                             "recall@20 0.1000 is worse than the popularity baseline's 0.2000"),
        "unsaid": ({"test": {}}, "metrics.json does not say how many test pairs and donors "
                                 "judged it"),
    }
    registry = Registry(tmp_path)
    for name, (changes, reason) in cases.items():
        _copy_with(unevaluated, tmp_path, name, **changes)
        report = registry.gate(name)
        assert report.reasons == [reason], (name, report.reasons)
        with pytest.raises(GateFailedError, match="fails the quality gate"):
            registry.promote(name)
    good = _copy_with(unevaluated, tmp_path, "judged", test={"pairs": 400, "donors": 90})
    assert registry.gate(good).passed
    assert registry.current() is None and read_history(tmp_path) == []
    # --force overrides the judgement, never artifacts that do not load.
    (tmp_path / "few-donors" / "donor_embeddings.npy").write_bytes(b"broken")
    with pytest.raises(GateFailedError, match="do not load"):
        registry.promote("few-donors", force=True)
    assert registry.promote("no-pairs", force=True).action == "promote"
    assert registry.current() == "no-pairs"
    assert [e["action"] for e in read_history(tmp_path)] == ["force-promote"]


def test_cli_train_exits_4_and_promote_force_serves(tmp_path: Path) -> None:
    env = {**os.environ, "DONOR_MATCH_MODELS_DIR": str(tmp_path / "models"),
           "DONOR_MATCH_DATA_DIR": str(tmp_path / "var")}
    snapshot = snapshot_of(tiny(), tmp_path / "snapshot")
    done = subprocess.run([*CLI, "train", "--snapshot", str(snapshot), "--steps", "2",
                           "--no-track"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 4, done.stderr
    assert "evaluation not possible: the temporal split leaves" in done.stderr
    versions = [p.name for p in (tmp_path / "models").iterdir() if (p / "metrics.json").exists()]
    assert len(versions) == 1 and not (tmp_path / "models" / CURRENT).exists()
    assert f"donor-match model promote --force {versions[0]}" in done.stderr

    refused = subprocess.run([*CLI, "model", "promote", versions[0]], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 3 and "it is unevaluated" in refused.stderr
    forced = subprocess.run([*CLI, "model", "promote", "--force", versions[0]], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert forced.returncode == 0, forced.stderr
    assert "forced past the quality gate" in forced.stderr
    assert (tmp_path / "models" / CURRENT).read_text().strip() == versions[0]

    empty = replace(tiny(), "donations", [])
    none = subprocess.run([*CLI, "train", "--snapshot", str(snapshot_of(empty, tmp_path / "e")),
                           "--no-track"], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert none.returncode == 2 and "nothing to learn from: 0 donations" in none.stderr


def test_a_first_version_below_popularity_is_withdrawn_by_train(
    unevaluated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first version is served on arrival (bootstrap); `train --promote` then gates it and
    withdraws it when it fails, so a useless first model is not left serving."""
    import typer

    from donor_match.settings import AppSettings
    from entrypoints.cli import model
    from graph_model.artifacts import registry_lock, set_current

    name = _copy_with(unevaluated, tmp_path, "v1", test={"pairs": 400, "donors": 90},
                      model={"recall@20": 0.1, "ndcg@20": 0.05})
    with registry_lock(tmp_path):
        set_current(tmp_path, name, action="bootstrap")
    monkeypatch.setenv("DONOR_MATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(typer.Exit) as info:
        model.promote_new(AppSettings(), name)
    assert info.value.exit_code == 3
    assert not (tmp_path / CURRENT).exists()
    assert [e["action"] for e in read_history(tmp_path)] == ["bootstrap", "withdraw"]
