"""API load benchmark: `matches(first: 20)` for random donors over HTTP, and the floor.

    .venv/bin/python bench/api_load.py --donors 1000000 --nonprofits 100000 --donations 2000000

1. prepare (cached under var/bench/api-<donors>-<nonprofits>-<donations>/, so reruns skip it):
   stream the synthetic graph to Parquet (etl.synth), load it into an embedded FalkorDB
   through the real pipeline (etl.pipeline.run_load), and promote a model whose artifact covers
   every donor. Training TF-GNN on the full graph does not fit this machine (its evaluation
   scores every donor against every nonprofit: 10^11 scores at 1M x 100k), so the model is
   trained (graph_model.train.fit) on a sample of --train-donors donors with their gifts, and
   its message passing, which has no per-node parameters, then embeds the whole graph: every
   donor and nonprofit gets its embedding from the full graph, as `train` serves them. Then
   --needs-share of the nonprofits state a funding need (through the API's own statement).
2. serve: one uvicorn process (uvloop, httptools) with the API app and, beside it, a bare
   Starlette endpoint `/bare/matches` calling the same MatchService (same index, same store
   reads, same top 20) and answering plain JSON: the floor, what GraphQL costs nothing over.
3. load: bench/load_matches.mjs in its own Node process, once the store has settled (`_settle`):
   GraphQL and the bare endpoint at each fixed --rate (an open loop: latency percentiles at
   that offered rate, counted from when each request was due), then each as fast as it answers
   over --connections (a closed loop: throughput). Each phase runs as --rounds slices per
   target, the two targets taking turns in alternating order, pooled (bench/load_summary.py).
   Each slice also records the API processes' CPU per request, each process's share of it,
   and how often the store forked.
4. stall (--stall): the same, at the first --rate for --stall-seconds, while a bulk update of
   funding needs (`bulk_update_needs`) or an ETL load of donations (`etl_load_donations`)
   lands in every slice, starting 3 s in, so a stall after bulk writes shows in p99. Each stall
   slice starts once the store has settled (--settle-seconds without a fork), and lasts long
   enough for the forks that collect its write's index garbage: they stall that slice, not the
   other target's next one.
The API sends each answer's phases (Server-Timing), which the generator records; the results
give the mean phases of the slowest 1% of each GraphQL phase's answers and what their latency
held outside the app.
The targets are ratios in one run: GraphQL's throughput over the floor's, and its p99 over the
floor's at the first --rate, with and without the stalls.
Results go to bench/results/api-load-<donors>.json and stdout. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from load_summary import summarise
from ports import free_port

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SECRET = "bench-signing-key-" + "x" * 32  # a throwaway HS256 key for this run only


def _log(message: str) -> None:
    print(f"[api-load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- prepare


def _training_sample(data: Path, donors: int, out: Path) -> None:
    """The snapshot tables of `donors` random donors with their causes and gifts, and the
    nonprofits they gave to: small enough for `fit` and its dense evaluation."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from etl.snapshot import write_snapshot
    from etl.tables import TABLE_SCHEMAS

    def read(name: str) -> pa.Table:
        return pq.read_table(data / f"{name}.parquet", columns=TABLE_SCHEMAS[name].names)

    all_donors = read("donors")
    rng = np.random.default_rng(0)
    chosen = all_donors.take(rng.choice(all_donors.num_rows, donors, replace=False))
    ids = chosen["id"]
    donations = read("donations").filter(pc.is_in(pc.field("donor_id"), ids))
    given = pc.unique(donations["nonprofit_id"])
    tables = {
        "regions": read("regions"),
        "causes": read("causes"),
        "donors": chosen,
        "nonprofits": read("nonprofits").filter(pc.is_in(pc.field("id"), given)),
        "donor_causes": read("donor_causes").filter(pc.is_in(pc.field("donor_id"), ids)),
        "nonprofit_causes": read("nonprofit_causes").filter(
            pc.is_in(pc.field("nonprofit_id"), given)
        ),
        "donations": donations,
    }
    write_snapshot({name: t.cast(TABLE_SCHEMAS[name]) for name, t in tables.items()}, out)


def _full_snapshot(data: Path, out: Path) -> None:
    import pyarrow.parquet as pq

    from etl.snapshot import write_snapshot
    from etl.tables import TABLE_ORDER, TABLE_SCHEMAS

    write_snapshot(
        {
            name: pq.read_table(data / f"{name}.parquet", columns=TABLE_SCHEMAS[name].names).cast(
                TABLE_SCHEMAS[name]
            )
            for name in TABLE_ORDER
        },
        out,
    )


