"""A/B: ETL validation throughput of two checkouts on the same canonical CSV files.

Validation only (read, parse, check references and repeated ids; no store), the part the
duplicate/conflict detection of issue 19 changed. Each checkout runs in its own process, the two
alternate `--repeat` times on this noisy shared host, and the report gives the best rows/s of
each and their ratio per entity.

    .venv/bin/python bench/validate_ab.py --a /work/main --b . --donors 200000 \
        --donations 400000 --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, tempfile, threading, time
from pathlib import Path
from etl.repeats import repeated_hashes, source_ids
from etl.sources import open_source
from etl.validate import Validator

directory = Path(sys.argv[1])
source = open_source("canonical", directory)
source.check()
validator = Validator(1_735_689_600.0, lookup=lambda entity, ids: set())
rates = {}
for entity in source.entities():
    started = time.perf_counter()
    if entity == "donations":
        with tempfile.TemporaryDirectory() as work:
            ids = source_ids(source, entity, 2000, threading.Event())
            validator.limit_duplicates_to(entity, repeated_hashes(ids, Path(work)))
    rows = rejected = 0
    for checked in validator.run(entity, source.batches(entity, 2000)):
        rows += checked.read
        rejected += checked.rejected
    rates[entity] = {"rows": rows, "rejected": rejected,
                     "rows_per_s": rows / (time.perf_counter() - started)}
print(json.dumps(rates))
"""


def write_files(directory: Path, donors: int, donations: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    regions = [f"r{i}" for i in range(20)]
    nonprofits = [f"n{i}" for i in range(max(2, donors // 20))]

    def write(name: str, header: list[str], rows: object) -> None:
        with (directory / f"{name}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)  # type: ignore[arg-type]

    write("regions", ["id", "name"], ((r, f"Region {r}") for r in regions))
    write("nonprofits", ["id", "name", "region_id"],
          ((n, f"Nonprofit {n}", rng.choice(regions)) for n in nonprofits))
    write("donors", ["id", "name", "email", "city", "zip", "region_id"],
          ((f"d{i}", f"Donor {i}", f"d{i}@example.org", "Springfield", f"{10000 + i % 89999}",
            rng.choice(regions)) for i in range(donors)))
    write("donations", ["id", "donor_id", "nonprofit_id", "amount", "ts"],
          ((f"g{i}", f"d{rng.randrange(donors)}", rng.choice(nonprofits),
            f"{rng.randint(1, 50000) / 100:.2f}", 1_500_000_000 + i) for i in range(donations)))


def run(checkout: Path, directory: Path) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    done = subprocess.run([sys.executable, "-c", CHILD, str(directory)], env=env,
                          capture_output=True, text=True, check=True, cwd=checkout)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="checkout A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="checkout B")
    parser.add_argument("--donors", type=int, default=200_000)
    parser.add_argument("--donations", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_files(directory, args.donors, args.donations)
        best: dict[str, dict[str, float]] = {"a": {}, "b": {}}
        for _ in range(args.repeat):
            for name, checkout in (("a", args.a), ("b", args.b)):
                for entity, result in run(checkout, directory).items():
                    assert result["rejected"] == 0, (name, entity, result)
                    best[name][entity] = max(best[name].get(entity, 0.0), result["rows_per_s"])
    print(f"{'entity':<12} {'A rows/s':>10} {'B rows/s':>10} {'B/A':>6}")
    for entity, rate in best["a"].items():
        other = best["b"][entity]
        print(f"{entity:<12} {rate:>10,.0f} {other:>10,.0f} {other / rate:>6.2f}")


if __name__ == "__main__":
    main()
