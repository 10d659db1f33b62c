"""`donor-match etl`: data into the graph, snapshots out of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from donor_match.settings import AppSettings
from entrypoints.cli.common import console, open_graph
from etl.synth import SynthConfig
from graph_store import GraphStore, StoreSettings, open_store

if TYPE_CHECKING:
    from etl.anonymize import AnonymizeReport, AnonymizeSettings
    from etl.pipeline import LoadOptions, LoadReport

app = typer.Typer(help="Data into the graph, snapshots out of it.", no_args_is_help=True)


@app.command("synth")
def etl_synth(
    out: Annotated[Path, typer.Option(help="Directory for the Parquet tables.")],
    donors: int = SynthConfig.donors,
    nonprofits: int = SynthConfig.nonprofits,
    causes: int = SynthConfig.causes,
    regions: int = SynthConfig.regions,
    donations: int = SynthConfig.donations,
    seed: int = SynthConfig.seed,
    stream: Annotated[
        bool,
        typer.Option(help="Stream in constant memory (millions of rows) with contact details, "
                     "recurring donors, a December peak and cold-start donors/nonprofits."),
    ] = False,
) -> None:
    """Generate a seeded synthetic graph as canonical Parquet tables."""
    try:
        config = SynthConfig(donors=donors, nonprofits=nonprofits, causes=causes,
                             regions=regions, donations=donations, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if stream:
        from etl.progress import RichProgress
        from etl.synth import stream as stream_graph

        with RichProgress(console, "synth") as progress:
            counts = stream_graph(config, out, progress.advance)
        console.print(f"wrote {', '.join(f'{n} {k}' for k, n in counts.items())} to {out}")
        return

    from etl.snapshot import write_snapshot
    from etl.synth import generate

    tables = generate(config)
    write_snapshot(tables, out)
    console.print(f"wrote {', '.join(f'{t.num_rows} {n}' for n, t in tables.items())} to {out}")


@app.command("load")
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
    initial: Annotated[
        bool, typer.Option("--initial", help="A first load into an empty graph: donors, "
                           "nonprofits and donations are created, not merged (faster); "
                           "refused when the graph holds nodes.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate and load files into the store (idempotent, resumable). Exit 0: loaded; 2: a file
    is unusable, nothing written; 3: an entity stopped at the reject limit (the others loaded)."""
    settings = StoreSettings()
    try:
        options = load_options(settings, loads_dir, batch_size, max_reject_rate,
                               min_rows_for_rate, future_tolerance_s, not restart, ts_fallback,
                               initial)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with open_graph(settings) as store:
        report = run_load(store, fmt, path, mapping, options)
    summary = report.to_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    if not report.ok:
        console.print(f"[red]error:[/red] {report.error}")
        raise typer.Exit({"rejects": 3, "source": 2}.get(report.failure or "", 1))


def load_options(settings: StoreSettings, loads_dir: Path | None, batch_size: int,
                 max_reject_rate: float, min_rows_for_rate: int, future_tolerance_s: float,
                 resume: bool, ts_fallback: str, initial: bool = False) -> LoadOptions:
    """The load's options; ValueError names a bad one. Loads live under the data directory
    unless `loads_dir` says otherwise."""
    from etl.pipeline import LoadOptions

    return LoadOptions(
        loads_dir=loads_dir or settings.data_dir / "loads",
        batch_size=batch_size, max_reject_rate=max_reject_rate,
        min_rows_for_rate=min_rows_for_rate, future_tolerance_s=future_tolerance_s,
        resume=resume, ts_fallback=ts_fallback, initial=initial,
    )


def run_load(store: GraphStore, fmt: str, path: Path, mapping: Path | None,
             options: LoadOptions) -> LoadReport:
    """Check the files, load them with progress bars, print the summary and what the load did
    without; exit 2 when a file is unusable (before anything is written)."""
    from etl.pipeline import run_load as load
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
            report = load(store, source, options, path=path, mapping=mapping, progress=progress)
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


def anonymize_graph(store_settings: StoreSettings, settings: AnonymizeSettings,
                    k: int | None = None) -> AnonymizeReport:
    """Rebuild the analysts' graph from the product graph and say what it holds; exit 2 when it
    cannot be (no secret, k out of range)."""
    from etl.anonymize import AnonymizeError, anonymize
    from etl.progress import RichProgress

    analyst = open_store(store_settings, analyst=True)
    try:
        with open_graph(store_settings) as source, \
                RichProgress(console, "anonymize") as progress:
            report = anonymize(source, analyst, settings.secret.get_secret_value(),
                               k if k is not None else settings.k, progress.advance)
    except AnonymizeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        analyst.close()
    console.print(
        f"analyst graph {analyst.uri}: {report.donors} donors ({report.generalized} generalized, "
        f"{report.suppressed} suppressed; {report.groups} groups, smallest "
        f"{report.smallest_group}, k={report.k}), {report.donations} donations"
    )
    return report


@app.command("anonymize")
def etl_anonymize(
    k: Annotated[
        int | None, typer.Option(help="k-anonymity over donor quasi-identifiers; default "
                                 "DONOR_MATCH_ANON_K or 5.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Rebuild the anonymized analyst graph (HMAC secret: DONOR_MATCH_ANON_SECRET)."""
    from etl.anonymize import AnonymizeSettings

    report = anonymize_graph(StoreSettings(), AnonymizeSettings(), k)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))


@app.command("snapshot")
def etl_snapshot() -> None:
    """Export a content-hashed training snapshot (Parquet) from the store."""
    from etl.snapshot import export_snapshot

    with open_graph() as store:
        path = export_snapshot(store, AppSettings().snapshots_dir)
    typer.echo(path)
