"""Faults under load, each scripted and bounded, on loopback only: what clients saw, and whether
anything acknowledged was lost.

    PYTHONPATH=. python bench/faults.py [--fault-s 5] [--clients 2] [--subscribers 4] [--out FILE]

It starts its own embedded FalkorDB (a free port, a temporary directory on a 64 MB tmpfs when it
may mount one), a second server as the events' Redis (DONOR_MATCH_REDIS_URL, so that Redis can
fail apart from the store), loads a small synthetic graph, trains a small model, and serves the
API as the image does: `uvicorn --workers 2` with the project's protocol. Writer, reader and
matches clients run throughout each case, and WebSocket subscribers that reconnect when cut off:

- `kill-worker`: SIGKILL one of the two API workers (uvicorn starts another);
- `freeze`: SIGSTOP the store for --fault-s seconds, then SIGCONT;
- `restart`: stop the store (it flushes its append-only file), start it again on the same port;
- `redis-down`: stop the events' Redis for --fault-s seconds, start it again;
- `disk-full`: fill the store's filesystem (the tmpfs) for --fault-s seconds, then free it;
- `bad-model`: promote a copy of the served model with a truncated file, for --fault-s seconds,
  then roll back.

Writers record donations and keep the ids the API acknowledged; after each case every one must
be in the store, and at the end, after the store is stopped and started again (its append-only
file replayed), every acknowledged id of every case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets
from ports import free_port
from pydantic import SecretStr

from donor_match.services.auth import Role, TokenService
from donor_match.settings import AuthSettings
from etl.loader import load_tables
from etl.snapshot import export_snapshot
from etl.synth import SynthConfig, generate
from graph_model.artifacts import CURRENT, current_version
from graph_model.config import TrainConfig
from graph_model.train import train
from graph_store import StoreSettings, open_store, statement
from graph_store.embedded import EmbeddedFalkorDB

RECORD = "mutation($i: RecordDonationInput!) { recordDonation(input: $i) { id } }"
READ = "{ causes { id } }"
MATCHES = "query($d: ID!) { matches(donorId: $d, first: 5) { rank nonprofit { id } } }"
FEED = "subscription($id: ID!) { donationRecorded(nonprofitId: $id) { id } }"
GRAPH = SynthConfig(donors=200, nonprofits=30, causes=6, regions=4, donations=1_000, seed=5)
DISK_MB = 64


class Load:
    """Writer, reader and matches clients until stopped; what each request got, by code."""

    def __init__(self, url: str, headers: dict[str, dict[str, str]], donors: list[str],
                 nonprofits: list[str]) -> None:
        self._url, self._headers = url, headers
        self._donors, self._nonprofits = donors, nonprofits
        self.stop = threading.Event()
        self.seen: dict[str, Counter[str]] = {"record": Counter(), "read": Counter(),
                                              "matches": Counter()}
        self.messages: dict[str, str] = {}
        self.acknowledged: list[str] = []
        self.slowest_s = 0.0
        self._lock = threading.Lock()

    def send(self, client: httpx.Client, op: str, query: str, variables: dict[str, Any],
             who: str = "platform") -> str:
        started = time.perf_counter()
        try:
            response = client.post(self._url, json={"query": query, "variables": variables},
                                   headers=self._headers[who], timeout=30)
            body = response.json()
            errors = body.get("errors", [])
            outcome = errors[0]["extensions"]["code"] if errors else "ok"
            if errors:
                self.messages.setdefault(outcome, errors[0]["message"][:200])
            if not errors and "recordDonation" in (body.get("data") or {}):
                with self._lock:
                    self.acknowledged.append(body["data"]["recordDonation"]["id"])
        except (httpx.HTTPError, ValueError) as exc:
            outcome = f"transport:{type(exc).__name__}"
        with self._lock:
            self.seen[op][outcome] += 1
            self.slowest_s = max(self.slowest_s, time.perf_counter() - started)
        return outcome

    def writer(self, n: int) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                gift = {"donorId": self._donors[n % len(self._donors)],
                        "nonprofitId": self._nonprofits[n % len(self._nonprofits)],
                        "amount": 5, "id": f"fault-{uuid.uuid4()}"}
                self.send(client, "record", RECORD, {"i": gift})
                n += 7

    def reader(self) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                self.send(client, "read", READ, {})

    def matcher(self, n: int) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                self.send(client, "matches", MATCHES,
                          {"d": self._donors[n % len(self._donors)]}, "admin")
                n += 3


class Subscribers:
    """WebSocket subscribers to donationRecorded, each reconnecting after being cut off; counts
    events and reconnections, with the time of each event."""

    def __init__(self, ws_url: str, headers: dict[str, str], nonprofits: list[str]) -> None:
        self._url, self._headers, self._nonprofits = ws_url, headers, nonprofits
        self.events: list[float] = []
        self.reconnects = 0
        self.local_ports: set[int] = set()  # of the sockets open now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)

    def __enter__(self) -> Subscribers:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    async def _all(self) -> None:
        await asyncio.gather(*(self._one(n) for n in self._nonprofits))

    async def _one(self, nonprofit: str) -> None:
        first = True
        while not self._stop.is_set():
            if not first:
                self.reconnects += 1
                await asyncio.sleep(0.5)
            first = False
            port = None
            try:
                async with websockets.connect(self._url,
                                              subprotocols=["graphql-transport-ws"]) as ws:
                    port = ws.local_address[1]
                    self.local_ports.add(port)
                    await ws.send(json.dumps({"type": "connection_init",
                                              "payload": self._headers}))
                    await ws.recv()
                    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                        "query": FEED, "variables": {"id": nonprofit}}}))
                    while not self._stop.is_set():
                        try:
                            message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                        except TimeoutError:
                            continue
                        if message.get("type") == "next":
                            self.events.append(time.monotonic())
                        elif message.get("type") in ("error", "complete"):
                            break
            except (OSError, websockets.WebSocketException):
                pass
            finally:
                self.local_ports.discard(port or 0)


def api_workers(api: subprocess.Popen[bytes]) -> list[int]:
    """The uvicorn supervisor's worker processes (not multiprocessing's resource tracker)."""
    return [child.pid for child in psutil.Process(api.pid).children()
            if "resource_tracker" not in " ".join(child.cmdline())]


def wait_ready(base: str, api: subprocess.Popen[bytes], limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        if api.poll() is not None:
            raise SystemExit("the API exited")
        time.sleep(0.5)
    raise SystemExit("the API did not get ready")


@contextlib.contextmanager
def small_disk(work: Path) -> Iterator[Path | None]:
    """A DISK_MB tmpfs under `work` (root only), or None where mounting is not allowed."""
    mount = work / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full; returns it (delete it to free the space)."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as file:
        for size in (1 << 20, 1 << 10, 1):  # to the last byte
            with contextlib.suppress(OSError):
                while True:
                    file.write(b"\0" * size)
    return filler


def run_case(name: str, fault: Callable[[], dict[str, Any] | None], load: Load,
             subs: Subscribers, base: str, args: argparse.Namespace,
             store_settings: StoreSettings) -> dict[str, Any]:
    threads = [threading.Thread(target=load.writer, args=(i,)) for i in range(args.clients)]
    threads += [threading.Thread(target=load.reader) for _ in range(args.clients)]
    threads += [threading.Thread(target=load.matcher, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    events_before, reconnects_before = len(subs.events), subs.reconnects
    fault_started = time.monotonic()
    detail = fault() or {}
    fault_ended = time.monotonic()
    recovered_s = None
    with httpx.Client() as probe:
        while time.monotonic() < fault_ended + 60:
            if (load.send(probe, "record", RECORD, {"i": {
                    "donorId": load._donors[0], "nonprofitId": load._nonprofits[0],
                    "amount": 1, "id": f"probe-{uuid.uuid4()}"}}) == "ok"
                    and load.send(probe, "read", READ, {}) == "ok"):
                recovered_s = round(time.monotonic() - fault_ended, 2)
                break
            time.sleep(0.2)
    time.sleep(3)  # events after recovery reach subscribers that reconnected
    load.stop.set()
    for thread in threads:
        thread.join(60)
    events_after = sum(1 for t in subs.events if t > fault_ended)
    store = open_store(store_settings)
    try:
        found = {row["id"] for row in store.read(statement("api/donation_ids"),
                                                  {"ids": load.acknowledged})}
    finally:
        store.close()
    return {"case": name, "fault_s": args.fault_s,
            "fault_took_s": round(fault_ended - fault_started, 2), **detail,
            "requests_by_outcome": {op: dict(c) for op, c in load.seen.items()},
            "error_messages": load.messages,
            "slowest_request_s": round(load.slowest_s, 2), "recovered_after_s": recovered_s,
            "subscription_events": {"before_fault": events_before,
                                    "after_fault": events_after,
                                    "reconnects": subs.reconnects - reconnects_before},
            "acknowledged": len(load.acknowledged),
            "acknowledged_missing": len(set(load.acknowledged) - found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fault-s", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--cases", default="kill-worker,freeze,restart,redis-down,disk-full,"
                        "bad-model")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not 0 < args.fault_s <= 60 or not 0 < args.clients <= 16 or args.subscribers > 50:
        parser.error("--fault-s in (0, 60], --clients in (0, 16], --subscribers <= 50: "
                     "this run is meant to be short")

    work = Path(tempfile.mkdtemp(prefix="donor-match-faults-"))
    with small_disk(work) as disk, contextlib.ExitStack() as cleanup:
        store_dir = (disk or work) / "falkordb"
        password = secrets.token_urlsafe(24)
        server = EmbeddedFalkorDB(store_dir, free_port(), password=password)
        server.start()
        cleanup.callback(server.stop)
        events = EmbeddedFalkorDB(work / "events", free_port(), password=password)
        events.start()
        cleanup.callback(events.stop)
        store_settings = StoreSettings(backend="falkordb", falkordb_port=server.port,
                                       falkordb_password=SecretStr(password),
                                       graph_name="faults", analyst_graph_name="faults_analyst",
                                       data_dir=work, timeout_s=2.0)
        tables = generate(GRAPH)
        store = open_store(store_settings)
        store.apply_schema()
        load_tables(store, tables)
        snapshot = export_snapshot(store, work / "snapshots")
        store.close()
        models = work / "models"
        train(snapshot, models, TrainConfig(steps=30, seed=0))
        jwt_secret = secrets.token_urlsafe(48)
        port = free_port()
        env = {**os.environ, "DONOR_MATCH_FALKORDB_PORT": str(server.port),
               "DONOR_MATCH_FALKORDB_ANALYST_PORT": str(free_port()),
               "DONOR_MATCH_FALKORDB_PASSWORD": password, "DONOR_MATCH_GRAPH": "faults",
               "DONOR_MATCH_DATA_DIR": str(work), "DONOR_MATCH_MODELS_DIR": str(models),
               "DONOR_MATCH_STORE_TIMEOUT_S": "2", "DONOR_MATCH_JWT_SECRET": jwt_secret,
               "DONOR_MATCH_RATE_LIMIT_PER_MINUTE": "1000000",
               "DONOR_MATCH_REDIS_URL": f"redis://:{password}@127.0.0.1:{events.port}/0"}
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "entrypoints.asgi:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level",
             "warning", "--http", "graphql_api.server:BoundedHttpProtocol"],
            env=env, stdout=subprocess.DEVNULL, stderr=(work / "api.log").open("wb"))

        def stop_api() -> None:
            api.terminate()
            api.wait(30)

        cleanup.callback(stop_api)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, api)
        auth = TokenService(AuthSettings(jwt_secret=SecretStr(jwt_secret)))
        headers = {"platform": {"Authorization": f"Bearer {auth.issue('faults', Role.INTEGRATOR)}"},
                   "admin": {"Authorization": f"Bearer {auth.issue('ops', Role.ADMIN)}"}}
        donors = tables["donors"].column("id").to_pylist()
        nonprofits = tables["nonprofits"].column("id").to_pylist()

        def kill_worker() -> dict[str, Any]:
            # The worker holding the most subscribers' sockets: they must reconnect.
            before = api_workers(api)
            held = {pid: sum(1 for c in psutil.Process(pid).net_connections("tcp")
                             if c.raddr and c.raddr.port in subs.local_ports) for pid in before}
            victim = max(before, key=lambda pid: held[pid])
            os.kill(victim, signal.SIGKILL)
            time.sleep(args.fault_s)
            return {"workers_before": len(before), "subscriptions_on_killed": held[victim],
                    "workers_after": len(api_workers(api))}

        def freeze() -> None:
            pid = server.status().pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            time.sleep(args.fault_s)
            os.kill(pid, signal.SIGCONT)

        def restart() -> None:
            server.stop()
            time.sleep(args.fault_s)
            server.start()

        def redis_down() -> None:
            events.stop()
            time.sleep(args.fault_s)
            events.start()

        def disk_full() -> dict[str, Any]:
            assert disk is not None
            filler = fill(disk)
            time.sleep(args.fault_s)
            free = shutil.disk_usage(disk).free
            filler.unlink()
            return {"filesystem_mb": DISK_MB, "free_bytes_while_full": free}

        def bad_model() -> dict[str, Any]:
            good = current_version(models)
            assert good is not None
            shutil.copytree(models / good, models / "damaged")
            gifts = models / "damaged" / "gifts.npz"
            gifts.write_bytes(gifts.read_bytes()[:100])
            pids = api_workers(api)
            (models / CURRENT).write_text("damaged\n")
            time.sleep(max(args.fault_s, 6))  # past the API's 5 s recheck of CURRENT
            still = api_workers(api)
            (models / CURRENT).write_text(f"{good}\n")
            return {"workers_restarted": len(set(pids) - set(still))}

        cases = {"kill-worker": kill_worker, "freeze": freeze, "restart": restart,
                 "redis-down": redis_down, "disk-full": disk_full, "bad-model": bad_model}
        results: list[dict[str, Any]] = []
        acknowledged: list[str] = []
        with Subscribers(f"ws://127.0.0.1:{port}/graphql", headers["admin"],
                         nonprofits[: args.subscribers]) as subs:
            for name in args.cases.split(","):
                if name == "disk-full" and disk is None:
                    results.append({"case": name, "skipped": "mounting a tmpfs needs root"})
                    continue
                load = Load(f"{base}/graphql", headers, donors, nonprofits)
                results.append(run_case(name, cases[name], load, subs, base, args,
                                        store_settings))
                acknowledged += load.acknowledged
                print(json.dumps(results[-1]), flush=True)
        # Durable, not only in memory: the store replays its append-only file.
        server.stop()
        server.start()
        store = open_store(store_settings.model_copy(update={"timeout_s": 60.0}))
        try:
            found = {row["id"] for row in store.read(statement("api/donation_ids"),
                                                      {"ids": acknowledged})}
        finally:
            store.close()
        log = (work / "api.log").read_text(errors="replace")
        report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "command": " ".join(sys.argv), "cases": results,
                  "after_store_restart": {"acknowledged": len(acknowledged),
                                          "missing": len(set(acknowledged) - found)},
                  "api_log_tracebacks": log.count("Traceback")}
    print(json.dumps(report["after_store_restart"]))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
