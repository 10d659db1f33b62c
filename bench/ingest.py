"""Ingest benchmark: synthetic donations into each store, end to end and raw, side by side.

    .venv/bin/python bench/ingest.py --donations 1000000
    .venv/bin/python bench/ingest.py --donations 1000000 --stores neo4j
    .venv/bin/python bench/ingest.py --donations 10000000 --donors 1000000 --nonprofits 100000

1. `synth`: stream the synthetic graph to canonical Parquet (etl.synth).
2. `load`: the real pipeline (`etl load --format parquet`): read, validate, reject, checkpoint,
   UNWIND ... MERGE with lineage; rows/s per entity, wall time, peak RSS.
3. `raw`: the store alone: the same MERGE statements and batch size, parameter batches built
   from the same files beforehand (untimed), so only the sends are timed.
Each phase runs in its own process (a clean peak RSS each) against a fresh server started here
for that run (the embedded FalkorDB, or the local Neo4j of graph_store.local_neo4j), whose peak
RSS is reported too. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ports import free_port

if TYPE_CHECKING:
    from graph_store import GraphStore

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def phase_synth(args: argparse.Namespace) -> dict[str, Any]:
    from etl.synth import SynthConfig, stream

    # 16 causes and 20 regions: the graph docs/bench-ingest.md's figures were measured on.
    config = SynthConfig(donors=args.donors, nonprofits=args.nonprofits, causes=16, regions=20,
                         donations=args.donations, seed=args.seed)
    started = time.monotonic()
    counts = stream(config, Path(args.data))
    return {"counts": counts, "seconds": time.monotonic() - started,
            "peak_rss_mb": _peak_rss_mb()}


def _store(args: argparse.Namespace, graph: str) -> GraphStore:
    from graph_store import StoreSettings, open_store

    if args.store == "neo4j":  # the password comes from NEO4J_PASSWORD, set by main()
        settings = StoreSettings(backend="neo4j", neo4j_uri=args.uri, timeout_s=600)
    else:
        settings = StoreSettings(falkordb_port=args.port, graph_name=graph, timeout_s=600)
    store = open_store(settings)
    store.apply_schema()
    return store


def phase_load(args: argparse.Namespace, initial: bool = False) -> dict[str, Any]:
    from etl.pipeline import LoadOptions, run_load
    from etl.sources import open_source

    store = _store(args, args.graph)
    started = time.monotonic()
    report = run_load(
        store, open_source("parquet", Path(args.data)),
        LoadOptions(loads_dir=Path(args.work) / "loads", batch_size=args.batch_size,
                    initial=initial),
        path=Path(args.data),
    )
    wall = time.monotonic() - started
    if not report.ok:
        raise SystemExit(f"load failed: {report.error}")
    entities = {name: {"rows": e.read, "seconds": round(e.seconds, 2),
                       "rows_per_s": round(e.rows_per_s)} for name, e in report.entities.items()}
    return {"entities": entities, "rows": sum(e.read for e in report.entities.values()),
            "seconds": wall, "peak_rss_mb": _peak_rss_mb(), "rejects": report.rejects}


def phase_raw(args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from etl.entities import LOAD_ORDER
    from etl.writer import complete, merge_statement

    store = _store(args, args.graph)
    entities: dict[str, dict[str, float]] = {}
    total_rows, total_seconds = 0, 0.0
    for name in LOAD_ORDER:
        path = Path(args.data) / f"{name}.parquet"
        if not path.is_file():
            continue
        merge = merge_statement(name)
        rows, seconds = 0, 0.0
        # Build a slice of batches (untimed), then time only sending them.
        # pre_buffer=False as in etl.sources.files: the cache would grow with the file.
        parquet = pq.ParquetFile(path, pre_buffer=False)
        for chunk in parquet.iter_batches(batch_size=args.batch_size * 50):
            records = complete(name, chunk.to_pylist())
            batches = [records[i:i + args.batch_size]
                       for i in range(0, len(records), args.batch_size)]
            began = time.monotonic()
            for batch in batches:
                store.write(merge, {"rows": batch, "load_id": "raw"})
            seconds += time.monotonic() - began
            rows += len(records)
        entities[name] = {"rows": rows, "seconds": round(seconds, 2),
                          "rows_per_s": round(rows / seconds) if seconds else 0}
        total_rows += rows
        total_seconds += seconds
    return {"entities": entities, "rows": total_rows, "seconds": total_seconds,
            "peak_rss_mb": _peak_rss_mb()}


def phase_initial(args: argparse.Namespace) -> dict[str, Any]:
    """`etl load --initial`: the same load into the empty graph, creating instead of merging."""
    return phase_load(args, initial=True)


PHASES = {"synth": phase_synth, "load": phase_load, "raw": phase_raw, "initial": phase_initial}


def _run_phase(name: str, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", name, "--donations", str(args.donations),
               "--donors", str(args.donors), "--nonprofits", str(args.nonprofits),
               "--seed", str(args.seed), "--batch-size", str(args.batch_size), *extra]
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _server_peak_rss_mb(pid: int | None) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--donations", type=int, default=1_000_000)
    parser.add_argument("--donors", type=int, default=None, help="default: donations / 10")
    parser.add_argument("--nonprofits", type=int, default=None, help="default: donations / 100")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=2_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--stores", default="falkordb,neo4j",
                        help="comma-separated stores to load, each measured the same way")
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--graph", help=argparse.SUPPRESS)
    parser.add_argument("--initial", action="store_true",
                        help="also time `etl load --initial` (created, not merged)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each load, alternating; the best of each is reported")
    args = parser.parse_args()
    args.donors = args.donors or max(1, args.donations // 10)
    args.nonprofits = args.nonprofits or max(1, args.donations // 100)
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="donor-match-bench-"))
    data = work / "data"
    results: dict[str, Any] = {
        "donations": args.donations, "donors": args.donors, "nonprofits": args.nonprofits,
        "batch_size": args.batch_size, "machine": f"{platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}",
    }
    results["synth"] = _run_phase("synth", args, ["--data", str(data)])
    stores = args.stores.split(",")
    for store in stores:
        results[store] = _bench_store(store, args, data, work)
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"ingest-{args.donations}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n\n".join(_markdown(results, store) for store in stores))
    print(f"\n(results in {out}; data in {work})", file=sys.stderr)


def _bench_store(store: str, args: argparse.Namespace, data: Path, work: Path) -> dict[str, Any]:
    """Alternate the two loads, each into a fresh server, and keep the best of each: the machine
    is shared, so single runs vary more than the loader's own overhead."""
    phases = ("load", "raw", "initial") if args.initial else ("load", "raw")
    runs: dict[str, list[dict[str, Any]]] = {phase: [] for phase in phases}
    server_peak = 0.0
    for attempt in range(args.repeat):
        for phase in phases:
            with _server(store, work / f"{store}-{phase}{attempt}") as (extra, pid):
                runs[phase].append(_run_phase(phase, args, [
                    "--data", str(data), "--work", str(work / f"{store}-{phase}{attempt}"),
                    *extra]))
                server_peak = max(server_peak, _server_peak_rss_mb(pid) or 0.0)
    results: dict[str, Any] = {"server_peak_rss_mb": server_peak}
    for phase, done in runs.items():
        best = max(done, key=lambda run: run["rows"] / run["seconds"])
        results[phase] = {**best, "peak_rss_mb": max(run["peak_rss_mb"] for run in done),
                          "all_rows_per_s": [round(r["rows"] / r["seconds"]) for r in done]}
    load, raw = results["load"], results["raw"]
    results["load_rows_per_s"] = round(load["rows"] / load["seconds"])
    results["raw_rows_per_s"] = round(raw["rows"] / raw["seconds"])
    results["ratio"] = round(results["load_rows_per_s"] / results["raw_rows_per_s"], 3)
    if "initial" in results:
        initial = results["initial"]
        results["initial_rows_per_s"] = round(initial["rows"] / initial["seconds"])
        results["initial_over_load"] = round(
            results["initial_rows_per_s"] / results["load_rows_per_s"], 3)
    return results


