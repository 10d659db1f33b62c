"""`donor-match`: the command line. Commands only translate arguments; work happens elsewhere."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from donor_match.settings import AppSettings
from graph_model.config import TrainConfig
from graph_store import GraphStore, StoreError, StoreSettings, open_store

if TYPE_CHECKING:
    from graph_store.embedded import LocalFalkorDB
    from graph_store.local_neo4j import LocalNeo4j

app = typer.Typer(help="Match donors with nonprofits over a graph.", no_args_is_help=True)
store_app = typer.Typer(help="The graph store (embedded FalkorDB or Neo4j).", no_args_is_help=True)
etl_app = typer.Typer(help="Data into the graph, snapshots out of it.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(etl_app, name="etl")
# Messages are not wrapped at the terminal's width: a path or id broken across lines cannot be
# copied back.
console = Console(stderr=True, soft_wrap=True)

SAMPLE_QUERY = """query {{
  matches(donorId: "{donor_id}", first: 5) {{
    rank score nonprofit {{ id name causes {{ name }} region {{ name }} }}
  }}
}}"""


@contextmanager
def _store() -> Iterator[GraphStore]:
    store = open_store(StoreSettings())
    try:
        yield store
    except StoreError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        store.close()


def _progress() -> Progress:
    return Progress(
        # The ETA: training a large graph takes tens of minutes at a steady rate per step.
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(), console=console,
    )


def _local_store() -> LocalFalkorDB | LocalNeo4j:
    """The local servers `store start|stop` manage for the configured backend: the product's
    and the analysts'."""
    from graph_store.embedded import LocalFalkorDB
    from graph_store.local_neo4j import LocalNeo4j, Neo4jSetupError

    settings = StoreSettings()
    if settings.backend == "falkordb":
        return LocalFalkorDB(settings)
    try:
        return LocalNeo4j(settings)
    except Neo4jSetupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@store_app.command("start")
