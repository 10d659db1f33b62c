"""What one API process's funding-need refresh costs after a bulk update of needs, with the
overlap before the stamps came from the store's clock (60 s) and after (the store timeout + 2 s).

    PYTHONPATH=. .venv/bin/python bench/need_refresh.py \\
        --workdir var/bench/api-200000-20000-400000 --nonprofits 20000

Serves a copy of the embedded FalkorDB that bench/api_load.py prepared in `--workdir` (copied,
so the prepared store is left as it was), and per variant: reads the needs whole as an API
process starts, states --needs-share of the nonprofits a new need (one write each, the API's own
statement, as bench/api_load.py's bulk update does), then refreshes as an API process does every
--refresh-s for a minute. Time between refreshes is the reader's clock moved on by --refresh-s
(the store's clock plus a shift), not slept. Each refresh is the product's `_NeedIndex` reading
the changes; "old" only differs in the overlap (60 s). Variants alternate (old new new old ...),
a minute apart, so that no variant re-reads the previous one's update. Reports per variant the
rows and CPU of the first refresh after the update (the API's: `time.process_time` of this
process, with the part spent reading, i.e. the store call and parsing its rows, and the part in
the garbage collector; the store's: its server process's from /proc, in 10 ms ticks), and rows
and CPU summed over the minute.
Not a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ports import free_port

from donor_match.repositories.store import StoreMatches
from donor_match.services.matching import _NeedIndex
from graph_store import GraphStore, StoreSettings, open_store, statement
from graph_store.embedded import EmbeddedFalkorDB

MINUTE_S = 60.0
OLD_OVERLAP_S = 60.0  # before the stamps came from the store's clock


def _log(message: str) -> None:
    print(f"[need-refresh {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class GcTime:
    """CPU seconds this process spent in the cyclic garbage collector (gc.callbacks)."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.total_s += time.process_time() - self._started


GC = GcTime()


def _server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Measured:
    """The product's repository, with the reader's clock shifted on by `shift_ms` (time passing
    without sleeping) and the rows and API CPU of each changed-needs read counted."""

    def __init__(self, inner: StoreMatches) -> None:
        self.inner = inner
        self.shift_ms = 0
        self.rows = 0
        self.read_cpu_s = 0.0  # in `needs_changed`: the store call and parsing its rows

    def needs(self) -> dict[str, float]:
        return self.inner.needs()

    def clock(self) -> int:
        return self.inner.clock() + self.shift_ms

    def needs_changed(self, since: int) -> dict[str, float]:
        began = time.process_time()
        found = self.inner.needs_changed(since)
        self.read_cpu_s += time.process_time() - began
        self.rows += len(found)
        return found


def _bulk_update(store: GraphStore, args: argparse.Namespace, seed: int) -> float:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(args.nonprofits, int(args.needs_share * args.nonprofits), replace=False)
    amounts = np.round(rng.lognormal(mean=10.0, sigma=1.5, size=len(chosen)), 2)
    set_need = statement("api/set_funding_need")
    began = time.monotonic()
    for position, amount in zip(chosen.tolist(), amounts.tolist(), strict=True):
        store.write(set_need, {"id": f"nonprofit-{position:06d}", "funding_need": amount})
    return time.monotonic() - began