@contextlib.contextmanager
def _server(store: str, directory: Path) -> Iterator[tuple[list[str], int | None]]:
    """A fresh server of `store` on its own data directory: the phase's arguments and its pid."""
    if store == "neo4j":
        from graph_store import StoreSettings
        from graph_store.local_neo4j import LocalNeo4j

        os.environ.setdefault("NEO4J_PASSWORD", secrets.token_urlsafe(24))
        settings = StoreSettings(
            backend="neo4j", data_dir=directory, neo4j_uri=f"neo4j://127.0.0.1:{free_port()}",
            neo4j_analyst_uri=f"neo4j://127.0.0.1:{free_port()}",
            neo4j_analyst_password=os.environ["NEO4J_PASSWORD"],
        )
        local = LocalNeo4j(settings)
        try:
            main = local.start()[0]
            yield ["--store", "neo4j", "--uri", settings.neo4j_uri], main.pid
        finally:
            local.stop()
        return
    from graph_store.embedded import EmbeddedFalkorDB

    # Its password in the environment, where the phases' subprocesses' StoreSettings read it.
    password = os.environ.setdefault("DONOR_MATCH_FALKORDB_PASSWORD", secrets.token_urlsafe(24))
    server = EmbeddedFalkorDB(directory / "falkordb", free_port(), password=password)
    status = server.start()
    try:
        yield ["--store", "falkordb", "--port", str(server.port), "--graph", "bench"], status.pid
    finally:
        server.stop()


def _markdown(all_results: dict[str, Any], store: str) -> str:
    results = all_results[store]
    load, raw = results["load"], results["raw"]
    lines = [
        f"**{store}**: {all_results['donations']:,} donations, {all_results['donors']:,} donors, "
        f"{all_results['nonprofits']:,} nonprofits (batch {all_results['batch_size']}; "
        f"{all_results['machine']}; best of {len(load['all_rows_per_s'])} alternating runs: "
        f"load {load['all_rows_per_s']}, raw {raw['all_rows_per_s']} rows/s)",
        "",
        "| entity | rows | load rows/s | raw rows/s | load/raw |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, entity in load["entities"].items():
        raw_rate = raw["entities"].get(name, {}).get("rows_per_s") or 0
        ratio = f"{entity['rows_per_s'] / raw_rate:.2f}" if raw_rate else "-"
        lines.append(f"| {name} | {entity['rows']:,} | {entity['rows_per_s']:,} | "
                     f"{raw_rate:,} | {ratio} |")
    lines += [
        f"| **all** | {load['rows']:,} | {results['load_rows_per_s']:,} | "
        f"{results['raw_rows_per_s']:,} | **{results['ratio']:.2f}** |",
        "",
        f"wall (best run): load {load['seconds']:.0f} s, raw sends {raw['seconds']:.0f} s, "
        f"synth {all_results['synth']['seconds']:.0f} s; peak RSS: load process "
        f"{load['peak_rss_mb']:.0f} MB, raw process {raw['peak_rss_mb']:.0f} MB, synth "
        f"{all_results['synth']['peak_rss_mb']:.0f} MB, {store} server "
        f"{results['server_peak_rss_mb'] or 0:.0f} MB",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
