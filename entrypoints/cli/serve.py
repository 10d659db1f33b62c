"""`donor-match serve`, `demo` and `quickstart`: the API, alone or after a first graph and model."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from entrypoints.asgi import serve as serve_api_process
from entrypoints.bootstrap import Settings, token_service
from entrypoints.cli.common import console, open_graph, progress_bars
from entrypoints.cli.etl import anonymize_graph, load_options, run_load
from entrypoints.cli.model import promote_new, train_and_promote, train_version
from entrypoints.cli.store import start_local_store
from etl.synth import SynthConfig
from graph_model.config import TrainConfig
from graph_model.evaluability import unevaluated_reason
from graphql_api.graphiql import GraphiQLDefaults

SAMPLE_QUERY = """query {{
  matches(donorId: "{donor_id}", first: 5) {{
    rank score nonprofit {{ id name causes {{ name }} region {{ name }} }}
  }}
}}"""


def serve(
    host: Annotated[str | None, typer.Option(help="Default: DONOR_MATCH_API_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: DONOR_MATCH_API_PORT.")] = None,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql) with uvicorn."""
    serve_api_process(Settings.load(), host, port)


def demo(
    donors: int = SynthConfig.donors,
    nonprofits: int = SynthConfig.nonprofits,
    donations: int = SynthConfig.donations,
    steps: int = TrainConfig.steps,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Start the embedded store, load a synthetic graph, train, and serve GraphiQL."""
    from etl.anonymize import AnonymizeSettings
    from etl.loader import load_tables
    from etl.synth import generate

    settings = Settings.load()
    start_local_store(settings.store)
    tables = generate(SynthConfig(donors=donors, nonprofits=nonprofits, donations=donations))
    with open_graph(settings.store) as store, progress_bars() as progress:
        store.apply_schema()
        tasks = {name: progress.add_task(f"load {name}", total=t.num_rows)
                 for name, t in tables.items()}
        load_tables(store, tables, progress=lambda name, n: progress.advance(tasks[name], n))
    # The anonymized copy too, so that `analyticsQuery` has a graph to read; without a
    # configured secret, a throwaway one that this process alone ever holds.
    anonymize_settings = AnonymizeSettings()
    if not anonymize_settings.secret.get_secret_value():
        anonymize_settings = anonymize_settings.model_copy(
            update={"secret": SecretStr(secrets.token_urlsafe(48))}
        )
    anonymize_graph(settings.store, anonymize_settings)
    train_and_promote(settings.app, None, steps, 0)
    settings = with_signing_key(settings)
    greeting = print_try_it(settings, tables["donations"].column("donor_id")[0].as_py())
    if serve_api:
        serve_api_process(settings, graphiql_defaults=greeting)


def with_signing_key(settings: Settings) -> Settings:
    """`settings`, with a throwaway JWT signing key when none is configured: it lives in this
    process's settings only (the demo's token and the API it serves), never written anywhere."""
    if settings.auth.jwt_secret.get_secret_value():
        return settings
    auth = settings.auth.model_copy(update={"jwt_secret": SecretStr(secrets.token_urlsafe(48))})
    return Settings(settings.app, settings.store, auth)


def print_try_it(settings: Settings, donor_id: str) -> GraphiQLDefaults:
    """Print the GraphiQL address, a donor token and a first query; returns them as what
    GraphiQL opens with."""
    from donor_match.services.auth import Role

    token = token_service(settings).issue(donor_id, Role.DONOR, ttl_s=7 * 24 * 3600)
    query = SAMPLE_QUERY.format(donor_id=donor_id)
    headers = {"Authorization": f"Bearer {token}"}
    console.print(
        f"\nGraphiQL: http://{settings.app.api_host}:{settings.app.api_port}/graphql\n"
        "opens with this query and a donor token for "
        f"{donor_id} in its Headers tab (for curl or another client):\n\n"
        + json.dumps(headers)
        + "\n\n"
        + query
        + "\n"
    )
    return GraphiQLDefaults(query, headers)


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

    settings = Settings.load()
    try:
        options = load_options(settings.store, None, 2000, max_reject_rate, 1000, 86_400.0,
                               True, ts_fallback)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    start_local_store(settings.store)
    could_not: list[str] = []
    with open_graph(settings.store) as store:
        report = run_load(store, fmt, path, mapping, options)
        if report.status == "failed":
            console.print(f"[red]error:[/red] the load failed: {report.error}")
            raise typer.Exit(1)
        could_not += [f"{name}: {e.stopped}" for name, e in report.entities.items() if e.stopped]
        if report.rejects:
            could_not.append(f"load {report.rejects:,} rows: they were rejected (why: "
                             f"{report.directory}/rejects.csv)")
        snapshot = export_snapshot(store, settings.app.snapshots_dir)
    counts = json.loads((snapshot / "snapshot.json").read_text()).get("counts", {})
    console.print("in the graph: " + ", ".join(f"{n:,} {name}" for name, n in counts.items()))
    served = _quickstart_model(settings, snapshot, steps, could_not)
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
        settings = with_signing_key(settings)
        greeting = print_try_it(settings, donors.column("donor_id")[0].as_py())
    if serve_api:
        serve_api_process(settings, graphiql_defaults=greeting)


def _quickstart_model(settings: Settings, snapshot: Path, steps: int,
                      could_not: list[str]) -> bool:
    """Train on `snapshot` and promote through the gate; True when a model is served. What
    stands in the way goes into `could_not`."""
    from graph_model.artifacts import current_version

    models_dir = settings.app.models_dir
    try:
        version = train_version(settings.app, snapshot, steps, 0, TrainConfig.min_test_donors,
                                False)
    except typer.Exit:  # the snapshot is not trainable; the reason is printed
        could_not.append("train a model: the graph has nothing to learn from (see above)")
        return False
    metrics = json.loads((version / "metrics.json").read_text())
    if (reason := unevaluated_reason(metrics)) is not None:
        could_not.append(
            f"evaluate the model: {reason}. {version.name} is registered "
            f"as unevaluated and not served; `donor-match model promote --force "
            f"{version.name}` serves it anyway")
        return current_version(models_dir) is not None
    try:
        promote_new(settings.app, version.name)
    except typer.Exit:
        could_not.append(f"serve model {version.name}: the quality gate refused it (above)")
    return current_version(models_dir) is not None