def store_start() -> None:
    """Start the local store on 127.0.0.1 (data under DONOR_MATCH_DATA_DIR): the embedded
    FalkorDB and the analysts' FalkorDB, or with DONOR_MATCH_STORE=neo4j the Neo4j server and the
    analysts' Neo4j server."""
    from graph_store.local_neo4j import Neo4jSetupError

    try:
        statuses = _local_store().start()
    except (Neo4jSetupError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for status in statuses:
        console.print(f"{status.name} running on 127.0.0.1:{status.port} (pid {status.pid}), "
                      f"data in {status.data_dir}")


@store_app.command("stop")
def store_stop() -> None:
    """Stop the local store cleanly (FalkorDB flushes its append-only file, Neo4j checkpoints)."""
    _local_store().stop()
    console.print(f"{StoreSettings().backend} stopped")


@store_app.command("status")
def store_status() -> None:
    """Say which backend is configured, its version, URI and data directory, and whether it
    answers."""
    settings = StoreSettings()
    with _store() as store:
        store.ping()
        console.print(f"{settings.backend} {store.version()} is up at {store.uri}, "
                      f"data in {settings.data_dir.resolve()}")


@store_app.command("init")
def store_init() -> None:
    """Create the constraints and indexes of neo4j/schema.cypher (idempotent)."""
    with _store() as store:
        store.apply_schema()
        console.print(f"schema applied to {store.uri}")


@etl_app.command("synth")
def etl_synth(
    out: Annotated[Path, typer.Option(help="Directory for the Parquet tables.")],
    donors: int = 2000,
    nonprofits: int = 200,
    causes: int = 12,
    regions: int = 10,
    donations: int = 30_000,
    seed: int = 7,
    stream: Annotated[
        bool,
        typer.Option(help="Stream in constant memory (millions of rows) with contact details, "
                     "recurring donors, a December peak and cold-start donors/nonprofits."),
    ] = False,
) -> None:
    """Generate a seeded synthetic graph as canonical Parquet tables."""
    if stream:
        from etl.progress import RichProgress
        from etl.synth_stream import StreamConfig
        from etl.synth_stream import stream as stream_tables

        try:
            stream_config = StreamConfig(donors=donors, nonprofits=nonprofits, causes=causes,
                                  regions=regions, donations=donations, seed=seed)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        with RichProgress(console, "synth") as progress:
            counts = stream_tables(stream_config, out, progress.advance)
        console.print(f"wrote {', '.join(f'{n} {k}' for k, n in counts.items())} to {out}")
        return

    from etl.snapshot import write_snapshot
    from etl.synth import SynthConfig, generate

    try:
        config = SynthConfig(donors, nonprofits, causes, regions, donations, seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    tables = generate(config)
    write_snapshot(tables, out)
    console.print(f"wrote {', '.join(f'{t.num_rows} {n}' for n, t in tables.items())} to {out}")


@etl_app.command("load")
def etl_load(
    path: Annotated[Path, typer.Argument(help="A file, or a directory of input files.")],
    fmt: Annotated[
        str,
        typer.Option("--format", help="canonical (by extension), csv, jsonl, parquet, "
                     "donorschoose or irs-bmf."),
    ] = "canonical",
    mapping: Annotated[
        Path | None, typer.Option(help="Column-mapping YAML (see config/mappings/).")
    ] = None,
    batch_size: int = 2000,
    max_reject_rate: Annotated[
        float, typer.Option(help="Fail when an entity's rejected share exceeds this (0-1).")
    ] = 0.05,
    min_rows_for_rate: Annotated[
        int, typer.Option(help="Judge the reject rate once an entity has this many rows.")
    ] = 1000,
    future_tolerance_s: Annotated[
        float, typer.Option(help="How far in the future a date may lie, seconds.")
    ] = 86_400.0,
    loads_dir: Annotated[
        Path | None,
        typer.Option(help="Manifests, checkpoints, rejects; default DONOR_MATCH_DATA_DIR/loads."),
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="Ignore the checkpoint of a killed run of the same load.")
    ] = False,
    ts_fallback: Annotated[
        str, typer.Option(help="Donations from a file without a date column are dated by "
                          "their initiative's posted date (posted) or the load time "
                          "(load-time), flagged ts_approximate.")
    ] = "posted",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate and load files into the store (idempotent, resumable). Exit 0: loaded; 2: a file
    is unusable, nothing written; 3: an entity stopped at the reject limit (the others loaded)."""
    try:
        options = _load_options(loads_dir, batch_size, max_reject_rate, min_rows_for_rate,
                                future_tolerance_s, not restart, ts_fallback)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with _store() as store:
        report = _run_load(store, fmt, path, mapping, options)
    summary = report.to_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    if not report.ok:
        console.print(f"[red]error:[/red] {report.error}")
        raise typer.Exit({"rejects": 3, "source": 2}.get(report.failure or "", 1))


def _load_options(loads_dir: Path | None, batch_size: int, max_reject_rate: float,
                  min_rows_for_rate: int, future_tolerance_s: float, resume: bool,
                  ts_fallback: str):  # -> etl.pipeline.LoadOptions (imported lazily)
    from etl.pipeline import LoadOptions

    return LoadOptions(
        loads_dir=loads_dir or StoreSettings().data_dir / "loads",
        batch_size=batch_size, max_reject_rate=max_reject_rate,
        min_rows_for_rate=min_rows_for_rate, future_tolerance_s=future_tolerance_s,
        resume=resume, ts_fallback=ts_fallback,
    )


def _run_load(store: GraphStore, fmt: str, path: Path, mapping: Path | None, options):
    """Check the files, load them with progress bars, print the summary and what the load did
    without; exit 2 when a file is unusable (before anything is written)."""
    from etl.pipeline import run_load
    from etl.progress import RichProgress, summary_notes, summary_table
    from etl.sources import SourceError, open_source

    try:
        source = open_source(fmt, path, mapping)
        source.check()
    except (OSError, SourceError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    store.apply_schema()
    with RichProgress(console) as progress:
        try:
            report = run_load(store, source, options, path=path, mapping=mapping,
                              progress=progress)
        except (OSError, SourceError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    summary = report.to_dict()
    console.print(summary_table(summary))
    for note in summary_notes(summary):
        console.print(f"note: {note}")
    if report.resumed_batches:
        console.print(f"resumed: {report.resumed_batches} batches were already written")
    if report.rejects:
        console.print(f"{report.rejects} rejects in {report.directory}/rejects.csv")
    return report


@etl_app.command("anonymize")
def etl_anonymize(
    k: Annotated[
        int | None, typer.Option(help="k-anonymity over donor quasi-identifiers; default "
                                 "DONOR_MATCH_ANON_K or 5.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Rebuild the anonymized analyst graph (HMAC secret: DONOR_MATCH_ANON_SECRET)."""
    from etl.anonymize import AnonymizeError, AnonymizeSettings, anonymize
    from etl.progress import RichProgress

    settings = AnonymizeSettings()
    analyst = open_store(StoreSettings(), analyst=True)
    try:
        with _store() as source, RichProgress(console, "anonymize") as progress:
            report = anonymize(source, analyst, settings.secret.get_secret_value(),
                               k if k is not None else settings.k, progress.advance)
    except AnonymizeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        analyst.close()
    summary = report.to_dict()
    console.print(
        f"analyst graph {analyst.uri}: {report.donors} donors ({report.generalized} generalized, "
        f"{report.suppressed} suppressed; {report.groups} groups, smallest "
        f"{report.smallest_group}, k={report.k}), {report.donations} donations"
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=2))


@etl_app.command("snapshot")
def etl_snapshot() -> None:
    """Export a content-hashed training snapshot (Parquet) from the store."""
    from etl.snapshot import export_snapshot

    with _store() as store:
        path = export_snapshot(store, AppSettings().snapshots_dir)
    typer.echo(path)


@app.command()
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
    settings = AppSettings()
    if snapshot is None:
        from etl.snapshot import export_snapshot

        with _store() as store:
            snapshot = export_snapshot(store, settings.snapshots_dir)
    version_dir = _train_version(snapshot, steps, seed, min_test_donors, track)
    metrics = json.loads((version_dir / "metrics.json").read_text())
    evaluation = metrics.get("evaluation") or {}
    if evaluation.get("status") == "unevaluated":
        console.print(
            f"[yellow]evaluation not possible:[/yellow] {evaluation.get('reason')}\n"
            f"registered {version_dir.name} as unevaluated; it is not served. Serve it anyway "
            f"with `donor-match model promote --force {version_dir.name}`, or load more "
            f"donations and train again."
        )
        raise typer.Exit(4)
    if promote:
        _promote_new(version_dir.name)
    else:
        console.print(f"registered {version_dir.name}; serve it with "
                      f"`donor-match model promote {version_dir.name}`")


def _train_version(snapshot: Path, steps: int, seed: int, min_test_donors: int,
                   track: bool) -> Path:
    """Train on `snapshot` with progress, print the metrics, log to MLflow; exit 2 when the
    snapshot is not a graph the schema allows."""
    from graph_model.snapshot import SnapshotError
    from graph_model.train import train as train_model

    settings = AppSettings()
    losses: list[float] = []

    def report(step: int, total: int, loss: float) -> None:
        losses.append(loss)
        progress.update(task, completed=step, description=f"train (loss {loss:.4f})")

    try:
        with _progress() as progress:
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


def _promote_new(version: str) -> None:
    """Promote a just-trained version through the gate. A first version is served on arrival
    (bootstrap); if it then fails its gate it is withdrawn, so nothing unjudged stays served."""
    registry = _registry()
    if registry.current() == version:
        report = registry.gate(version)
        if not report.passed:
            registry.withdraw(version)
            console.print(f"[red]refused:[/red] model {version} fails the quality gate: "
                          + "; ".join(report.reasons) + " (withdrawn: nothing is served)")
            raise typer.Exit(3)
    model_promote(version)


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        flat: dict[str, object] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


@app.command()
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


@app.command()
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

        with _store() as store:
            snapshot = export_snapshot(store, AppSettings().snapshots_dir)
    from graph_model.report import EvaluateConfig, run_evaluation

    with _progress() as progress:
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


model_app = typer.Typer(help="Model versions: list, promote, roll back.", no_args_is_help=True)
app.add_typer(model_app, name="model")


def _registry():
    from graph_model.registry import Registry

    settings = AppSettings()
    return Registry(settings.models_dir, settings.promotion_tolerance)


@model_app.command("list")
def model_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")] = False,
) -> None:
    """Every registered version with its metrics; * marks the served one."""
    versions = _registry().versions()
    if as_json:
        typer.echo(json.dumps([
            {"version": v.version, "serving": v.serving, "promoted": v.promoted,
             "snapshot_hash": v.snapshot_hash, "k": v.metrics.get("k"),
             "model": v.metrics.get("model"), "popularity": v.metrics.get("popularity")}
            for v in versions
        ], indent=2))
        return
    table = Table("", "version", "recall@k", "ndcg@k", "popularity recall@k", "snapshot",
                  title=f"models in {AppSettings().models_dir}")
    for v in versions:
        figures = [v.headline("recall"), v.headline("ndcg"), v.headline("recall", "popularity")]
        table.add_row("*" if v.serving else "", v.version,
                      *("-" if f is None else f"{f:.4f}" for f in figures),
                      (v.snapshot_hash or "?")[:16])
    console.print(table if versions else "no model versions yet: run `donor-match train`")


