"""`donor-match pipeline` and `donor-match drift`: the model's batch jobs (mlops)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from donor_match.settings import AppSettings
from entrypoints.cli.common import console, open_graph, progress_bars
from graph_model.config import TrainConfig

pipeline_app = typer.Typer(help="The retraining pipeline.", no_args_is_help=True)
drift_app = typer.Typer(help="Drift monitoring.", no_args_is_help=True)


@pipeline_app.command("run")
def pipeline_run(
    steps: int = TrainConfig.steps,
    seed: int = 0,
) -> None:
    """Snapshot, validate, train, evaluate, gate, register, promote (idempotent; exit 3: the
    gate refused the new version). The manifest lands in DONOR_MATCH_PIPELINE_DIR/<run id>/."""
    from mlops.pipeline import Pipeline, PipelineError

    with open_graph() as store, progress_bars() as progress:
        task = progress.add_task("train", total=steps, visible=False)
        pipeline = Pipeline(
            store, AppSettings(), TrainConfig(steps=steps, seed=seed), say=console.print,
            progress=lambda step, total, loss: progress.update(
                task, visible=True, completed=step, description=f"train (loss {loss:.4f})"
            ),
        )
        try:
            manifest = pipeline.run()
        except PipelineError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    console.print(f"pipeline run {manifest.run_id}: {manifest.status}, version "
                  f"{manifest.version}; manifest {manifest.path}")
    typer.echo(manifest.path)
    if manifest.status == "refused":
        raise typer.Exit(3)


@drift_app.command("export")
def drift_export(
    snapshot: Annotated[
        Path | None, typer.Option(help="Snapshot to judge; default: export one from the store.")
    ] = None,
    window_hours: Annotated[
        int, typer.Option(min=1, help="Feedback window: events and matches of the last N hours.")
    ] = 24,
    textfile: Annotated[
        Path | None, typer.Option(help="Also write the metrics here (node exporter textfile).")
    ] = None,
) -> None:
    """PSI per feature against the served model's training snapshot, and the feedback rate, as
    Prometheus metrics: pushed to DONOR_MATCH_PUSHGATEWAY_URL when set, else printed."""
    from mlops.drift import DriftError, drift_report, export

    settings = AppSettings()
    with open_graph() as store:
        if snapshot is None:
            from etl.snapshot import export_snapshot

            snapshot = export_snapshot(store, settings.snapshots_dir)
        try:
            report = drift_report(snapshot, settings.models_dir, settings.snapshots_dir, store,
                                  window_hours * 3600)
        except DriftError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    text = export(report, settings.pushgateway_url)
    table = Table("feature", "PSI", title=f"drift of {report.snapshot[:16]} against model "
                  f"{report.model_version}")
    for name, value in report.psi.items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)
    console.print(json.dumps(report.to_dict()["feedback"]))
    if textfile is not None:
        textfile.parent.mkdir(parents=True, exist_ok=True)
        partial = textfile.with_name(f".{textfile.name}.tmp")  # collectors never see half a file
        partial.write_text(text)
        partial.replace(textfile)
    if settings.pushgateway_url:
        console.print(f"pushed to {settings.pushgateway_url} (job donor-match-drift)")
    else:
        typer.echo(text, nl=False)
