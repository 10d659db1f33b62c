"""Interleaved A/B of API servers: which of two set-ups answers `matches` with the lower tail.

    .venv/bin/python bench/api_ab.py --a workers=2 --b workers=3
    .venv/bin/python bench/api_ab.py --a workers=3 --b workers=3,ENV_NAME=value
    .venv/bin/python bench/api_ab.py --a workers=3,repo=/tmp/base --b workers=3 --during needs

On this shared two-core machine the CPU a request gets drifts by a third within minutes, so two
benchmark runs minutes apart compare the host as much as the code. Here both servers run at once
(each `--workers` uvicorn processes of bench/api_load.py's app, on the embedded store that a run
of bench/api_load.py prepared, funding needs stated), idle but for the one under load, and
fixed-rate GraphQL phases alternate between them (A B, B A, ...), so both see the same drift.
Reports, per phase and as medians: p50 and p99 (bench/load_matches.mjs, open loop) and the API
processes' CPU seconds per request (from /proc). `repo=PATH` serves another checkout (e.g. a
`git archive` of the commit before a change) for a code A/B; `--during needs|etl` lands a bulk
update of funding needs or an ETL load of donations in every phase (bench/api_load.py). Not a
test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import api_load
from ports import free_port


def _setup(text: str) -> dict[str, str]:
    """`workers=3,repo=PATH,NAME=value,...` -> its settings (workers defaults to 2)."""
    settings = {"workers": "2"}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        settings[name] = value
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=_setup, default=_setup(""), help="workers=N,ENV=value,...")
    parser.add_argument("--b", type=_setup, default=_setup(""), help="workers=N,ENV=value,...")
    parser.add_argument("--rate", type=float, default=300.0, help="req/s; 0: flat out")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--during", choices=["needs", "etl"], default=None)
    parser.add_argument("--needs-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--etl-donations", type=int, default=None)
    api_load.add_graph_arguments(parser)
    args = parser.parse_args()

    from donor_match.services.auth import Role, TokenService
    from donor_match.settings import AuthSettings
    from graph_store.embedded import EmbeddedFalkorDB

    work = api_load.default_workdir(args.donors, args.nonprofits, args.donations)
    ready = work / "ready.json"
    if not ready.exists() or "funding_needs" not in json.loads(ready.read_text()):
        raise SystemExit(f"{work} is not prepared: run bench/api_load.py once first")
    store = EmbeddedFalkorDB(work / "falkordb", free_port(),
                             password=api_load.store_password())
    store.start(wait_s=600)
    token = TokenService(AuthSettings(jwt_secret=api_load.SECRET)).issue("bench", Role.ADMIN)
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name, setup in (("A", args.a), ("B", args.b)):
            env = {k: v for k, v in setup.items() if k not in ("workers", "repo")}
            repo = Path(setup["repo"]) if "repo" in setup else None
            servers[name] = api_load.start_api(work, store.port, int(setup["workers"]), env, repo)
        if args.etl_donations is None:
            args.etl_donations = max(1, args.donations // 20)
        writers: dict[str, Callable[[], dict[str, Any]]] = {
            "needs": lambda: api_load.bulk_update_needs(
                api_load._store_settings(store.port), args, time.time_ns() % 2**32
            ),
            "etl": lambda: api_load.etl_load_donations(
                api_load._store_settings(store.port), work, args
            ),
        }
        during = writers[args.during] if args.during else None
        for _, base in servers.values():
            api_load._wait_ready(base, 600)
            api_load._load(base, "graphql", args.donors, 8, 0, 8, token)  # warm
        phases: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        for round_ in range(args.rounds):
            for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                server, base = servers[name]
                workers = api_load.api_workers(server)
                phases[name].append(
                    api_load._load(
                        base, "graphql", args.donors, 32, args.rate, args.seconds, token, workers,
                        during=during,
                    )
                )
        summary = {
            name: {
                "setup": setup,
                "p99_ms": [r["p99_ms"] for r in phases[name]],
                "median_p99_ms": statistics.median(r["p99_ms"] for r in phases[name]),
                "median_p50_ms": statistics.median(r["p50_ms"] for r in phases[name]),
                "median_throughput_rps": statistics.median(
                    r["throughput_rps"] for r in phases[name]
                ),
                "median_api_cpu_ms_per_request": statistics.median(
                    r["api_cpu_ms_per_request"] for r in phases[name]
                ),
                "slowest_1pct": [r.get("slowest_1pct") for r in phases[name]],
            }
            for name, setup in (("A", args.a), ("B", args.b))
        }
        print(json.dumps(summary, indent=2))
        a, b = summary["A"], summary["B"]
        print(
            f"B/A: median p99 {b['median_p99_ms'] / a['median_p99_ms']:.2f}, "
            f"median p50 {b['median_p50_ms'] / a['median_p50_ms']:.2f}, throughput "
            f"{b['median_throughput_rps'] / a['median_throughput_rps']:.2f}, API CPU per request "
            f"{b['median_api_cpu_ms_per_request'] / a['median_api_cpu_ms_per_request']:.2f}"
        )
    finally:
        for server, _ in servers.values():
            server.terminate()
        for server, _ in servers.values():
            server.wait(timeout=30)
        store.stop()


if __name__ == "__main__":
    main()
