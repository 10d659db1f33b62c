"""Report classes build their dicts from their fields (dataclasses.asdict): every field is there,
converted to JSON where it is not JSON already, and nothing else is."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from etl.pipeline import EntityReport, LoadReport
from mlops.drift import DriftReport, Feedback
from mlops.pipeline import Manifest, Step


def test_a_load_report_is_its_fields_as_json() -> None:
    report = LoadReport("load-1", directory=Path("/data/loads/load-1"), rejects=2,
                        seconds=1.23456, notes=["dated by posting"])
    report.entities["donors"] = EntityReport(read=10, accepted=8, rejected=2, seconds=0.5)
    out = json.loads(json.dumps(report.to_dict()))
    assert set(out) == {f.name for f in fields(LoadReport)}
    assert out["directory"] == "/data/loads/load-1" and out["seconds"] == 1.235
    assert out["entities"]["donors"] == {
        **{f.name: getattr(report.entities["donors"], f.name) for f in fields(EntityReport)},
        "rows_per_s": 20.0,
    }
    assert LoadReport("load-2").to_dict()["directory"] is None


def test_a_manifest_is_its_fields_but_its_own_path() -> None:
    manifest = Manifest("run-1", Path("/runs/run-1/manifest.json"), "2026-12-04T00:00:00+00:00",
                        status="succeeded", version="v1")
    manifest.steps.append(Step("snapshot", "done", 1.5, {"hash": "abc"}))
    out = json.loads(json.dumps(manifest.to_dict()))
    assert set(out) == {f.name for f in fields(Manifest)} - {"path"}
    assert out["steps"] == [{"name": "snapshot", "status": "done", "seconds": 1.5,
                             "outputs": {"hash": "abc"}}]


def test_a_drift_report_carries_its_feedback_rates() -> None:
    report = DriftReport("v1", "ref", "snap", {"amount": 0.25},
                         Feedback(3600, 10, {"clicked": 2}))
    out = json.loads(json.dumps(report.to_dict()))
    assert out["psi"] == {"amount": 0.25}
    assert out["feedback"] == {"window_s": 3600, "matches_served": 10, "events": {"clicked": 2},
                               "rates": {"clicked": 0.2, "donated": 0.0, "dismissed": 0.0}}
    assert report.to_dict()["feedback"] is not report.to_dict()["feedback"]  # a copy each time
