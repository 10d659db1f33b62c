"""A first load into an empty Neo4j: the ETL's batched MERGE against Neo4j's bulk paths.

    PYTHONPATH=. .venv/bin/python bench/neo4j_initial.py --donations 1000000

The issue asks whether Neo4j's own bulk path beats the ETL's batched `UNWIND ... MERGE` on an
empty graph (`neo4j-admin database import` is not in the libraries the project runs). Three ways
to write the same donors (with their region) and donations, each on a fresh local Neo4j server
(graph_store.local_neo4j), in alternating order when repeated:
- `merge`: the ETL's own statements (neo4j/etl/merge_*.cypher), batches over Bolt;
- `create`: the same batches with CREATE (neo4j/etl/create_*.cypher, what
  `etl load --initial` sends): no lookups;
- `csv`: `LOAD CSV ... CALL { ... } IN TRANSACTIONS` from the server's import directory
  (neo4j/bench/initial_*_csv.cypher), the file written beforehand (untimed).
Regions and nonprofits are merged first, untimed. Each run checks the stored counts.
Results go to bench/results/neo4j-initial-<donations>.json and stdout. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from ports import free_port

from etl.synth import SynthConfig, stream
from etl.writer import complete, merge_statement
from graph_store import StoreSettings, open_store, statement
from graph_store.local_neo4j import LocalNeo4j

TIMED = ("donors", "donations")


def _batches(data: Path, entity: str, size: int) -> list[list[dict[str, Any]]]:
    rows = complete(entity, pq.read_table(data / f"{entity}.parquet").to_pylist())
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def run(method: str, data: Path, batches: dict[str, list[list[dict[str, Any]]]],
        work: Path) -> dict[str, Any]:
    """One load of the timed entities by `method` into a fresh server; rows/s per entity."""
    settings = StoreSettings(
        backend="neo4j", data_dir=work, neo4j_uri=f"neo4j://127.0.0.1:{free_port()}",
        neo4j_analyst_uri=f"neo4j://127.0.0.1:{free_port()}",
        neo4j_analyst_password=os.environ["NEO4J_PASSWORD"], timeout_s=3600,
        connect_timeout_s=30, retry_s=30,
    )
    local = LocalNeo4j(settings)
    main = local.start()[0]
    try:
        store = open_store(settings)
        store.apply_schema()
        for entity in ("regions", "nonprofits"):
            for batch in batches[entity]:
                store.write(merge_statement(entity), {"rows": batch, "load_id": "bench"})
        if method == "csv":  # the server reads the files from its import directory
            for entity in TIMED:
                table = pq.read_table(data / f"{entity}.parquet")
                pacsv.write_csv(table, local.main.home / "import" / f"{entity}.csv")
        import neo4j

        driver = neo4j.GraphDatabase.driver(
            settings.neo4j_uri, auth=(settings.neo4j_user, os.environ["NEO4J_PASSWORD"]))
        results: dict[str, Any] = {}
        for entity in TIMED:
            rows = sum(len(b) for b in batches[entity])
            started = time.monotonic()
            if method == "csv":
                text = statement(f"bench/initial_{entity}_csv").text
                with driver.session() as session:  # CALL IN TRANSACTIONS needs auto-commit
                    session.run(text, url=f"file:///{entity}.csv", load_id="bench").consume()
            else:
                chosen = (merge_statement(entity) if method == "merge"
                          else statement(f"etl/create_{entity}"))
                for batch in batches[entity]:
                    store.write(chosen, {"rows": batch, "load_id": "bench"})
            seconds = time.monotonic() - started
            results[entity] = {"rows": rows, "seconds": round(seconds, 2),
                               "rows_per_s": round(rows / seconds)}
        with driver.session() as session:
            counts = session.run(statement("bench/initial_counts").text).single()
        driver.close()
        for entity in TIMED:
            if counts[entity] != results[entity]["rows"]:
                raise SystemExit(f"{method}: stored {counts[entity]} {entity}, "
                                 f"expected {results[entity]['rows']}")
        total_rows = sum(r["rows"] for r in results.values())
        total_s = sum(r["seconds"] for r in results.values())
        results["all"] = {"rows": total_rows, "seconds": round(total_s, 2),
                          "rows_per_s": round(total_rows / total_s)}
        results["server_rss_mb"] = round(psutil.Process(main.pid).memory_info().rss / 2**20)
        return results
    finally:
        local.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--donations", type=int, default=200_000)
    parser.add_argument("--donors", type=int)
    parser.add_argument("--nonprofits", type=int)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--methods", default="merge,create,csv")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("NEO4J_PASSWORD", secrets.token_urlsafe(24))
    donors = args.donors or args.donations // 10
    nonprofits = args.nonprofits or args.donations // 100
    methods = args.methods.split(",")
    out: dict[str, Any] = {"donations": args.donations, "donors": donors,
                           "nonprofits": nonprofits, "batch_size": args.batch_size,
                           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "runs": {m: [] for m in methods}}
    with tempfile.TemporaryDirectory(prefix="neo4j-initial-") as tmp:
        data = Path(tmp) / "data"
        stream(SynthConfig(donors=donors, nonprofits=nonprofits, donations=args.donations),
               data)
        batches = {e: _batches(data, e, args.batch_size)
                   for e in ("regions", "nonprofits", *TIMED)}
        for round_ in range(args.repeat):
            order = methods if round_ % 2 == 0 else methods[::-1]
            for method in order:
                result = run(method, data, batches, Path(tmp) / f"{method}-{round_}")
                out["runs"][method].append(result)
                print(method, json.dumps(result), flush=True)
    base = max(r["all"]["rows_per_s"] for r in out["runs"].get("merge", [])) \
        if "merge" in out["runs"] else None
    for method in methods:
        best = max(r["all"]["rows_per_s"] for r in out["runs"][method])
        out[f"{method}_best_rows_per_s"] = best
        if base:
            out[f"{method}_over_merge"] = round(best / base, 2)
    path = args.results or Path(f"bench/results/neo4j-initial-{args.donations}.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