def _promote_model(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import tensorflow as tf

    from graph_model import schema
    from graph_model.artifacts import write_artifact
    from graph_model.config import TrainConfig
    from graph_model.graph_tensor import build_graph_tensor
    from graph_model.snapshot import read_snapshot
    from graph_model.split import temporal_split
    from graph_model.train import fit

    started = time.monotonic()
    sample_dir, full_dir = work / "snapshots" / "sample", work / "snapshots" / "full"
    _training_sample(work / "parquet", args.train_donors, sample_dir)
    _full_snapshot(work / "parquet", full_dir)
    config = TrainConfig(steps=args.train_steps, seed=0)
    sample = read_snapshot(sample_dir)
    split = temporal_split(sample.donations, len(sample.nonprofit_ids), config.holdout_fraction)
    trained = fit(sample, split, config)
    _log(
        f"trained on {len(sample.donor_ids)} donors in {time.monotonic() - started:.0f} s; "
        "embedding the full graph"
    )

    full = read_snapshot(full_dir)
    full_split = temporal_split(full.donations, len(full.nonprofit_ids), config.holdout_fraction)
    # Served embeddings see every training donation as an edge, as graph_model.train does.
    embeddings = trained.model(build_graph_tensor(full, full_split.train_pairs), training=False)
    metrics = {
        "bench": "trained on a donor sample, embedded over the full graph; not evaluated",
        "sample": trained.evaluation.summary(),
        "train_donors": len(sample.donor_ids),
        "steps": config.steps,
    }
    version = write_artifact(
        work / "models",
        snapshot_dir=full_dir,
        snapshot_hash=full.hash,
        save_model=lambda path: tf.saved_model.save(trained.model, str(path)),
        donor_ids=full.donor_ids,
        nonprofit_ids=full.nonprofit_ids,
        donor_embeddings=embeddings[schema.DONOR].numpy(),
        nonprofit_embeddings=embeddings[schema.NONPROFIT].numpy(),
        gift_donors=full_split.train.donor,
        gift_nonprofits=full_split.train.nonprofit,
        metrics=metrics,
    )
    return {
        "version": version.name,
        "seconds": round(time.monotonic() - started, 1),
        "donors_embedded": len(full.donor_ids),
        "sample_metrics": metrics["sample"],
    }


def store_password() -> str:
    """The embedded store's password for this run: the environment's, else made up and put in
    the environment, where StoreSettings and the API's subprocesses find it."""
    return os.environ.setdefault("DONOR_MATCH_FALKORDB_PASSWORD", secrets.token_urlsafe(24))


def _store_settings(port: int) -> Any:
    from graph_store import StoreSettings

    return StoreSettings(
        backend="falkordb",
        falkordb_port=port,
        graph_name="bench",
        analyst_graph_name="bench_analyst",
        timeout_s=600,
    )


class BenchStore:
    """The store a run serves from, started and stopped by the benchmark: the embedded FalkorDB
    of the prepared directory (`work/falkordb`), or with `kind` "neo4j" a local Neo4j server
    (graph_store.local_neo4j, its product server only: the benchmark reads no analytics) on
    `work/neo4j-data`, loaded from the same Parquet files by the same pipeline and served with
    the same model. Each keeps what its preparation did in its own file (`ready_file`)."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.work = work
        self.port = 0
        self._falkordb: Any = None
        self._neo4j: Any = None
        self._neo4j_uris = ("", "")

    @property
    def ready_file(self) -> Path:
        return self.work / ("ready.json" if self.kind == "falkordb" else f"ready-{self.kind}.json")

    def settings(self) -> Any:
        if self.kind == "falkordb":
            return _store_settings(self.port)
        from graph_store import StoreSettings

        # Passwords: the ones the local server generated under its data directory (the
        # settings find them there), unless the environment names others.
        return StoreSettings(
            backend="neo4j",
            data_dir=self.work / "neo4j-data",
            neo4j_uri=self._neo4j_uris[0],
            neo4j_analyst_uri=self._neo4j_uris[1],
            timeout_s=600,
        )

    def settings_json(self) -> str:
        """What `serve` needs to open the store (no secrets: passwords stay in their files)."""
        from pydantic import SecretStr

        settings = self.settings()
        secret = {k for k, v in dict(settings).items() if isinstance(v, SecretStr)}
        return json.dumps(settings.model_dump(mode="json", exclude=secret))

    def start(self, fresh: bool = False) -> None:
        if self.kind == "falkordb":
            from graph_store.embedded import EmbeddedFalkorDB

            if fresh:
                shutil.rmtree(self.work / "falkordb", ignore_errors=True)
            self._falkordb = EmbeddedFalkorDB(self.work / "falkordb", free_port(),
                                            password=store_password())
            self._falkordb.start(wait_s=600)
            self.port = self._falkordb.port
            return
        from graph_store.local_neo4j import LocalNeo4j, find_java, passwords, resolve_classpath

        if fresh:
            shutil.rmtree(self.work / "neo4j-data", ignore_errors=True)
        self.port = free_port()
        self._neo4j_uris = (f"neo4j://127.0.0.1:{self.port}", f"neo4j://127.0.0.1:{free_port()}")
        settings = self.settings()
        self._neo4j = LocalNeo4j(settings).main
        process = self._neo4j.start(resolve_classpath(), find_java(), passwords(settings))
        if process is not None:
            self._neo4j.wait_ready(process, time.monotonic() + 600)

    def compact(self) -> None:
        if self.kind == "falkordb":
            _compact(self.port)

    def forks(self) -> int | None:
        """How often the store's server has forked since it started (FalkorDB; None for Neo4j,
        which does not fork)."""
        if self.kind != "falkordb":
            return None
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, password=store_password())
        try:
            return int(client.info("stats")["total_forks"])
        finally:
            client.close()

    def stop(self) -> None:
        if self._falkordb is not None:
            self._falkordb.stop()
        if self._neo4j is not None:
            self._neo4j.stop()


def prepare_store(work: Path, args: argparse.Namespace, store: BenchStore) -> dict[str, Any]:
    """`prepare`, then for a store other than the embedded FalkorDB, its own load of the same
    Parquet files (once: kept in its `ready_file`). Starts `store`, which the caller stops."""
    prepared = prepare(work, args)
    if store.kind == "falkordb" or store.ready_file.is_file():
        store.start()
        return json.loads(store.ready_file.read_text()) if store.kind != "falkordb" else prepared
    from etl.pipeline import LoadOptions, run_load
    from etl.sources import open_source
    from graph_store import open_store

    store.start(fresh=True)
    graph = open_store(store.settings())
    try:
        graph.apply_schema()
        began = time.monotonic()
        with tempfile.TemporaryDirectory() as loads:
            report = run_load(
                graph, open_source("parquet", work / "parquet"),
                LoadOptions(loads_dir=Path(loads)), path=work / "parquet",
            )
        if not report.ok:
            raise SystemExit(f"load into {store.kind} failed: {report.error}")
        load_s = round(time.monotonic() - began, 1)
        _log(f"loaded into {store.kind} in {load_s:.0f} s")
    finally:
        graph.close()
    info = {"counts": prepared["counts"], "load_seconds": load_s, "model": prepared["model"]}
    store.ready_file.write_text(json.dumps(info, indent=2) + "\n")
    return info


def prepare(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    ready = work / "ready.json"
    if ready.is_file():
        _log(f"reusing the prepared store and model in {work}")
        return json.loads(ready.read_text())

    from etl.pipeline import LoadOptions, run_load
    from etl.sources import open_source
    from etl.synth import SynthConfig, stream
    from graph_store import open_store
    from graph_store.embedded import EmbeddedFalkorDB

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    counts = stream(
        # 16 causes and 20 regions: the graph docs/bench-api-load.md's figures were measured on.
        SynthConfig(
            donors=args.donors, nonprofits=args.nonprofits, causes=16, regions=20,
            donations=args.donations, seed=args.seed,
        ),
        work / "parquet",
    )
    _log(f"synthetic graph written in {time.monotonic() - started:.0f} s: {counts}")
    server = EmbeddedFalkorDB(work / "falkordb", free_port(), password=store_password())
    server.start()
    try:
        store = open_store(_store_settings(server.port))
        store.apply_schema()
        began = time.monotonic()
        report = run_load(
            store,
            open_source("parquet", work / "parquet"),
            LoadOptions(loads_dir=work / "loads"),
            path=work / "parquet",
        )
        if not report.ok:
            raise SystemExit(f"load failed: {report.error}")
        load_s = time.monotonic() - began
        _log(f"loaded in {load_s:.0f} s")
        _compact(server.port)
        store.close()
    finally:
        server.stop()
    model = _promote_model(work, args)
    _log(f"model {model['version']} promoted in {model['seconds']} s")
    info = {"counts": counts, "load_seconds": round(load_s, 1), "model": model}
    ready.write_text(json.dumps(info, indent=2) + "\n")
    return info


def _compact(port: int) -> None:
    """Rewrite the store's append-only file into a snapshot. A restart then reloads in seconds
    rather than replaying every write; and replayed index updates leave garbage that FalkorDB's
    index collector clears in a fork of the whole server (5 GB here), a stall of a second or
    two in the middle of a measured phase."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, password=store_password())
    client.bgrewriteaof()
    while client.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(1)
    client.close()