def run_variant(
    store: GraphStore, server_pid: int, args: argparse.Namespace, variant: str, seed: int
) -> dict[str, Any]:
    new_overlap_s = args.store_timeout_s + _NeedIndex.TIMEOUT_CHECK_S
    overlap_s = OLD_OVERLAP_S if variant == "old" else new_overlap_s
    repository = Measured(StoreMatches(store))
    index = _NeedIndex(
        repository,  # type: ignore[arg-type]  # the product's repository, measured
        refresh_s=args.refresh_s,
        store_timeout_s=overlap_s - _NeedIndex.TIMEOUT_CHECK_S,
    )
    cpu = time.process_time()
    needs = index._read_all()
    start_cpu_s = time.process_time() - cpu
    write_s = _bulk_update(store, args, seed)
    refreshes = []
    for step in range(int(MINUTE_S / args.refresh_s) + 1):
        repository.shift_ms = int(step * args.refresh_s * 1000)
        rows, read_cpu, gc_s = repository.rows, repository.read_cpu_s, GC.total_s
        api_cpu, store_cpu, wall = time.process_time(), _server_cpu_s(server_pid), time.monotonic()
        index._read_changes()
        refreshes.append({
            "at_s": step * args.refresh_s,
            "rows": repository.rows - rows,
            "api_cpu_ms": round((time.process_time() - api_cpu) * 1000, 1),
            "read_cpu_ms": round((repository.read_cpu_s - read_cpu) * 1000, 1),
            "gc_cpu_ms": round((GC.total_s - gc_s) * 1000, 1),
            "store_cpu_ms": round((_server_cpu_s(server_pid) - store_cpu) * 1000, 1),
            "wall_ms": round((time.monotonic() - wall) * 1000, 1),
        })
    first = refreshes[0]
    return {
        "variant": variant,
        "overlap_s": overlap_s,
        "needs_at_start": len(needs),
        "start_read_cpu_ms": round(start_cpu_s * 1000, 1),
        "updated": int(args.needs_share * args.nonprofits),
        "update_s": round(write_s, 1),
        "first_refresh": first,
        "minute": {
            "reads_with_rows": sum(1 for r in refreshes if r["rows"]),
            "rows": sum(r["rows"] for r in refreshes),
            "rows_re_read": sum(r["rows"] for r in refreshes[1:]),
            "api_cpu_ms": round(sum(r["api_cpu_ms"] for r in refreshes), 1),
            "store_cpu_ms": round(sum(r["store_cpu_ms"] for r in refreshes), 1),
        },
        "refreshes": refreshes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("var/bench/api-200000-20000-400000"))
    parser.add_argument("--nonprofits", type=int, default=20_000,
                        help="the prepared store's nonprofits (bench/api_load.py --nonprofits)")
    parser.add_argument("--needs-share", type=float, default=0.3,
                        help="share of nonprofits the bulk update gives a new need")
    parser.add_argument("--refresh-s", type=float, default=5.0,
                        help="DONOR_MATCH_NEEDS_REFRESH_S")
    parser.add_argument("--store-timeout-s", type=float,
                        default=StoreSettings.model_fields["timeout_s"].default,
                        help="DONOR_MATCH_STORE_TIMEOUT_S the new overlap derives from")
    parser.add_argument("--rounds", type=int, default=2, help="old+new pairs, ABBA order")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()

    source = args.workdir / "falkordb" / "appendonlydir"
    if not source.is_dir():
        raise SystemExit(f"no prepared store in {args.workdir} (run bench/api_load.py first)")
    copy = Path(tempfile.mkdtemp(prefix="need-refresh-"))
    shutil.copytree(source, copy / "falkordb" / "appendonlydir")
    server = EmbeddedFalkorDB(copy / "falkordb", free_port())
    results: list[dict[str, Any]] = []
    try:
        status = server.start(wait_s=600)
        assert status.pid is not None
        settings = StoreSettings(
            backend="falkordb", falkordb_port=server.port, graph_name="bench",
            falkordb_password=server.password, timeout_s=600,
        )
        store = open_store(settings)
        try:
            store.apply_schema()  # the prepared store may predate an index
            order = [v for r in range(args.rounds)
                     for v in (("old", "new") if r % 2 == 0 else ("new", "old"))]
            for i, variant in enumerate(order):
                if i:  # the previous variant's update is past even the old overlap
                    time.sleep(OLD_OVERLAP_S + 2)
                result = run_variant(store, status.pid, args, variant, seed=1000 + i)
                first, minute = result["first_refresh"], result["minute"]
                _log(f"{variant}: first refresh {first['rows']} rows, API "
                     f"{first['api_cpu_ms']} ms CPU, store {first['store_cpu_ms']} ms; "
                     f"minute: {minute['rows']} rows in {minute['reads_with_rows']} reads, "
                     f"API {minute['api_cpu_ms']} ms, store {minute['store_cpu_ms']} ms")
                results.append(result)
        finally:
            store.close()
    finally:
        server.stop()
        shutil.rmtree(copy, ignore_errors=True)
    summary = {
        variant: {
            f"{part}.{key}": statistics.median(
                r[part][key] for r in results if r["variant"] == variant
            )
            for part, key in (
                ("first_refresh", "rows"), ("first_refresh", "api_cpu_ms"),
                ("first_refresh", "read_cpu_ms"), ("first_refresh", "store_cpu_ms"),
                ("minute", "rows"), ("minute", "rows_re_read"), ("minute", "reads_with_rows"),
                ("minute", "api_cpu_ms"), ("minute", "store_cpu_ms"),
            )
        }
        for variant in ("old", "new")
    }
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "args": vars(args),
              "summary": summary, "runs": results}
    text = json.dumps(report, indent=2, default=str)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
