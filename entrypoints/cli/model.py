"""`donor-match train`, `evaluate`, `benchmark` and `donor-match model`: the model's versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from donor_match.settings import AppSettings
from entrypoints.cli.common import console, open_graph, progress_bars
from graph_model.config import TrainConfig
from graph_model.evaluability import unevaluated_reason

if TYPE_CHECKING:
    from graph_model.registry import Registry

app = typer.Typer(help="Model versions: list, promote, roll back.", no_args_is_help=True)


def train(
    snapshot: Annotated[
        Path | None, typer.Option(help="Snapshot directory; default: export one from the store.")
    ] = None,
    steps: int = TrainConfig.steps,
    seed: int = 0,
    track: Annotated[
        bool, typer.Option(help="Log the run to MLflow (MLFLOW_TRACKING_URI) and TensorBoard.")
    ] = True,
    promote: Annotated[
        bool, typer.Option(help="Serve the new version if it passes the quality gate.")
    ] = True,
    min_test_donors: Annotated[
        int, typer.Option(min=1, help="Fewer test donors after the temporal split: the model "
                          "is registered unevaluated and not served.")
    ] = TrainConfig.min_test_donors,
) -> None:
    """Train the TF-GNN link predictor and register a new model version.

    Exit 0: trained (and served, with --promote, when the gate passed); 2: the snapshot is not
    a graph the schema allows, or has nothing to learn from; 3: the gate refused the version (it
    is registered, not served); 4: the holdout is too small to evaluate it: registered as
    unevaluated, not served (`donor-match model promote --force VERSION` serves it anyway).
    """
    train_and_promote(AppSettings(), snapshot, steps, seed, track, promote, min_test_donors)


def train_and_promote(settings: AppSettings, snapshot: Path | None, steps: int, seed: int,
                      track: bool = True, promote: bool = True,
                      min_test_donors: int = TrainConfig.min_test_donors) -> None:
    """`train`'s work: a snapshot (exported unless given), a new version, and with `promote`
    that version served when it passes the gate."""
    if snapshot is None:
        from etl.snapshot import export_snapshot

        with open_graph() as store:
            snapshot = export_snapshot(store, settings.snapshots_dir)
    version_dir = train_version(settings, snapshot, steps, seed, min_test_donors, track)
    metrics = json.loads((version_dir / "metrics.json").read_text())
    if (reason := unevaluated_reason(metrics)) is not None:
        console.print(
            f"[yellow]evaluation not possible:[/yellow] {reason}\n"
            f"registered {version_dir.name} as unevaluated; it is not served. Serve it anyway "
            f"with `donor-match model promote --force {version_dir.name}`, or load more "
            f"donations and train again."
        )
        raise typer.Exit(4)
    if promote:
        promote_new(settings, version_dir.name)
    else:
        console.print(f"registered {version_dir.name}; serve it with "
                      f"`donor-match model promote {version_dir.name}`")


def train_version(settings: AppSettings, snapshot: Path, steps: int, seed: int,
                  min_test_donors: int, track: bool) -> Path:
    """Train on `snapshot` with progress, print the metrics, log to MLflow; exit 2 when the
    snapshot is not a graph the schema allows."""
    from graph_model.snapshot import SnapshotError
    from graph_model.train import train as train_model

    losses: list[float] = []

    def report(step: int, total: int, loss: float) -> None:
        losses.append(loss)
        progress.update(task, completed=step, description=f"train (loss {loss:.4f})")

    try:
        with progress_bars() as progress:
            task = progress.add_task("train", total=steps)
            version_dir = train_model(
                snapshot, settings.models_dir,
                TrainConfig(steps=steps, seed=seed, min_test_donors=min_test_donors), report,
            )
    except SnapshotError as exc:
        console.print(f"[red]error:[/red] snapshot {snapshot}: {exc}")
        raise typer.Exit(2) from exc
    metrics = json.loads((version_dir / "metrics.json").read_text())
    table = Table("metric", "value", title=f"model {version_dir.name}")
    for key, value in sorted(_flatten(metrics).items()):
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    if track:
        from graph_model.tracking import track_training

        run_id = track_training(
            version_dir, tracking_uri=settings.mlflow_tracking_uri,
            artifacts_dir=settings.mlflow_artifacts_dir,
            tensorboard_dir=settings.tensorboard_dir, losses=losses, source="cli",
        )
        console.print(f"MLflow run {run_id} ({settings.mlflow_tracking_uri})")
    return version_dir


def promote_new(settings: AppSettings, version: str) -> None:
    """Promote a just-trained version through the gate. A first version is served on arrival
    (bootstrap); if it then fails its gate it is withdrawn, so nothing unjudged stays served."""
    models = registry(settings)
    if models.current() == version:
        report = models.gate(version)
        if not report.passed:
            models.withdraw(version)
            console.print(f"[red]refused:[/red] model {version} fails the quality gate: "
                          + "; ".join(report.reasons) + " (withdrawn: nothing is served)")
            raise typer.Exit(3)
    promote_version(settings, version)


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        flat: dict[str, object] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def benchmark(
    dataset: Annotated[
        Path, typer.Option(help="Directory with train.txt and test.txt (LightGCN format).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Popularity, GF-CF and the TF-GNN model side by side: full ranking, Recall/NDCG@20."""
    from graph_model.benchmark.dataset import DatasetError, load_dataset
    from graph_model.benchmark.harness import run_benchmark

    try:
        data = load_dataset(dataset)
    except DatasetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    result = run_benchmark(data, progress=console.print)
    table = Table("model", f"Recall@{result.k}", f"NDCG@{result.k}", "fit s", "eval s",
                  title=f"{result.dataset}: {result.evaluated_users} users evaluated")
    for model in result.models:
        table.add_row(model.name, f"{model.recall:.4f}", f"{model.ndcg:.4f}",
                      f"{model.fit_s:.1f}", f"{model.eval_s:.1f}")
    console.print(table)
    console.print(f"shipped: the {result.shipped} ({result.shipped_reason})")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))