@model_app.command("promote")
def model_promote(
    version: Annotated[str, typer.Argument(help="A version from `model list`.")],
    force: Annotated[
        bool, typer.Option(help="Serve it despite the gate's judgement (e.g. an unevaluated "
                           "model); never a version whose artifacts do not load.")
    ] = False,
) -> None:
    """Serve VERSION if it passes the quality gate (exit 3 and the reasons when it does not)."""
    from graph_model.registry import GateFailedError, RegistryError

    try:
        change = _registry().promote(version, force=force)
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


@model_app.command("rollback")
def model_rollback() -> None:
    """Serve the version promoted before the current one again."""
    from graph_model.registry import RegistryError

    try:
        change = _registry().rollback()
    except RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"rolled back from {change.previous} to {change.version}")


pipeline_app = typer.Typer(help="The retraining pipeline.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
def pipeline_run(
    steps: int = TrainConfig.steps,
    seed: int = 0,
) -> None:
    """Snapshot, validate, train, evaluate, gate, register, promote (idempotent; exit 3: the
    gate refused the new version). The manifest lands in DONOR_MATCH_PIPELINE_DIR/<run id>/."""
    from mlops.pipeline import Pipeline, PipelineError

    with _store() as store, _progress() as progress:
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


drift_app = typer.Typer(help="Drift monitoring.", no_args_is_help=True)
app.add_typer(drift_app, name="drift")


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
    with _store() as store:
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


token_app = typer.Typer(help="Local JWTs (HS256) for development.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="donor, nonprofit, analyst, admin or integrator.")],
    subject: Annotated[str, typer.Option(help="Donor or nonprofit id, or a person's id.")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a bearer token signed with DONOR_MATCH_JWT_SECRET."""
    from donor_match.services.auth import Role, TokenService, UnauthenticatedError
    from donor_match.settings import AuthSettings

    try:
        typer.echo(TokenService(AuthSettings()).issue(subject, Role(role), ttl))
    except ValueError as exc:
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role") from exc
    except UnauthenticatedError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: DONOR_MATCH_API_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: DONOR_MATCH_API_PORT.")] = None,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql) with uvicorn."""
    _serve(host, port)


def _serve(host: str | None, port: int | None, greeting: tuple[str, str] | None = None) -> None:
    """The API under uvicorn; `greeting` (a query and a bearer token, `demo` only) is what
    GraphiQL opens with."""
    import uvicorn

    from graphql_api.app import create_app, uvicorn_options
    from graphql_api.graphiql import GraphiQLDefaults
    from graphql_api.observability import configure_json_logging

    configure_json_logging()
    settings = AppSettings()
    defaults = None
    if greeting is not None:
        query, token = greeting
        defaults = GraphiQLDefaults(query, {"Authorization": f"Bearer {token}"})
    uvicorn.run(
        create_app(settings, graphiql_defaults=defaults),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,  # uvicorn logs through the JSON handler too
        access_log=False,  # RequestIdMiddleware writes one access line per request
        **uvicorn_options(settings),
    )


@app.command()
def demo(
    donors: int = 2000,
    nonprofits: int = 200,
    donations: int = 30_000,
    steps: int = TrainConfig.steps,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Start the embedded store, load a synthetic graph, train, and serve GraphiQL."""
    from etl.loader import load_tables
    from etl.synth import SynthConfig, generate

    store_start()
    tables = generate(SynthConfig(donors=donors, nonprofits=nonprofits, donations=donations))
    with _store() as store, _progress() as progress:
        store.apply_schema()
        tasks = {name: progress.add_task(f"load {name}", total=t.num_rows)
                 for name, t in tables.items()}
        load_tables(store, tables, progress=lambda name, n: progress.advance(tasks[name], n))
    # The anonymized copy too, so that `analyticsQuery` has a graph to read.
    if not os.environ.get("DONOR_MATCH_ANON_SECRET"):
        os.environ["DONOR_MATCH_ANON_SECRET"] = secrets.token_urlsafe(48)  # this process only
    etl_anonymize(k=None, as_json=False)
    train(snapshot=None, steps=steps, seed=0)
    greeting = _print_try_it(tables["donations"].column("donor_id")[0].as_py())
    if serve_api:
        _serve(None, None, greeting)


def _print_try_it(donor_id: str) -> tuple[str, str]:
    """The GraphiQL address, a donor token and a first query; returns the query and token."""
    settings = AppSettings()
    if not os.environ.get("DONOR_MATCH_JWT_SECRET"):
        # A throwaway signing key for this demo process only; never written anywhere.
        os.environ["DONOR_MATCH_JWT_SECRET"] = secrets.token_urlsafe(48)
    from donor_match.services.auth import Role, TokenService
    from donor_match.settings import AuthSettings

    token = TokenService(AuthSettings()).issue(donor_id, Role.DONOR, ttl_s=7 * 24 * 3600)
    query = SAMPLE_QUERY.format(donor_id=donor_id)
    console.print(
        f"\nGraphiQL: http://{settings.api_host}:{settings.api_port}/graphql\n"
        "opens with this query and a donor token for "
        f"{donor_id} in its Headers tab (for curl or another client):\n\n"
        + json.dumps({"Authorization": f"Bearer {token}"})
        + "\n\n"
        + query
        + "\n"
    )
    return query, token


@app.command()
def quickstart(
    path: Annotated[Path, typer.Argument(help="Your export: a directory (or a file).")],
    fmt: Annotated[
        str,
        typer.Option("--format", help="donorschoose, irs-bmf, canonical, csv, jsonl or parquet."),
    ] = "donorschoose",
    mapping: Annotated[
        Path | None, typer.Option(help="Column-mapping YAML for canonical files.")
    ] = None,
    steps: int = TrainConfig.steps,
    max_reject_rate: Annotated[
        float, typer.Option(help="An entity whose rejected share exceeds this is not written.")
    ] = 0.05,
    ts_fallback: Annotated[
        str, typer.Option(help="Dates for donations without a date column: posted or "
                          "load-time.")
    ] = "posted",
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Load your own export into the embedded store, train what the data allows, serve it, and
    say what could not be done. Exit 0 when it got that far (each shortfall is printed); 2 when
    the export cannot be read at all."""
    from etl.snapshot import export_snapshot

    try:
        options = _load_options(None, 2000, max_reject_rate, 1000, 86_400.0, True, ts_fallback)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    store_start()
    settings = AppSettings()
    could_not: list[str] = []
    with _store() as store:
        report = _run_load(store, fmt, path, mapping, options)
        if report.status == "failed":
            console.print(f"[red]error:[/red] the load failed: {report.error}")
            raise typer.Exit(1)
        could_not += [f"{name}: {e.stopped}" for name, e in report.entities.items() if e.stopped]
        if report.rejects:
            could_not.append(f"load {report.rejects:,} rows: they were rejected (why: "
                             f"{report.directory}/rejects.csv)")
        snapshot = export_snapshot(store, settings.snapshots_dir)
    counts = json.loads((snapshot / "snapshot.json").read_text()).get("counts", {})
    console.print("in the graph: " + ", ".join(f"{n:,} {name}" for name, n in counts.items()))
    served = _quickstart_model(snapshot, steps, could_not)
    if could_not:
        console.print("\n[yellow]what the quickstart could not do:[/yellow]")
        for line in could_not:
            console.print(f"- {line}")
    else:
        console.print("\neverything in the export loaded, and the model passed its gate")
    greeting = None
    if served:
        import pyarrow.parquet as pq

        donors = pq.read_table(snapshot / "donations.parquet", columns=["donor_id"])
        greeting = _print_try_it(donors.column("donor_id")[0].as_py())
    if serve_api:
        _serve(None, None, greeting)


def _quickstart_model(snapshot: Path, steps: int, could_not: list[str]) -> bool:
    """Train on `snapshot` and promote through the gate; True when a model is served. What
    stands in the way goes into `could_not`."""
    from graph_model.artifacts import current_version

    version = None
    try:
        version = _train_version(snapshot, steps, 0, TrainConfig.min_test_donors, False)
    except typer.Exit:  # the snapshot is not trainable; the reason is printed
        could_not.append("train a model: the graph has nothing to learn from (see above)")
        return False
    metrics = json.loads((version / "metrics.json").read_text())
    evaluation = metrics.get("evaluation") or {}
    if evaluation.get("status") == "unevaluated":
        could_not.append(
            f"evaluate the model: {evaluation.get('reason')}. {version.name} is registered "
            f"as unevaluated and not served; `donor-match model promote --force "
            f"{version.name}` serves it anyway")
        return current_version(AppSettings().models_dir) is not None
    try:
        _promote_new(version.name)
    except typer.Exit:
        could_not.append(f"serve model {version.name}: the quality gate refused it (above)")
    return current_version(AppSettings().models_dir) is not None


if __name__ == "__main__":
    app()
