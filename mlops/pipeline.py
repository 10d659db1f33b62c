"""The retraining pipeline: snapshot → validate → train → evaluate → quality gate → register →
promote, with every step's outputs in a manifest (`<pipeline_dir>/<run id>/manifest.json`).

Idempotent: the snapshot is content-addressed, so an unchanged graph gives the same snapshot hash;
a version already trained on that snapshot with the same configuration is reused instead of
trained again, its MLflow run is found rather than logged twice, and promoting the version
already served changes nothing. The nightly CronJob runs it (`donor-match pipeline run`).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from donor_match.settings import AppSettings
from graph_model.config import TrainConfig
from graph_model.registry import Registry
from graph_model.snapshot import read_snapshot
from graph_store import GraphStore

# Fewer rows than this and the temporal split leaves too little to train or evaluate on.
MIN_DONATIONS = 50

Progress = Callable[[int, int, float], None]
Say = Callable[[str], None]


class PipelineError(Exception):
    """A step failed; the manifest names it and says why."""


@dataclass
class Step:
    name: str
    status: str = "running"  # running, done, skipped, refused, failed
    seconds: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    run_id: str
    path: Path
    started: str
    status: str = "running"  # running, succeeded, refused (gate), failed
    snapshot_hash: str | None = None
    version: str | None = None
    error: str | None = None
    steps: list[Step] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # The manifest's own path is where it is written, not part of it.
        return {key: value for key, value in asdict(self).items() if key != "path"}

    def save(self) -> None:
        # Written after every step, via a rename, so a killed run leaves a readable manifest.
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        temporary.replace(self.path)


def _validate(snapshot_dir: Path) -> dict[str, Any]:
    """The snapshot reads as a graph (every reference resolves) with enough to learn from."""
    try:
        snapshot = read_snapshot(snapshot_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise PipelineError(f"snapshot {snapshot_dir} does not read: {exc}") from exc
    counts = {
        "donors": len(snapshot.donor_ids),
        "nonprofits": len(snapshot.nonprofit_ids),
        "donations": len(snapshot.donations),
        "donors_with_donations": len(set(snapshot.donations.donor.tolist())),
        "distinct_timestamps": len(set(snapshot.donations.ts.tolist())),
    }
    problems = []
    if counts["donations"] < MIN_DONATIONS:
        problems.append(f"{counts['donations']} donations (at least {MIN_DONATIONS} needed)")
    if counts["nonprofits"] < 2:
        problems.append(f"{counts['nonprofits']} nonprofits (a ranking needs at least 2)")
    if counts["distinct_timestamps"] < 2:
        problems.append("every donation has the same timestamp: no temporal split is possible")
    if problems:
        raise PipelineError(
            f"snapshot {snapshot.hash[:16]} is not trainable: " + "; ".join(problems)
        )
    return counts


class Pipeline:
    def __init__(
        self,
        store: GraphStore,
        settings: AppSettings,
        config: TrainConfig = TrainConfig(),
        say: Say = lambda _: None,
        progress: Progress | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._config = config
        self._say = say
        self._progress = progress
        self._registry = Registry(settings.models_dir, settings.promotion_tolerance)

    def run(self) -> Manifest:
        """Run every step; returns the manifest (status succeeded or refused) or raises
        PipelineError after recording the failed step in it."""
        started = datetime.now(UTC)
        run_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        directory = self._settings.pipeline_dir / run_id
        directory.mkdir(parents=True)
        manifest = Manifest(run_id, directory / "manifest.json", started.isoformat())
        manifest.save()
        try:
            self._steps(manifest)
        except Exception as exc:
            manifest.status, manifest.error = "failed", str(exc)
            if manifest.steps and manifest.steps[-1].status == "running":
                manifest.steps[-1].status = "failed"
            manifest.save()
            if isinstance(exc, PipelineError):
                raise
            failed = manifest.steps[-1].name if manifest.steps else "start"
            raise PipelineError(f"step {failed} failed: {exc}") from exc
        manifest.save()
        return manifest

    def _step(self, manifest: Manifest, name: str) -> Step:
        step = Step(name)
        manifest.steps.append(step)
        manifest.save()
        self._say(f"{name} ...")
        return step

    def _done(self, manifest: Manifest, step: Step, began: float, status: str = "done") -> None:
        step.status, step.seconds = status, round(time.monotonic() - began, 2)
        manifest.save()

    def _steps(self, manifest: Manifest) -> None:
        settings, registry = self._settings, self._registry

        began, step = time.monotonic(), self._step(manifest, "snapshot")
        from etl.snapshot import export_snapshot

        snapshot_dir = export_snapshot(self._store, settings.snapshots_dir)
        info = json.loads((snapshot_dir / "snapshot.json").read_text())
        manifest.snapshot_hash = info["hash"]
        step.outputs = {
            "path": str(snapshot_dir),
            "hash": info["hash"],
            "counts": info.get("counts", {}),
        }
        self._done(manifest, step, began)

        began, step = time.monotonic(), self._step(manifest, "validate")
        step.outputs = _validate(snapshot_dir)
        self._done(manifest, step, began)

        began, step = time.monotonic(), self._step(manifest, "train")
        config = asdict(self._config)
        existing = registry.find(info["hash"], config)
        losses: list[float] = []  # per-step, from train()'s callback, for MLflow
        if existing is not None:
            version_dir = settings.models_dir / existing.version
            step.outputs = {
                "version": existing.version,
                "reused": True,
                "reason": "a version trained on this snapshot with this "
                "configuration exists; not training again",
            }
            self._say(f"train: reusing {existing.version} (snapshot unchanged)")
        else:
            from graph_model.train import train  # TensorFlow only when there is work for it

            def progress(step_no: int, total: int, loss: float) -> None:
                losses.append(loss)
                if self._progress is not None:
                    self._progress(step_no, total, loss)

            version_dir = train(snapshot_dir, settings.models_dir, self._config, progress)
            step.outputs = {"version": version_dir.name, "reused": False, "steps": len(losses)}
        manifest.version = version_dir.name
        self._done(manifest, step, began, "skipped" if existing else "done")

        began, step = time.monotonic(), self._step(manifest, "evaluate")
        metrics = json.loads((version_dir / "metrics.json").read_text())
        step.outputs = {
            key: metrics[key]
            for key in ("k", "model", "popularity", "test", "evaluation", "served", "selection",
                        "calibration")
            if key in metrics
        }
        self._done(manifest, step, began)

        began, step = time.monotonic(), self._step(manifest, "gate")
        report = registry.gate(version_dir.name)
        step.outputs = report.to_dict()
        self._done(manifest, step, began, "done" if report.passed else "refused")

        began, step = time.monotonic(), self._step(manifest, "register")
        from graph_model.tracking import track_training

        run_id = track_training(
            version_dir,
            tracking_uri=settings.mlflow_tracking_uri,
            artifacts_dir=settings.mlflow_artifacts_dir,
            tensorboard_dir=settings.tensorboard_dir,
            losses=losses,
            source="pipeline",
            tags={
                "pipeline_run": manifest.run_id,
                "gate": "passed" if report.passed else "refused",
            },
        )
        step.outputs = {
            "version": version_dir.name,
            "mlflow_run_id": run_id,
            "tracking_uri": settings.mlflow_tracking_uri,
        }
        self._done(manifest, step, began)

        began, step = time.monotonic(), self._step(manifest, "promote")
        if not report.passed:
            # The very first version is served on arrival; one that fails its gate is withdrawn.
            withdrawn = registry.withdraw(version_dir.name)
            step.outputs = {
                "promoted": False,
                "reasons": report.reasons,
                "withdrawn": withdrawn,
                "serving": registry.current(),
            }
            manifest.status = "refused"
            self._done(manifest, step, began, "refused")
            return
        change = registry.promote(version_dir.name)
        step.outputs = {
            "promoted": change.action == "promote",
            "action": change.action,
            "version": change.version,
            "previous": change.previous,
        }
        manifest.status = "succeeded"
        self._done(manifest, step, began, "done" if change.action == "promote" else "skipped")