def evaluate(
    snapshot: Annotated[
        Path | None, typer.Option(help="Snapshot directory; default: export one from the store.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("var/report"),
    steps: int = TrainConfig.steps,
    seed: int = 0,
) -> None:
    """GNN vs popularity vs BPR-MF with cold-start slices and the impact sweep: an HTML report."""
    if snapshot is None:
        from etl.snapshot import export_snapshot

        with open_graph() as store:
            snapshot = export_snapshot(store, AppSettings().snapshots_dir)
    from graph_model.report import EvaluateConfig, run_evaluation

    with progress_bars() as progress:
        task = progress.add_task("train", total=steps)
        results = run_evaluation(
            snapshot, out, EvaluateConfig(train=TrainConfig(steps=steps, seed=seed)),
            lambda step, total, loss: progress.update(task, completed=step),
        )
    k = results["k"]
    table = Table("model", "slice", f"Recall@{k}", f"NDCG@{k}", "MRR", f"coverage@{k}",
                  "popular share", title=f"evaluation of snapshot {results['snapshot_hash'][:8]}")
    for model, by_slice in results["metrics"].items():
        for name, m in by_slice.items():
            table.add_row(model, name, *(f"{m[c]:.4f}" for c in (
                f"recall@{k}", f"ndcg@{k}", "mrr", f"coverage@{k}", f"popularity_bias@{k}")))
    console.print(table)
    calibration = Table("model", f"ECE@{k}", f"ECE@{k} min-max", "ECE", f"hit rate@{k}",
                        title="calibrated probabilities (warm donors, holdout)")
    for model, c in results["calibration"].items():
        calibration.add_row(model, *(f"{c[n]:.4f}" for n in (
            f"ece@{k}", f"ece@{k}_minmax", "ece", f"hit_rate@{k}")))
    console.print(calibration)
    typer.echo(out / "report.html")


def registry(settings: AppSettings) -> Registry:
    from graph_model.registry import Registry

    return Registry(settings.models_dir, settings.promotion_tolerance)


@app.command("list")
def model_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")] = False,
) -> None:
    """Every registered version with its metrics; * marks the served one."""
    settings = AppSettings()
    versions = registry(settings).versions()
    if as_json:
        typer.echo(json.dumps([
            {"version": v.version, "serving": v.serving, "promoted": v.promoted,
             "snapshot_hash": v.snapshot_hash, "k": v.metrics.get("k"),
             "model": v.metrics.get("model"), "popularity": v.metrics.get("popularity")}
            for v in versions
        ], indent=2))
        return
    table = Table("", "version", "recall@k", "ndcg@k", "popularity recall@k", "snapshot",
                  title=f"models in {settings.models_dir}")
    for v in versions:
        figures = [v.headline("recall"), v.headline("ndcg"), v.headline("recall", "popularity")]
        table.add_row("*" if v.serving else "", v.version,
                      *("-" if f is None else f"{f:.4f}" for f in figures),
                      (v.snapshot_hash or "?")[:16])
    console.print(table if versions else "no model versions yet: run `donor-match train`")


@app.command("promote")
def model_promote(
    version: Annotated[str, typer.Argument(help="A version from `model list`.")],
    force: Annotated[
        bool, typer.Option(help="Serve it despite the gate's judgement (e.g. an unevaluated "
                           "model); never a version whose artifacts do not load.")
    ] = False,
) -> None:
    """Serve VERSION if it passes the quality gate (exit 3 and the reasons when it does not)."""
    promote_version(AppSettings(), version, force)


def promote_version(settings: AppSettings, version: str, force: bool = False) -> None:
    """Serve `version` through the gate (or past it, with `force`) and say what changed; exit 3
    when the gate refuses it, 2 when it cannot be served at all."""
    from graph_model.registry import GateFailedError, RegistryError

    try:
        change = registry(settings).promote(version, force=force)
    except GateFailedError as exc:
        console.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(3) from exc
    except RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if change.action == "unchanged":
        console.print(f"{version} is already served")
    else:
        if change.gate is not None and not change.gate.passed:
            console.print("[yellow]forced past the quality gate:[/yellow] "
                          + "; ".join(change.gate.reasons))
        console.print(f"serving {version} (was {change.previous or 'nothing'}); "
                      "API processes switch within seconds")


@app.command("rollback")
def model_rollback() -> None:
    """Serve the version promoted before the current one again."""
    from graph_model.registry import RegistryError

    try:
        change = registry(AppSettings()).rollback()
    except RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"rolled back from {change.previous} to {change.version}")
