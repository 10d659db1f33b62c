"""Faults under load, each scripted and bounded, on loopback only: what clients saw, and whether
anything acknowledged was lost.

    PYTHONPATH=. python bench/faults.py [--fault-s 5] [--clients 4] [--out FILE]

It starts its own embedded FalkorDB (a free port, a temporary directory), loads a small synthetic
graph, serves the API with uvicorn on 127.0.0.1, and runs writer and reader clients throughout
each case:

- `freeze`: SIGSTOP the store for --fault-s seconds, then SIGCONT;
- `restart`: stop the store (it flushes its append-only file), start it again on the same port.

Writers record donations (an integrator's API key path is not needed: a signed token) and keep
the ids the API acknowledged; afterwards every acknowledged id must be in the store. Not covered
here (see docs/hardening.md): killing one of several API workers, a full disk, a corrupt model.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from donor_match.services.auth import Role, TokenService
from donor_match.settings import AppSettings, AuthSettings
from entrypoints.asgi import create_app, uvicorn_options
from etl.loader import load_tables
from etl.synth import SynthConfig, generate
from graph_store import StoreSettings, open_store, statement
from graph_store.embedded import EmbeddedFalkorDB

RECORD = "mutation($i: RecordDonationInput!) { recordDonation(input: $i) { id } }"
READ = "{ causes { id } }"
GRAPH = SynthConfig(donors=200, nonprofits=30, causes=6, regions=4, donations=1_000, seed=5)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Load:
    """Writer and reader clients until stopped; what each request got, by code, and latency."""

    def __init__(self, url: str, token: str, donors: list[str], nonprofits: list[str]) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._donors, self._nonprofits = donors, nonprofits
        self.stop = threading.Event()
        self.seen: Counter[str] = Counter()
        self.acknowledged: list[str] = []
        self.slowest_s = 0.0
        self._lock = threading.Lock()

    def send(self, client: httpx.Client, query: str, variables: dict[str, Any]) -> str:
        started = time.perf_counter()
        try:
            response = client.post(self._url, json={"query": query, "variables": variables},
                                   headers=self._headers, timeout=30)
            body = response.json()
            codes = [e["extensions"]["code"] for e in body.get("errors", [])]
            outcome = codes[0] if codes else "ok"
            if not codes and "recordDonation" in (body.get("data") or {}):
                with self._lock:
                    self.acknowledged.append(body["data"]["recordDonation"]["id"])
        except httpx.HTTPError as exc:
            outcome = f"transport:{type(exc).__name__}"
        with self._lock:
            self.seen[outcome] += 1
            self.slowest_s = max(self.slowest_s, time.perf_counter() - started)
        return outcome

    def writer(self, n: int) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                gift = {"donorId": self._donors[n % len(self._donors)],
                        "nonprofitId": self._nonprofits[n % len(self._nonprofits)],
                        "amount": 5, "id": f"fault-{uuid.uuid4()}"}
                self.send(client, RECORD, {"i": gift})
                n += 7

    def reader(self) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                self.send(client, READ, {})


def run_case(name: str, fault: Any, args: argparse.Namespace, server: EmbeddedFalkorDB,
             url: str, token: str, ids: tuple[list[str], list[str]],
             store_settings: StoreSettings) -> dict[str, Any]:
    load = Load(url, token, *ids)
    threads = [threading.Thread(target=load.writer, args=(i,)) for i in range(args.clients)]
    threads += [threading.Thread(target=load.reader) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    fault_started = time.monotonic()
    fault()
    recovered_s = None
    deadline = time.monotonic() + 60
    with httpx.Client() as probe:
        while time.monotonic() < deadline:
            if load.send(probe, READ, {}) == "ok":
                recovered_s = round(time.monotonic() - fault_started, 2)
                break
            time.sleep(0.2)
    time.sleep(2)
    load.stop.set()
    for thread in threads:
        thread.join(60)
    store = open_store(store_settings)
    try:
        found = {row["id"] for row in store.read(statement("api/donation_ids"),
                                                  {"ids": load.acknowledged})}
    finally:
        store.close()
    missing = sorted(set(load.acknowledged) - found)
    return {"case": name, "fault_s": args.fault_s, "requests_by_outcome": dict(load.seen),
            "slowest_request_s": round(load.slowest_s, 2), "recovered_after_s": recovered_s,
            "acknowledged": len(load.acknowledged), "acknowledged_missing": len(missing)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fault-s", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not 0 < args.fault_s <= 60 or not 0 < args.clients <= 16:
        parser.error("--fault-s in (0, 60], --clients in (0, 16]: this run is meant to be short")

    work = Path(tempfile.mkdtemp(prefix="donor-match-faults-"))
    server = EmbeddedFalkorDB(work / "falkordb", free_port())
    server.start()
    store_settings = StoreSettings(backend="falkordb", falkordb_port=server.port,
                                   graph_name="faults", analyst_graph_name="faults_analyst",
                                   data_dir=work, timeout_s=2.0)
    tables = generate(GRAPH)
    store = open_store(store_settings)
    store.apply_schema()
    load_tables(store, tables)
    store.close()
    auth = AuthSettings(jwt_secret=SecretStr(secrets.token_urlsafe(48)))
    settings = AppSettings(models_dir=work / "models", rate_limit_per_minute=1_000_000)
    app = create_app(settings, store_settings, auth)
    port = free_port()
    api = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        **uvicorn_options(settings)))
    thread = threading.Thread(target=api.run, daemon=True)
    thread.start()
    while not api.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/graphql"
    token = TokenService(auth).issue("faults", Role.INTEGRATOR)
    ids = (tables["donors"].column("id").to_pylist(), tables["nonprofits"].column("id").to_pylist())

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

    results = []
    try:
        for name, fault in (("freeze", freeze), ("restart", restart)):
            results.append(run_case(name, fault, args, server, url, token, ids, store_settings))
            print(json.dumps(results[-1]))
    finally:
        api.should_exit = True
        thread.join(30)
        server.stop()
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cases": results}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
