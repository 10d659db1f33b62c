"""Gowalla public benchmark (LightGCN split): popularity, GF-CF and the shipped TF-GNN model.

Also any other dataset in the same format (--dataset DIR); bench/resplit.py derives such datasets
from a train.txt alone.

    .venv/bin/python bench/gowalla.py [--dataset ../shared/datasets/gowalla] [--out FILE] [--seed N]

Full ranking over all 40,981 items with each user's train items excluded; Recall@20 and NDCG@20
(binary relevance) averaged over the users with test items. Prints a table beside the published
figures and writes the results, the machine and its load as JSON (default
bench/results/gowalla.json). Not a test: it takes minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import graph_model  # noqa: E402, F401  (selects tf_keras before TensorFlow loads)
from graph_model.benchmark.dataset import load_dataset  # noqa: E402
from graph_model.benchmark.harness import BenchmarkConfig, run_benchmark  # noqa: E402

# Recall@20 / NDCG@20 on this split (LightGCN paper, He et al. SIGIR 2020; GF-CF, Shen et al.
# CIKM 2021), for reference beside what this run measures.
PUBLISHED = {
    "NGCF (LightGCN paper)": (0.1570, 0.1327),
    "LightGCN (LightGCN paper)": (0.1830, 0.1554),
    "GF-CF (CIKM 2021)": (0.1849, 0.1518),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared/datasets/gowalla")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/gowalla.json")
    parser.add_argument(
        "--seed", type=int, default=0, help="of the fit's hidden edges, fitting users and SVDs"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    started = time.perf_counter()
    dataset = load_dataset(args.dataset)
    result = run_benchmark(
        dataset,
        BenchmarkConfig(model={"seed": args.seed}),
        progress=lambda message: print(message, flush=True),
    )
    wall = time.perf_counter() - started
    load_after = os.getloadavg()

    print(
        f"\n{dataset.name}: {result.users} users, {result.items} items, "
        f"{result.train_interactions} train / {result.test_interactions} test, "
        f"{result.evaluated_users} users evaluated"
    )
    print(f"{'model':<36} {'Recall@20':>9} {'NDCG@20':>8} {'fit s':>7} {'eval s':>7}")
    for model in result.models:
        print(
            f"{model.name:<36} {model.recall:>9.4f} {model.ndcg:>8.4f} "
            f"{model.fit_s:>7.0f} {model.eval_s:>7.0f}"
        )
    print(f"shipped: the {result.shipped} ({result.shipped_reason}); fitted on "
          f"{', '.join(map(str, result.fit_users))} users per fold")
    for name, (recall, ndcg) in PUBLISHED.items():
        print(f"{name:<36} {recall:>9.4f} {ndcg:>8.4f} {'published':>15}")
    print(
        f"wall {wall:.0f} s (load average {load_before[0]:.1f} at start, "
        f"{load_after[0]:.1f} at end, {os.cpu_count()} CPUs)"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        **result.to_dict(),
        "total_wall_s": wall,
        "published": {name: {"recall": r, "ndcg": n} for name, (r, n) in PUBLISHED.items()},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": load_before,
            "load_average_end": load_after,
        },
        "command": "python bench/gowalla.py " + " ".join(sys.argv[1:]),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
