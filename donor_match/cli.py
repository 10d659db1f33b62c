"""`donor-match`: the command line. Commands only translate arguments; work happens elsewhere."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from donor_match.settings import AppSettings
from graph_model.config import TrainConfig
from graph_store import GraphStore, StoreError, StoreSettings, open_store

app = typer.Typer(help="Match donors with nonprofits over a graph.", no_args_is_help=True)
store_app = typer.Typer(help="The graph store (embedded FalkorDB or Neo4j).", no_args_is_help=True)
etl_app = typer.Typer(help="Data into the graph, snapshots out of it.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(etl_app, name="etl")
console = Console(stderr=True)

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
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    )


def _embedded():
    from graph_store.embedded import EmbeddedFalkorDB

    settings = StoreSettings()
    if settings.backend != "falkordb":
        console.print("[red]error:[/red] DONOR_MATCH_STORE=neo4j: the embedded server is not used")
        raise typer.Exit(2)
    return EmbeddedFalkorDB(settings.falkordb_dir, settings.falkordb_port)


@store_app.command("start")
def store_start() -> None:
    """Start the embedded FalkorDB server on 127.0.0.1 (data under DONOR_MATCH_DATA_DIR)."""
    status = _embedded().start()
    console.print(f"FalkorDB running on 127.0.0.1:{status.port} (pid {status.pid}), "
                  f"data in {status.data_dir}")


@store_app.command("stop")
def store_stop() -> None:
    """Stop the embedded FalkorDB server, flushing its append-only file."""
    _embedded().stop()
    console.print("FalkorDB stopped")


@store_app.command("status")
def store_status() -> None:
    """Say whether the configured store answers."""
    settings = StoreSettings()
    with _store() as store:
        store.ping()
        console.print(f"{store.uri} is up ({settings.backend})")


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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate and load files into the store (idempotent, resumable; exit 3: too many rejects)."""
    from etl.pipeline import LoadOptions, run_load
    from etl.progress import RichProgress, summary_table
    from etl.sources import SourceError, open_source

    try:
        options = LoadOptions(
            loads_dir=loads_dir or StoreSettings().data_dir / "loads",
            batch_size=batch_size, max_reject_rate=max_reject_rate,
            min_rows_for_rate=min_rows_for_rate, future_tolerance_s=future_tolerance_s,
            resume=not restart,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        source = open_source(fmt, path, mapping)
        source.check()
    except (OSError, SourceError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    with _store() as store:
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
    if report.resumed_batches:
        console.print(f"resumed: {report.resumed_batches} batches were already written")
    if report.rejects:
        console.print(f"{report.rejects} rejects in {report.directory}/rejects.csv")
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    if not report.ok:
        console.print(f"[red]error:[/red] {report.error}")
        raise typer.Exit({"rejects": 3, "source": 2}.get(report.failure or "", 1))


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
) -> None:
    """Train the TF-GNN link predictor and publish a new model version."""
    settings = AppSettings()
    if snapshot is None:
        from etl.snapshot import export_snapshot

        with _store() as store:
            snapshot = export_snapshot(store, settings.snapshots_dir)
    from graph_model.train import train as train_model

    with _progress() as progress:
        task = progress.add_task("train", total=steps)
        version_dir = train_model(
            snapshot,
            settings.models_dir,
            TrainConfig(steps=steps, seed=seed),
            lambda step, total, loss: progress.update(
                task, completed=step, description=f"train (loss {loss:.4f})"
            ),
        )
    metrics = json.loads((version_dir / "metrics.json").read_text())
    table = Table("metric", "value", title=f"model {version_dir.name}")
    for key, value in sorted(_flatten(metrics).items()):
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        flat: dict[str, object] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


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
    import uvicorn

    from graphql_api.app import create_app
    from graphql_api.observability import configure_json_logging

    configure_json_logging()
    settings = AppSettings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,  # uvicorn logs through the JSON handler too
        access_log=False,  # RequestIdMiddleware writes one access line per request
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
    train(snapshot=None, steps=steps, seed=0)
    settings = AppSettings()
    donor_id = tables["donations"].column("donor_id")[0].as_py()
    if not os.environ.get("DONOR_MATCH_JWT_SECRET"):
        # A throwaway signing key for this demo process only; never written anywhere.
        os.environ["DONOR_MATCH_JWT_SECRET"] = secrets.token_urlsafe(48)
    from donor_match.services.auth import Role, TokenService
    from donor_match.settings import AuthSettings

    token = TokenService(AuthSettings()).issue(donor_id, Role.DONOR, ttl_s=7 * 24 * 3600)
    console.print(
        f"\nGraphiQL: http://{settings.api_host}:{settings.api_port}/graphql\n"
        f"Paste into its Headers tab (a donor token for {donor_id}):\n\n"
        + json.dumps({"Authorization": f"Bearer {token}"})
        + "\n\nand run:\n\n"
        + SAMPLE_QUERY.format(donor_id=donor_id)
        + "\n"
    )
    if serve_api:
        serve(host=None, port=None)


if __name__ == "__main__":
    app()
