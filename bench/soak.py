"""A bounded soak on loopback: mixed traffic against a served graph, and what it left behind.

    PYTHONPATH=. python bench/soak.py [--duration-s 60] [--rate 50] [--subscribers 20]
        [--donors 5000] [--out FILE]

It starts its own embedded FalkorDB servers (the product's and the analysts'; free ports, a
temporary directory), loads a synthetic graph, builds the analyst graph, trains a small model,
and serves the API with `donor-match serve` in a process of its own. With --prepared DIR it
serves instead the store and model that bench/api_load.py prepared in DIR (the 1M-donor graph:
`--prepared var/bench/api-1000000-100000-2000000`), in place, copying nothing: its only writes
there are the donations it records, and an anonymized analyst copy built once beside it.
Then, for --duration-s: matches, catalog pages, recorded donations and
an analyst's heavy queries at --rate requests/s in all, with --subscribers live subscriptions.
It reports server errors (INTERNAL_SERVER_ERROR, transport failures), p50/p99 per operation,
RSS and open files of the API and store processes before and after, Redis's client count, and
whether every acknowledged donation is stored. The issue's full soak is 10 minutes at 200 req/s
on the 1M-donor graph; on a shared machine run it shorter (the flags are capped at 600 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
import websockets
from ports import free_port
from pydantic import SecretStr

from donor_match.services.auth import Role, TokenService
from donor_match.settings import AuthSettings
from etl.anonymize import anonymize
from etl.loader import load_tables
from etl.snapshot import export_snapshot
from etl.synth import SynthConfig, generate
from graph_model.config import TrainConfig
from graph_model.train import train
from graph_store import StoreSettings, open_store, statement
from graph_store.embedded import EmbeddedFalkorDB

MATCHES = "query Matches($d: ID!) { matches(donorId: $d, first: 10) { rank nonprofit { id } } }"
CATALOG = "query Catalog { nonprofits(first: 20) { edges { node { id name causes { id } } } } }"
RECORD = "mutation Record($i: RecordDonationInput!) { recordDonation(input: $i) { id } }"
ANALYST = ("query Analyst($c: String!) { analyticsQuery(cypher: $c) { rows truncated } }")
HEAVY = ("MATCH (d:Donor)-[g:DONATED]->(n:Nonprofit) RETURN n.id AS n, count(g) AS gifts, "
         "sum(g.amount) AS total ORDER BY total DESC LIMIT 20")
FEED = "subscription($id: ID!) { donationRecorded(nonprofitId: $id) { id } }"
# Share of requests per operation.
MIX = (("matches", 0.4), ("catalog", 0.3), ("record", 0.25), ("analyst", 0.05))


def footprint(pid: int) -> dict[str, float]:
    process = psutil.Process(pid)
    return {"rss_mb": round(process.memory_info().rss / 2**20, 1),
            "open_files": process.num_fds()}


class Traffic:
    def __init__(self, url: str, tokens: dict[str, dict[str, str]], donors: list[str],
                 nonprofits: list[str]) -> None:
        self.url, self.tokens = url, tokens
        self.donors, self.nonprofits = donors, nonprofits
        self.latencies: defaultdict[str, list[float]] = defaultdict(list)
        self.outcomes: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.acknowledged: list[str] = []
        self.lock = threading.Lock()

    def one(self, client: httpx.Client, rng: random.Random) -> None:
        op = rng.choices([m[0] for m in MIX], [m[1] for m in MIX])[0]
        donor = rng.choice(self.donors)
        if op == "matches":
            body, headers = {"query": MATCHES, "variables": {"d": donor}}, self.tokens[donor]
        elif op == "catalog":
            body, headers = {"query": CATALOG}, {}
        elif op == "record":
            gift = {"donorId": donor, "nonprofitId": rng.choice(self.nonprofits),
                    "amount": round(rng.uniform(1, 200), 2), "id": f"soak-{uuid.uuid4()}"}
            body, headers = {"query": RECORD, "variables": {"i": gift}}, self.tokens["platform"]
        else:
            body, headers = {"query": ANALYST, "variables": {"c": HEAVY}}, self.tokens["analyst"]
        started = time.perf_counter()
        try:
            response = client.post(self.url, json=body, headers=headers, timeout=30)
            answer = response.json()
            codes = [e["extensions"]["code"] for e in answer.get("errors", [])]
            outcome = codes[0] if codes else "ok"
            if op == "record" and not codes:
                with self.lock:
                    self.acknowledged.append(answer["data"]["recordDonation"]["id"])
        except (httpx.HTTPError, ValueError) as exc:
            outcome = f"transport:{type(exc).__name__}"
        with self.lock:
            self.latencies[op].append(time.perf_counter() - started)
            self.outcomes[op][outcome] += 1


def drive(traffic: Traffic, rate: float, duration_s: float, workers: int) -> None:
    """`rate` requests/s spread over `workers` threads, each on its own schedule."""
    stop_at = time.monotonic() + duration_s

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        interval = workers / rate
        next_at = time.monotonic() + rng.random() * interval
        with httpx.Client() as client:
            while next_at < stop_at:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                traffic.one(client, rng)
                next_at += interval

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


async def subscribers(ws_url: str, headers: dict[str, str], nonprofits: list[str],
                      stop: asyncio.Event, received: list[int]) -> None:
    async def one(index: int, nonprofit: str) -> None:
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": headers}))
            await ws.recv()
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": FEED, "variables": {"id": nonprofit}}}))
            while not stop.is_set():
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
                if message.get("type") == "next":
                    received[index] += 1

    await asyncio.gather(*(one(i, n) for i, n in enumerate(nonprofits)))


Servers = tuple[EmbeddedFalkorDB, EmbeddedFalkorDB, StoreSettings, Path, dict[str, Any]]


def build_own(args: argparse.Namespace, work: Path, password: str) -> Servers:
    """A synthetic graph of --donors in a temporary directory, its analyst copy and a model."""
    store_server = EmbeddedFalkorDB(work / "falkordb", free_port(), password=password)
    analyst_server = EmbeddedFalkorDB(work / "falkordb-analyst", free_port(), analyst=True,
                                      password=password)
    store_server.start()
    analyst_server.start()
    settings = StoreSettings(backend="falkordb", falkordb_port=store_server.port,
                             falkordb_analyst_port=analyst_server.port,
                             falkordb_password=SecretStr(password),
                             graph_name="soak", analyst_graph_name="soak_analyst",
                             data_dir=work)
    tables = generate(SynthConfig(donors=args.donors, nonprofits=max(50, args.donors // 20),
                                  donations=args.donors * 8, seed=11))
    store, analyst = open_store(settings), open_store(settings, analyst=True)
    try:
        store.apply_schema()
        load_tables(store, tables)
        anonymize(store, analyst, secrets.token_urlsafe(32), 5)
        snapshot = export_snapshot(store, work / "snapshots")
    finally:
        store.close()
        analyst.close()
    train(snapshot, work / "models", TrainConfig(steps=60, seed=0))
    nonprofits = tables["nonprofits"].column("id").to_pylist()
    return store_server, analyst_server, settings, work / "models", {
        "donors": tables["donors"].column("id").to_pylist()[:500], "nonprofits": nonprofits,
        "counts": {"donors": args.donors, "nonprofits": len(nonprofits),
                   "donations": tables["donations"].num_rows}}


def serve_prepared(args: argparse.Namespace, password: str) -> Servers:
    """The store and model bench/api_load.py prepared under --prepared, served in place: the
    soak's recorded donations are the only writes to that store. The analysts' anonymized copy
    is built once beside it (falkordb-analyst-soak/, additive) and reused by later soaks."""
    import pyarrow.parquet as pq

    prepared = args.prepared.resolve()
    ready = prepared / "ready.json"
    if not ready.is_file() or not (prepared / "models" / "CURRENT").is_file():
        raise SystemExit(f"{prepared} is not prepared: run bench/api_load.py --prepare-only "
                         f"with its --donors/--nonprofits/--donations first")
    store_server = EmbeddedFalkorDB(prepared / "falkordb", free_port(), password=password)
    analyst_server = EmbeddedFalkorDB(prepared / "falkordb-analyst-soak", free_port(),
                                      analyst=True, password=password)
    started = time.monotonic()
    store_server.start(wait_s=1800)
    analyst_server.start(wait_s=1800)
    print(f"[soak] prepared store up in {time.monotonic() - started:.0f} s", file=sys.stderr)
    settings = StoreSettings(backend="falkordb", falkordb_port=store_server.port,
                             falkordb_analyst_port=analyst_server.port,
                             falkordb_password=SecretStr(password), graph_name="bench",
                             analyst_graph_name="bench_analyst", data_dir=prepared,
                             timeout_s=600)
    built = prepared / "falkordb-analyst-soak" / "anonymized.json"
    if not built.is_file():
        began = time.monotonic()
        # The analysts' server caps every statement at 30 s (TIMEOUT_MAX); its batches fit.
        store = open_store(settings)
        analyst = open_store(settings.model_copy(update={"timeout_s": 30.0}), analyst=True)
        try:
            report = anonymize(store, analyst, secrets.token_urlsafe(32), 5)
        finally:
            store.close()
            analyst.close()
        built.write_text(json.dumps({"seconds": round(time.monotonic() - began, 1),
                                     "report": str(report)}) + "\n")
        print(f"[soak] analyst copy built in {time.monotonic() - began:.0f} s", file=sys.stderr)
    donor_ids = pq.read_table(prepared / "parquet" / "donors.parquet", columns=["id"])
    nonprofit_ids = pq.read_table(prepared / "parquet" / "nonprofits.parquet", columns=["id"])
    rng = random.Random(11)
    all_donors = donor_ids.column("id").to_pylist()
    info = json.loads(ready.read_text())
    return store_server, analyst_server, settings.model_copy(update={"timeout_s": 10.0}), (
        prepared / "models"), {
        "donors": rng.sample(all_donors, min(500, len(all_donors))),
        "nonprofits": nonprofit_ids.column("id").to_pylist(),
        "counts": {**info.get("counts", {}), "prepared": str(prepared)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=60)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--donors", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--warmup-s", type=float, default=15)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--prepared", type=Path,
                        help="a directory bench/api_load.py prepared (ready.json, falkordb/, "
                             "models/, parquet/): serve its store and model instead of building "
                             "a graph; the soak adds only its recorded donations to that store")
    args = parser.parse_args()
    if not (0 < args.duration_s <= 600 and 0 < args.rate <= 500 and args.subscribers <= 200):
        parser.error("bounded run: --duration-s <= 600, --rate <= 500, --subscribers <= 200")

    work = Path(tempfile.mkdtemp(prefix="donor-match-soak-"))
    password = secrets.token_urlsafe(24)
    if args.prepared:
        store_server, analyst_server, settings, models, graph = serve_prepared(args, password)
    else:
        store_server, analyst_server, settings, models, graph = build_own(args, work, password)
    donors, nonprofits = graph["donors"], graph["nonprofits"]

    jwt_secret = secrets.token_urlsafe(48)
    port = free_port()
    env = {**os.environ, "DONOR_MATCH_FALKORDB_PORT": str(store_server.port),
           "DONOR_MATCH_FALKORDB_ANALYST_PORT": str(analyst_server.port),
           "DONOR_MATCH_FALKORDB_PASSWORD": password,
           "DONOR_MATCH_GRAPH": settings.graph_name,
           "DONOR_MATCH_ANALYST_GRAPH": settings.analyst_graph_name,
           "DONOR_MATCH_DATA_DIR": str(work), "DONOR_MATCH_MODELS_DIR": str(models),
           "DONOR_MATCH_JWT_SECRET": jwt_secret, "DONOR_MATCH_API_PORT": str(port),
           "DONOR_MATCH_API_HOST": "127.0.0.1",
           "DONOR_MATCH_RATE_LIMIT_PER_MINUTE": "1000000"}
    api = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "serve"], env=env,
                           stdout=subprocess.DEVNULL, stderr=(work / "api.log").open("wb"))
    report: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if api.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the API did not get ready; see {work / 'api.log'}")
            time.sleep(0.5)
        auth = TokenService(AuthSettings(jwt_secret=SecretStr(jwt_secret)))
        tokens = {d: {"Authorization": f"Bearer {auth.issue(d, Role.DONOR)}"} for d in donors}
        tokens["platform"] = {"Authorization": f"Bearer {auth.issue('soak', Role.INTEGRATOR)}"}
        tokens["analyst"] = {"Authorization": f"Bearer {auth.issue('ana', Role.ANALYST)}"}
        admin = {"Authorization": f"Bearer {auth.issue('ops', Role.ADMIN)}"}
        redis_server = redis.Redis(host="127.0.0.1", port=store_server.port, password=password)
        stop = asyncio.Event()
        received = [0] * args.subscribers
        loop = asyncio.new_event_loop()
        subs = threading.Thread(target=loop.run_until_complete, args=(subscribers(
            f"ws://127.0.0.1:{port}/graphql", admin,
            [random.Random(i).choice(nonprofits) for i in range(args.subscribers)],
            stop, received),))
        subs.start()
        # A warm-up first, so that connection pools and caches are full before "before": growth
        # after it is what a longer run would keep adding.
        warm = Traffic(f"http://127.0.0.1:{port}/graphql", tokens, donors, nonprofits)
        drive(warm, args.rate, args.warmup_s, args.workers)
        before = {"api": footprint(api.pid), "store": footprint(store_server.status().pid or 0),
                  "redis_clients": len(redis_server.client_list())}
        traffic = Traffic(f"http://127.0.0.1:{port}/graphql", tokens, donors, nonprofits)
        started = time.monotonic()
        drive(traffic, args.rate, args.duration_s, args.workers)
        elapsed = time.monotonic() - started
        after = {"api": footprint(api.pid), "store": footprint(store_server.status().pid or 0),
                 "redis_clients": len(redis_server.client_list())}
        loop.call_soon_threadsafe(stop.set)
        subs.join(30)
        redis_server.close()

        store = open_store(settings.model_copy(update={"timeout_s": 120.0}))
        try:
            traffic.acknowledged += warm.acknowledged
            stored = {r["id"] for r in store.read(statement("api/donation_ids"),
                                                  {"ids": traffic.acknowledged})}
        finally:
            store.close()
        per_op = {}
        for op, values in traffic.latencies.items():
            ordered = sorted(values)
            per_op[op] = {"requests": len(values),
                          "p50_ms": round(statistics.median(ordered) * 1000, 1),
                          "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 1),
                          "outcomes": dict(traffic.outcomes[op])}
        server_errors = sum(n for outcomes in traffic.outcomes.values()
                            for code, n in outcomes.items()
                            if code == "INTERNAL_SERVER_ERROR" or code.startswith("transport"))
        report = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join(sys.argv),
            "graph": graph["counts"],
            "duration_s": round(elapsed, 1),
            "achieved_rate": round(sum(len(v) for v in traffic.latencies.values()) / elapsed, 1),
            "warmup_s": args.warmup_s,
            "server_errors": server_errors + sum(
                n for outcomes in warm.outcomes.values() for code, n in outcomes.items()
                if code == "INTERNAL_SERVER_ERROR" or code.startswith("transport")),
            "operations": per_op,
            "subscribers": args.subscribers,
            "events_received": sum(received),
            "before": before, "after": after,
            "acknowledged_donations": len(traffic.acknowledged),
            "acknowledged_missing": len(set(traffic.acknowledged) - stored),
        }
        print(json.dumps(report, indent=2))
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        api.terminate()
        api.wait(30)
        store_server.stop()
        analyst_server.stop()


if __name__ == "__main__":
    main()
