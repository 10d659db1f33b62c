"""Experiment tracking: every training run goes to MLflow (and TensorBoard), from its artifacts.

TF-free, and MLflow is imported only inside `track_training`, so neither is on the API's import
path. The run is logged from what training left in the version directory (metrics.json,
snapshot.json, history.json when train() writes one, TensorBoard event files when it writes them)
plus the per-step losses the caller collected through train()'s progress callback, so training
itself needs no hook. (Writing TensorBoard files needs the `tensorboard` package or TF's
low-level writer; train() does that, so this module only gathers them.)
Browse with `mlflow ui --backend-store-uri "$MLFLOW_TRACKING_URI"`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

EXPERIMENT = "donor-match"
HISTORY_FILE = "history.json"
_TB_EVENTS = "events.out.tfevents*"


def _metric_name(name: str) -> str:
    # MLflow names allow letters, digits, _ - . / and spaces: "recall@20" becomes "recall_at_20".
    return re.sub(r"[^\w\-./ ]", "_", name.replace("@", "_at_"))


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value


def _numbers(value: Any, prefix: str = "") -> dict[str, float]:
    return {
        _metric_name(key): float(item)
        for key, item in _flatten(value, prefix)
        if isinstance(item, int | float) and not isinstance(item, bool)
    }


def history_series(history: Any) -> list[tuple[str, float, int]]:
    """(metric, value, step) triples from a history.json in either common shape: a list of
    records, each with a `step` or `epoch` and numeric fields, or a mapping from a metric (or a
    group such as `steps`/`epochs`) to a list of numbers or of such records."""
    series: list[tuple[str, float, int]] = []

    def records(items: Sequence[Any], prefix: str) -> None:
        for index, item in enumerate(items, start=1):
            if isinstance(item, dict):
                step = int(item["step"] if "step" in item else item.get("epoch", index))
                for name, value in _numbers(
                    {k: v for k, v in item.items() if k not in {"step", "epoch"}}, prefix
                ).items():
                    series.append((name, value, step))
            elif isinstance(item, int | float) and not isinstance(item, bool):
                series.append((_metric_name(prefix.rstrip(".")), float(item), index))

    if isinstance(history, list):
        records(history, "")
    elif isinstance(history, dict):
        for key, value in history.items():
            if isinstance(value, list):
                # {"loss": [...]} names the series itself; {"steps": [{...}]} is a group.
                is_group = any(isinstance(item, dict) for item in value)
                records(value, "" if is_group else f"{key}.")
    return series


def track_training(
    version_dir: Path,
    *,
    tracking_uri: str,
    artifacts_dir: Path,
    tensorboard_dir: Path,
    losses: Sequence[float] = (),
    source: str = "cli",
    tags: dict[str, str] | None = None,
) -> str:
    """Log a trained version as an MLflow run and return the run id.

    Idempotent: a version already logged returns its existing run. `losses` are the per-step
    losses from train()'s progress callback (step i+1 is losses[i]); a history.json in the
    version directory adds whatever else training recorded. The version's TensorBoard event
    files are logged with its other files and copied to `tensorboard_dir/<version>`.
    """
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    version = version_dir.name
    metrics = json.loads((version_dir / "metrics.json").read_text())
    snapshot = json.loads((version_dir / "snapshot.json").read_text())
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        experiment_id = client.create_experiment(
            EXPERIMENT, artifact_location=artifacts_dir.resolve().as_uri()
        )
    logged = client.search_runs([experiment_id], f"tags.model_version = '{version}'")
    if logged:
        return logged[0].info.run_id

    series = [("loss", float(loss), step) for step, loss in enumerate(losses, start=1)]
    history_path = version_dir / HISTORY_FILE
    if history_path.is_file():
        from_history = history_series(json.loads(history_path.read_text()))
        if losses:  # the callback's losses are the same numbers as the history's
            from_history = [s for s in from_history if s[0] != "loss"]
        series += from_history

    run = client.create_run(
        experiment_id,
        run_name=version,
        tags={
            "model_version": version,
            "snapshot_hash": snapshot["hash"],
            "source": source,
            **(tags or {}),
        },
    )
    run_id = run.info.run_id
    try:
        params = {f"config.{k}": v for k, v in _flatten(metrics.get("config", {}))}
        params |= {"snapshot_hash": snapshot["hash"], "model_version": version}
        params |= {f"snapshot.{k}": v for k, v in _flatten(snapshot.get("counts", {}))}
        finals = _numbers({k: v for k, v in metrics.items() if k != "config"})
        timestamp = int(run.info.start_time)
        entries = [Metric(name, value, timestamp, 0) for name, value in finals.items()]
        entries += [Metric(name, value, timestamp, step) for name, value, step in series]
        # MLflow caps one batch at 1000 metrics; long runs log in chunks.
        for start in range(0, max(len(entries), 1), 1000):
            client.log_batch(
                run_id,
                metrics=entries[start : start + 1000],
                params=[Param(k, str(v)[:6000]) for k, v in params.items()] if start == 0 else [],
                tags=[RunTag("mlflow.note.content", f"model version {version}")]
                if start == 0
                else [],
            )
        client.log_artifacts(run_id, str(version_dir), "model")

        # train() writes TensorBoard event files into the version (tensorboard/); a copy per
        # version under tensorboard_dir lets one `tensorboard --logdir` show every run.
        written = sorted(version_dir.rglob(_TB_EVENTS))
        for event_file in written:
            target = tensorboard_dir / version / event_file.relative_to(version_dir).parent
            target.mkdir(parents=True, exist_ok=True)
            (target / event_file.name).write_bytes(event_file.read_bytes())
        client.set_terminated(run_id)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    return run_id
