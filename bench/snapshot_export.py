"""Time the training-snapshot export (etl.snapshot.export_tables) against a loaded store, beside
single pages of the offset paging it replaced (ORDER BY ... SKIP ... LIMIT).

    DONOR_MATCH_FALKORDB_PORT=... DONOR_MATCH_FALKORDB_PASSWORD=... \
        DONOR_MATCH_STORE_TIMEOUT_S=300 PYTHONPATH=. .venv/bin/python bench/snapshot_export.py

The store is the one the environment names (StoreSettings), already loaded (e.g. by
`etl load --initial`). Reported: per table rows, store calls and seconds of the keyset export,
its wall and peak RSS, the content hash of two exports (must agree); then for donors and
donations the seconds of one old-style page at the first and the last offset, which, since each
page sorts the whole table, is what every page of the old export cost. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from etl.snapshot import PAGE_SIZE, content_hash, export_tables  # noqa: E402
from graph_store import GraphStore, Statement, StoreSettings, open_store, statement  # noqa: E402


class _Timed:
    """The store, timing each statement's calls."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def read(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> list[Any]:
        began = time.monotonic()
        try:
            return self._store.read(stmt, params)
        finally:
            self.seconds[stmt.name] += time.monotonic() - began
            self.calls[stmt.name] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    parser.add_argument("--repeat", type=int, default=2, help="keyset exports (hashes compared)")
    parser.add_argument("--skip-old", action="store_true", help="no old-style pages")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result: dict[str, Any] = {"page_size": args.page_size, "loadavg_start": os.getloadavg()}
    store = open_store(StoreSettings())
    try:
        runs = []
        for _ in range(args.repeat):
            timed = _Timed(store)
            began = time.monotonic()
            tables = export_tables(cast(GraphStore, timed), page_size=args.page_size)
            wall = time.monotonic() - began
            hashed = time.monotonic()
            digest = content_hash(tables)
            runs.append({
                "wall_s": round(wall, 1), "hash_s": round(time.monotonic() - hashed, 1),
                "hash": digest,
                "tables": {name: {"rows": tables[name].num_rows,
                                  "calls": timed.calls[f"snapshot/{name}"],
                                  "store_s": round(timed.seconds[f"snapshot/{name}"], 1)}
                           for name in tables},
            })
            del tables
            print(json.dumps(runs[-1]), flush=True)
        result["keyset"] = runs
        result["hashes_agree"] = len({run["hash"] for run in runs}) == 1
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if not args.skip_old:
            old: dict[str, Any] = {}
            for name in ("donors", "donations"):
                rows = runs[0]["tables"][name]["rows"]
                stmt = statement(f"bench/snapshot_skip_{name}")
                for skip in (0, max(0, rows - args.page_size)):
                    began = time.monotonic()
                    page = store.read(stmt, {"skip": skip, "limit": args.page_size})
                    old[f"{name}@{skip}"] = {"rows": len(page),
                                             "s": round(time.monotonic() - began, 1)}
                    print(name, skip, old[f"{name}@{skip}"], flush=True)
            result["old_page"] = old
        result["loadavg_end"] = os.getloadavg()
    finally:
        store.close()
    print(json.dumps({k: v for k, v in result.items() if k != "keyset"}, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