def _state_funding_needs(store: Any, args: argparse.Namespace) -> int:
    """Nonprofits state their unmet needs through the API (the ETL carries none): give a share
    of them one, heavy-tailed, so that ranking weighs real impact and the API holds and
    refreshes as many needs as a live deployment would."""
    import numpy as np

    from graph_store import statement

    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(args.nonprofits, int(args.needs_share * args.nonprofits), replace=False)
    amounts = np.round(rng.lognormal(mean=10.0, sigma=1.5, size=len(chosen)), 2)
    began, now = time.monotonic(), int(time.time())
    for position, amount in zip(chosen.tolist(), amounts.tolist(), strict=True):
        store.write(
            statement("api/set_funding_need"),
            {"id": f"nonprofit-{position:06d}", "funding_need": amount, "now": now},
        )
    _log(f"{len(chosen)} nonprofits state a funding need ({time.monotonic() - began:.0f} s)")
    return len(chosen)


def state_needs_once(prepared: dict[str, Any], store: BenchStore, args: argparse.Namespace) -> None:
    """Apply the schema's indexes added since the store was prepared and, the first time the
    prepared store is served, state the nonprofits' funding needs (kept in its ready file)."""
    from graph_store import open_store

    graph = open_store(store.settings())
    try:
        graph.apply_schema()
        if "funding_needs" not in prepared:
            prepared["funding_needs"] = _state_funding_needs(graph, args)
            store.compact()
            store.ready_file.write_text(json.dumps(prepared, indent=2) + "\n")
    finally:
        graph.close()


