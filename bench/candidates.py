"""The candidate models side by side on one snapshot's temporal split (graph_model.candidates).

    PYTHONPATH=. .venv/bin/python bench/candidates.py --snapshot DIR --artifact VERSION_DIR
        [--out bench/results/candidates.json]

The GNN's embeddings come from a version `donor-match train` wrote for this snapshot (training
it again would double the run); the others are fitted here on the same training pairs. All are
ranked by the same sampled evaluation, and the rule `donor-match train` applies picks one.
Prints the table and writes it as JSON with the command, the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from graph_model.candidates import (  # noqa: E402
    INCUMBENT,
    Candidate,
    all_candidates,
    choose,
    evaluate_candidates,
    table,
)
from graph_model.config import TrainConfig  # noqa: E402
from graph_model.snapshot import read_snapshot  # noqa: E402
from graph_model.split import temporal_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/candidates.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    metrics = json.loads((args.artifact / "metrics.json").read_text())
    config = TrainConfig(**{**metrics["config"], "distribution": "default"})
    snapshot = read_snapshot(args.snapshot)
    if snapshot.hash != metrics["snapshot_hash"]:
        raise SystemExit(f"{args.artifact} was trained on another snapshot")
    num_donors, num_nonprofits = len(snapshot.donor_ids), len(snapshot.nonprofit_ids)
    split = temporal_split(snapshot.donations, num_nonprofits, config.holdout_fraction)
    gnn = Candidate(
        INCUMBENT,
        np.load(args.artifact / "donor_embeddings.npy"),
        np.load(args.artifact / "nonprofit_embeddings.npy"),
        metrics["train"]["seconds"],
    )
    started = time.perf_counter()
    candidates = all_candidates(gnn, split, num_donors, num_nonprofits, config)
    print("fitted in " + ", ".join(f"{c.name} {c.seconds:.0f} s" for c in candidates[1:]),
          flush=True)
    began = time.perf_counter()
    evaluations = evaluate_candidates(candidates, split, num_nonprofits, k=config.k,
                                      sample=config.eval_donors, seed=config.seed)
    eval_s = time.perf_counter() - began
    winner, reason = choose(evaluations, config.k)
    rows = table(candidates, evaluations, config.k)
    k = config.k
    print(f"\n{snapshot.hash[:8]}: {num_donors} donors, {num_nonprofits} nonprofits, "
          f"{len(split.train_pairs)} training pairs, {len(split.test_pairs)} test pairs, "
          f"{rows[0]['donors']} of {evaluations[INCUMBENT].test_users} test donors evaluated")
    print(f"{'candidate':<12} {'Recall@' + str(k):>18} {'NDCG@' + str(k):>18} {'fit s':>7}")
    for row in rows:
        ci = row["confidence"]
        print(f"{row['name']:<12} {row[f'recall@{k}']:.4f} "
              f"[{ci[f'recall@{k}']['low']:.4f},{ci[f'recall@{k}']['high']:.4f}] "
              f"{row[f'ndcg@{k}']:.4f} [{ci[f'ndcg@{k}']['low']:.4f},{ci[f'ndcg@{k}']['high']:.4f}]"
              f" {row['fit_s']:>7.0f}")
    print(f"served: {winner} ({reason})")
    report = {
        "snapshot_hash": snapshot.hash,
        "donors": num_donors,
        "nonprofits": num_nonprofits,
        "train_pairs": len(split.train_pairs),
        "test_pairs": len(split.test_pairs),
        "test_donors": evaluations[INCUMBENT].test_users,
        "candidates": rows,
        "served": winner,
        "reason": reason,
        "eval_s": eval_s,
        "wall_s": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "config": asdict(config),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_start": load_before, "load_average_end": os.getloadavg()},
        "command": "python bench/candidates.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