def bulk_update_needs(store_settings: Any, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """What an operator's bulk update of funding needs does to a running API: --needs-share of
    the nonprofits get a new need, one write each as the API's own statement makes it, as fast
    as the store takes them. Every API process then reads the changes on its next refresh."""
    import numpy as np

    from graph_store import open_store, statement

    rng = np.random.default_rng(seed)
    chosen = rng.choice(args.nonprofits, int(args.needs_share * args.nonprofits), replace=False)
    amounts = np.round(rng.lognormal(mean=10.0, sigma=1.5, size=len(chosen)), 2)
    store = open_store(store_settings)
    began, now = time.monotonic(), int(time.time())
    try:
        for position, amount in zip(chosen.tolist(), amounts.tolist(), strict=True):
            store.write(
                statement("api/set_funding_need"),
                {"id": f"nonprofit-{position:06d}", "funding_need": amount, "now": now},
            )
    finally:
        store.close()
    seconds = round(time.monotonic() - began, 1)
    return {"kind": "bulk_needs", "writes": len(chosen), "seconds": seconds}


def etl_load_donations(
    store_settings: Any, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """An ETL load of --etl-donations donations through the real pipeline (validation, batched
    writes), as the nightly job lands one. The same batch every time (fixed ids: the first
    load creates them, later ones rewrite them), so the graph does not grow run by run."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from etl.pipeline import LoadOptions, run_load
    from etl.sources import open_source
    from etl.tables import TABLE_SCHEMAS
    from graph_store import open_store

    batch = work / "etl-donations"
    if not (batch / "donations.parquet").is_file():
        rng = np.random.default_rng(args.seed + 1)
        n, now = args.etl_donations, int(time.time())
        table = pa.table(
            {
                "id": [f"bench-etl-{i:07d}" for i in range(n)],
                "donor_id": [f"donor-{d:07d}" for d in rng.integers(0, args.donors, n).tolist()],
                "nonprofit_id": [
                    f"nonprofit-{p:06d}" for p in rng.integers(0, args.nonprofits, n).tolist()
                ],
                "amount": np.round(rng.lognormal(3.5, 1.0, n), 2),
                "ts": now - rng.integers(0, 30 * 86400, n),
            },
            schema=TABLE_SCHEMAS["donations"],
        )
        batch.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, batch / "donations.parquet")
    store = open_store(store_settings)
    began = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as loads:
            report = run_load(
                store, open_source("parquet", batch), LoadOptions(loads_dir=Path(loads)), path=batch
            )
    finally:
        store.close()
    return {
        "kind": "etl_donations",
        "rows": args.etl_donations,
        "ok": report.ok,
        "seconds": round(time.monotonic() - began, 1),
    }


# ------------------------------------------------------------------------------------ serve


def _served_store_settings() -> Any:
    """The served API's store settings: the prepared store's, with the product's default call
    timeout (the 600 s that loading needs would also be the funding-need refresh's overlap)."""
    from graph_store import StoreSettings

    if "BENCH_STORE" in os.environ:
        settings = StoreSettings(**json.loads(os.environ["BENCH_STORE"]))
    else:
        settings = _store_settings(int(os.environ["BENCH_FALKORDB_PORT"]))
    default = StoreSettings.model_fields["timeout_s"].default
    return settings.model_copy(update={"timeout_s": default})


def bench_app() -> Any:
    """The API and, beside it, the bare floor endpoint (a uvicorn factory: one per worker).

    Configured through BENCH_MODELS and BENCH_FALKORDB_PORT or BENCH_STORE (a store's
    settings as JSON, `BenchStore.settings_json`), which `serve` sets.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.types import Receive, Scope, Send

    from donor_match.services.auth import Principal, Role
    from donor_match.settings import AppSettings, AuthSettings
    from entrypoints.asgi import create_app
    from graphql_api.observability import run_in_thread

    api = create_app(
        AppSettings(
            models_dir=Path(os.environ["BENCH_MODELS"]),
            rate_limit_per_minute=10**9,
            server_timing=True,  # each answer's phases, for the slowest 1%'s breakdown
        ),
        _served_store_settings(),
        AuthSettings(jwt_secret=SECRET),
    )
    matches = api.state.services.matches
    admin = Principal("bench", Role.ADMIN)

    async def bare_matches(request: Request) -> JSONResponse:
        # The API's own thread hop (its pool of service threads), so that the floor differs
        # from GraphQL by GraphQL and the middleware only.
        found = await run_in_thread(matches.matches, admin, request.query_params["donor"], 20)
        return JSONResponse(
            [
                {
                    "id": m.id,
                    "score": m.score,
                    "probability": m.probability,
                    "impact": m.impact,
                    "nonprofit": {"id": m.nonprofit.id, "name": m.nonprofit.name},
                    "reasons": {
                        "sharedCauses": [
                            {"id": c.id, "name": c.name} for c in m.reasons.shared_causes
                        ],
                        "similarDonors": m.reasons.similar_donors,
                        "distanceKm": m.reasons.distance_km,
                    },
                }
                for m in found
            ]
        )

    bare = Starlette(routes=[Route("/bare/matches", bare_matches)])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # The floor bypasses the API's middleware too: only the service call and JSON remain.
        target = bare if scope.get("path") == "/bare/matches" else api
        await target(scope, receive, send)

    app.api = api  # type: ignore[attr-defined]  # bench/api_cpu.py reaches the services
    return app


def serve(args: argparse.Namespace) -> None:
    """uvicorn with `bench_app` in --workers processes (run as a subprocess of the benchmark).

    With BENCH_REUSE_PORT=1 each worker listens on a socket of its own bound with SO_REUSEPORT,
    so the kernel spreads new connections over the workers evenly (by a hash of each
    connection), instead of uvicorn's one shared socket, where whichever worker wakes first
    accepts: a burst of connections then lands mostly on one worker and, kept alive, stays
    there."""
    import uvicorn

    os.environ["BENCH_MODELS"] = args.models
    if args.store_json:
        os.environ["BENCH_STORE"] = args.store_json
    else:
        os.environ["BENCH_FALKORDB_PORT"] = str(args.falkordb_port)
    options: dict[str, Any] = {
        "factory": True,
        "app_dir": str(REPO / "bench"),
        "host": "127.0.0.1",
        "port": args.port,
        "log_level": "warning",
        "access_log": False,
        "loop": "uvloop",
        # The image's protocol, with its header and idle keep-alive bounds (their defaults).
        "http": "graphql_api.server:BoundedHttpProtocol",
        "lifespan": "on",
    }
    if os.environ.get("BENCH_REUSE_PORT") != "1" or args.workers == 1:
        uvicorn.run("api_load:bench_app", workers=args.workers, **options)
        return
    import multiprocessing
    import signal

    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_serve_reuse_port, args=(options,)) for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()

    def stop(*_: Any) -> None:
        for worker in workers:
            worker.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in workers:
        worker.join()


def _serve_reuse_port(options: dict[str, Any]) -> None:
    import uvicorn

    options = dict(options)
    sys.path.insert(0, options.pop("app_dir"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((options["host"], options["port"]))
    sock.set_inheritable(True)
    server = uvicorn.Server(uvicorn.Config("api_load:bench_app", **options))
    server.run(sockets=[sock])


def _wait_ready(base: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the API at {base} did not get ready in {timeout_s:.0f} s")
        time.sleep(1)


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    """--donors, --nonprofits and --donations: the synthetic graph, which also names the
    prepared work directory (`default_workdir`) that bench/api_ab.py reuses."""
    parser.add_argument("--donors", type=int, default=1_000_000)
    parser.add_argument("--nonprofits", type=int, default=100_000)
    parser.add_argument("--donations", type=int, default=2_000_000)


def default_workdir(donors: int, nonprofits: int, donations: int) -> Path:
    return REPO / "var" / "bench" / f"api-{donors}-{nonprofits}-{donations}"


def start_api(
    work: Path,
    store_port: int,
    workers: int,
    env: dict[str, str] | None = None,
    repo: Path | None = None,
    store_json: str | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """`serve` in a subprocess with `workers` uvicorn processes (and `env` added to theirs),
    from the checkout `repo` (default: this one; another commit's export for a code A/B), on
    the FalkorDB at `store_port` or the store `store_json` names (`BenchStore.settings_json`);
    returns it and its base URL."""
    port = free_port()
    script = (repo / "bench" / "api_load.py") if repo is not None else Path(__file__)
    store = ["--store-json", store_json] if store_json else ["--falkordb-port", str(store_port)]
    command = [
        sys.executable, str(script), "--serve", "--port", str(port), *store,
        "--models", str(work / "models"), "--workers", str(workers),
    ]
    server = subprocess.Popen(command, env={**os.environ, **(env or {})})
    return server, f"http://127.0.0.1:{port}"


def api_workers(server: subprocess.Popen[bytes]) -> list[int]:
    """The processes serving requests for a `--serve` process: its uvicorn workers, or itself
    when it runs one (uvicorn serves in process then)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    workers = [
        int(pid) for pid in children  # not multiprocessing's resource tracker, which serves none
        if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return workers or [server.pid]


def worker_cpu_seconds(workers: list[int]) -> dict[int, float]:
    """Each process's user and system CPU seconds so far (Linux /proc)."""
    return {pid: _cpu_seconds(f"/proc/{pid}/stat") for pid in workers}


def loop_thread_cpu_seconds(workers: list[int]) -> float:
    """The CPU seconds the processes' main threads (their event loops) have used so far: the
    rest of a worker's is its service threads'."""
    return sum(_cpu_seconds(f"/proc/{pid}/task/{pid}/stat") for pid in workers)


def _cpu_seconds(stat: str) -> float:
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------- load


def _load(
    base: str,
    target: str,
    donors: int,
    connections: int,
    rate: float,
    seconds: int,
    token: str,
    workers: list[int] | None = None,
    during: Callable[[], dict[str, Any]] | None = None,
    forks: Callable[[], int | None] | None = None,
) -> dict[str, Any]:
    """One run of bench/load_matches.mjs in its own Node process (rate 0: as fast as answered):
    its figures (`load_summary.summarise`) and, under `record`, every answer, for `pooled`.
    With the API's `workers`, also the CPU they spent per request (on a shared host it tells a
    slow host from slow code) and each one's share of it (how evenly the load spread); with
    `during`, that runs here (a bulk write) from 3 s into the load, while it goes on; with
    `forks`, how often the store forked meanwhile (a fork of a store of gigabytes stalls it)."""
    config = {
        "url": base,
        "target": target,
        "donors": donors,
        "connections": connections,
        "rate": rate,
        "seconds": seconds,
        "token": token,
    }
    _log(
        f"load: {target}, {connections} connections, "
        f"{'as fast as answered' if rate == 0 else f'{rate:.0f} req/s'}, {seconds} s"
    )
    spent = worker_cpu_seconds(workers or [])
    spent_on_loops = loop_thread_cpu_seconds(workers or [])
    forked = forks() if forks else None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = subprocess.Popen(
        ["node", str(REPO / "bench" / "load_matches.mjs"), json.dumps(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    background = None
    try:
        if during is not None:
            time.sleep(3)
            background = during()
            _log(f"during the load: {background}")
    finally:
        out, err = load.communicate()
    if load.returncode != 0:
        raise SystemExit(f"load generator failed ({load.returncode}): {err[-2000:]}")
    record = json.loads(out.strip().splitlines()[-1])
    # The generator shares the host's cores with the API and the store: its own CPU per request
    # (the only child that ended meanwhile) tells how much of a throughput gap is its.
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    generator_s = (ended.ru_utime - children.ru_utime) + (ended.ru_stime - children.ru_stime)
    result: dict[str, Any] = {
        "target": target,
        "connections": connections,
        "offered_rate": rate or None,
        "seconds": seconds,
        **summarise([record]),
    }
    if result["requests"]:
        result["generator_cpu_ms_per_request"] = round(generator_s / result["requests"] * 1e3, 2)
    if background is not None:
        result["during"] = background
    if forked is not None and forks is not None:
        result["store_forks"] = (forks() or 0) - forked
    if workers:
        now = worker_cpu_seconds(workers)
        used = {pid: now[pid] - spent[pid] for pid in workers}
        result["api_cpu_ms_per_request"] = round(sum(used.values()) / result["requests"] * 1e3, 2)
        result["api_cpu_share_by_worker"] = _shares(used)
        result["api_cpu_s_by_worker"] = used
        loops = loop_thread_cpu_seconds(workers) - spent_on_loops
        result["api_loop_cpu_s"] = loops
        result["api_loop_cpu_ms_per_request"] = round(loops / result["requests"] * 1e3, 2)
    _log(json.dumps({k: v for k, v in result.items() if k not in ("slowest_1pct", "all_answers")}))
    result["record"] = record
    return result


def _shares(used: dict[int, float]) -> list[float]:
    return [round(u / max(sum(used.values()), 1e-9), 2) for u in sorted(used.values())]


def pooled(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One phase from its slices (`_load` results of one target, taken in turns with the other
    target's): figures over all their answers, CPU over all their requests, and each slice's
    headline figures in run order."""
    first = slices[0]
    result: dict[str, Any] = {
        "target": first["target"],
        "connections": first["connections"],
        "offered_rate": first["offered_rate"],
        "seconds": sum(piece["seconds"] for piece in slices),
        **summarise([piece["record"] for piece in slices]),
    }
    if "api_cpu_s_by_worker" in first:
        used: dict[int, float] = {}
        for piece in slices:
            for pid, seconds in piece["api_cpu_s_by_worker"].items():
                used[pid] = used.get(pid, 0.0) + seconds
        result["api_cpu_ms_per_request"] = round(sum(used.values()) / result["requests"] * 1e3, 2)
        result["api_cpu_share_by_worker"] = _shares(used)
        loops = sum(piece["api_loop_cpu_s"] for piece in slices)
        result["api_loop_cpu_ms_per_request"] = round(loops / result["requests"] * 1e3, 2)
    result["slices"] = [_headline(piece) for piece in slices]
    return result


def _headline(piece: dict[str, Any]) -> dict[str, Any]:
    keys = ("target", "p50_ms", "p99_ms", "throughput_rps", "api_cpu_ms_per_request",
            "api_loop_cpu_ms_per_request", "generator_cpu_ms_per_request", "store_forks",
            "settled_s", "during")
    return {k: piece[k] for k in keys if k in piece}


def _niced(write: Callable[[], dict[str, Any]], nice: int) -> Callable[[], dict[str, Any]]:
    """`write` in a thread of its own at CPU niceness `nice` (Linux: per thread). A writer's own
    client work (reading Parquet, building batches) runs on another machine in a deployment;
    here it shares the API's two cores, and niced it takes less from them. The store's work
    for the writes is not niced."""

    def run() -> dict[str, Any]:
        result: list[dict[str, Any]] = []

        def target() -> None:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            result.append(write())

        thread = threading.Thread(target=target, name="bench-writer")
        thread.start()
        thread.join()
        if not result:
            raise SystemExit("the writer failed (its traceback is above)")
        return result[0]

    return run


def _settle(forks: Callable[[], int | None], quiet_s: float, limit_s: float = 240) -> float:
    """Wait until the store has not forked for `quiet_s` (at most `limit_s`); returns the wait.
    After loading its append-only file FalkorDB forks to collect the index garbage the replay
    left, on a timer, for the first half minute or so: a phase measured then is slower whichever
    target it serves (docs/api-performance.md)."""
    began = time.monotonic()
    last, since = forks(), began
    while time.monotonic() - since < quiet_s and time.monotonic() - began < limit_s:
        time.sleep(1)
        now = forks()
        if now != last:
            last, since = now, time.monotonic()
    return round(time.monotonic() - began, 1)


def _ratio(runs: dict[str, Any], phase: str) -> float:
    """GraphQL's p99 over the floor's in the phase named `graphql_<phase>` / `bare_<phase>`."""
    return round(runs[f"graphql_{phase}"]["p99_ms"] / runs[f"bare_{phase}"]["p99_ms"], 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_graph_arguments(parser)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--store",
        choices=["falkordb", "neo4j"],
        default="falkordb",
        help="serve from the embedded FalkorDB or a local Neo4j server (graph_store.local_neo4j; "
        "loaded once from the same Parquet files, kept under the work directory)",
    )
    parser.add_argument("--train-donors", type=int, default=5_000)
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[300.0, 200.0],
        help="fixed-rate phases, req/s (the first is the target's)",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--needs-share", type=float, default=0.3, help="share of nonprofits stating a need"
    )
    parser.add_argument("--workers", type=int, default=1, help="API processes (uvicorn)")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--stall",
        nargs="*",
        choices=["needs", "etl"],
        default=["needs", "etl"],
        help="stall phases: GraphQL, then the floor, at the first --rate while a bulk update of "
        "funding needs (needs) or an ETL load of donations (etl) lands",
    )
    parser.add_argument(
        "--stall-seconds",
        type=int,
        default=60,
        help="each stall slice: long enough that the store's forks to collect the garbage of "
        "its write (every 30 s while there is some) fall within it",
    )
    parser.add_argument(
        "--writer-nice",
        type=int,
        default=10,
        help="CPU niceness of the stall phases' writer thread (0: the API's own priority)",
    )
    parser.add_argument(
        "--first",
        choices=["graphql", "bare"],
        default="graphql",
        help="the target of the first slice (the order then alternates pair by pair)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=35,
        help="before measuring, and before each stall slice, wait until the store has not "
        "forked for this long (0: no wait)",
    )
    parser.add_argument(
        "--warmup-seconds",
        type=int,
        default=5,
        help="unmeasured load of each target at the first --rate before the phases (0: none)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="slices per phase and target; GraphQL and the floor take turns, each slice "
        "--seconds (--stall-seconds) long, and the slices' answers are pooled",
    )
    parser.add_argument(
        "--etl-donations", type=int, default=None, help="the ETL batch (default: 5%% of donations)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="default: var/bench/api-<donors>-<nonprofits>-<donations>",
    )
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="load the store and promote the model, then stop",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--falkordb-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store-json", help=argparse.SUPPRESS)
    parser.add_argument("--models", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return

    from donor_match.services.auth import Role, TokenService
    from donor_match.settings import AuthSettings

    work = args.workdir or default_workdir(args.donors, args.nonprofits, args.donations)
    server = BenchStore(args.store, work)
    started = time.monotonic()
    try:
        prepared = prepare_store(work, args, server)
    except BaseException:
        server.stop()
        raise
    if args.prepare_only:
        server.stop()
        return
    _log(f"{args.store} up and prepared in {time.monotonic() - started:.0f} s")
    token = TokenService(AuthSettings(jwt_secret=SECRET)).issue("bench", Role.ADMIN)
    api = None
    try:
        state_needs_once(prepared, server, args)
        store_json = server.settings_json() if args.store != "falkordb" else None
        api, base = start_api(work, server.port, args.workers, store_json=store_json)
        _wait_ready(base, 600)
        # Warm both paths (model load, page cache, cold caches) before measuring.
        _load(base, "graphql", args.donors, 8, 0, 10, token)
        _load(base, "bare", args.donors, 8, 0, 5, token)
        # Only a store that forks (FalkorDB) needs to settle.
        settle_s = args.settle_seconds if server.forks() is not None else 0
        if settle_s:
            _log(f"the store settled in {_settle(server.forks, settle_s)} s")
        workers = api_workers(api)
        # Unmeasured: the first seconds of open-loop load after a pause are slower for whichever
        # target comes first (docs/api-performance.md); the comparison is of the steady state.
        warmup = [
            _load(base, target, args.donors, args.connections, args.rate[0], args.warmup_seconds,
                  token, workers, forks=server.forks)
            for target in (("graphql", "bare") if args.warmup_seconds else ())
        ]
        if args.etl_donations is None:
            args.etl_donations = max(1, args.donations // 20)
        writers: dict[str, Callable[[], dict[str, Any]]] = {
            "needs": _niced(
                lambda: bulk_update_needs(server.settings(), args, seed=time.time_ns() % 2**32),
                args.writer_nice,
            ),
            "etl": _niced(lambda: etl_load_donations(server.settings(), work, args),
                          args.writer_nice),
        }
        comparisons = [
            *((f"at_{rate:g}", rate, args.seconds, None) for rate in args.rate),
            ("max", 0.0, args.seconds, None),
            *(
                (f"at_{args.rate[0]:g}_during_{stall}", args.rate[0], args.stall_seconds, stall)
                for stall in args.stall
            ),
        ]
        # Each comparison runs --rounds times, GraphQL and the floor taking turns, the order
        # alternating from pair to pair (G B, B G, ...), so that drift over the run and what
        # the host or the store does meanwhile fall on both sides alike.
        slices: dict[str, list[dict[str, Any]]] = {}
        pair = 0 if args.first == "graphql" else 1
        for name, rate, seconds, stall in comparisons:
            for _ in range(args.rounds):
                for target in ("graphql", "bare") if pair % 2 == 0 else ("bare", "graphql"):
                    # FalkorDB collects the index garbage of a write in forks of the whole
                    # server, on a 30 s timer: without a wait, a fork that one slice's write
                    # causes can stall the next slice, the other target's.
                    settled = _settle(server.forks, settle_s) if stall and settle_s else None
                    piece = _load(
                        base, target, args.donors, args.connections, rate, seconds, token,
                        workers, during=writers[stall] if stall else None, forks=server.forks,
                    )
                    if settled is not None:
                        piece["settled_s"] = settled
                    slices.setdefault(f"{target}_{name}", []).append(piece)
                pair += 1
        runs = {name: pooled(pieces) for name, pieces in slices.items()}
        # Fold this run's writes into the snapshot, so that the next run starts without
        # replaying them (and without the index garbage the replay leaves).
        server.compact()
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        server.stop()
    fixed = runs[f"graphql_at_{args.rate[0]:g}"]
    results = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
        f"Python {platform.python_version()}",
        "api_workers": args.workers,
        "rounds": args.rounds,
        "writer_nice": args.writer_nice,
        "store": args.store,
        "scale": {
            "donors": args.donors,
            "nonprofits": args.nonprofits,
            "donations": args.donations,
        },
        "prepared": prepared,
        "warmup": [_headline(piece) for piece in warmup],
        "runs": runs,
        "targets": {
            "rate": args.rate[0],
            "p99_ms_at_rate": fixed["p99_ms"],
            "achieved_rps_at_rate": fixed["throughput_rps"],
            "graphql_over_bare_throughput": round(
                runs["graphql_max"]["throughput_rps"] / runs["bare_max"]["throughput_rps"], 3
            ),
            # The issue's targets are these ratios, measured in one run: >= 0.9 and <= 2.
            "graphql_over_bare_p99_at_rate": _ratio(runs, f"at_{args.rate[0]:g}"),
            **{
                f"graphql_over_bare_p99_during_{stall}": _ratio(
                    runs, f"at_{args.rate[0]:g}_during_{stall}"
                )
                for stall in args.stall
            },
        },
        "slowest_1pct_graphql": {
            name: run.get("slowest_1pct")
            for name, run in runs.items()
            if run["target"] == "graphql"
        },
    }
    args.results.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.store == "falkordb" else f"-{args.store}"
    path = args.results / f"api-load-{args.donors}{suffix}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["targets"] | {"runs": runs}, indent=2))
    print(json.dumps({"slowest_1pct_graphql": results["slowest_1pct_graphql"]}, indent=2))
    _log(f"written to {path}")


if __name__ == "__main__":
    main()
