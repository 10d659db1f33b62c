"""Derive a new benchmark dataset (LightGCN format) from a dataset's train.txt alone.

    python bench/resplit.py --source ../shared/datasets/gowalla --out DIR [--users 0.3]
        [--test-share 0.2] [--min-items 5] [--seed 1]

A seeded share of the users (all with --users 1), each user's items split at random into train
and test (a `--test-share` of them, at least one, for users with at least `--min-items`; fewer
and all stay in train), item ids renumbered densely over the kept items. The source's test.txt is
never read: the datasets for checking the benchmark's design must not see Gowalla's test split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", type=float, default=1.0, help="share of the users kept")
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--min-items", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    lists = []
    for line in (args.source / "train.txt").read_text().splitlines():
        ids = [int(x) for x in line.split()]
        if len(ids) > 1:
            lists.append(np.array(ids[1:]))
    kept = [items for items in lists if rng.random() < args.users]
    item_ids = np.unique(np.concatenate(kept))
    remap = {int(item): i for i, item in enumerate(item_ids)}
    train_lines, test_lines, counts = [], [], {"train": 0, "test": 0}
    for user, items in enumerate(kept):
        items = np.array([remap[int(i)] for i in rng.permutation(items)])
        held = max(1, round(len(items) * args.test_share)) if len(items) >= args.min_items else 0
        test, train = items[:held], items[held:]
        train_lines.append(" ".join(map(str, [user, *sorted(train.tolist())])))
        test_lines.append(" ".join(map(str, [user, *sorted(test.tolist())])))
        counts["train"] += len(train)
        counts["test"] += len(test)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train.txt").write_text("\n".join(train_lines) + "\n")
    (args.out / "test.txt").write_text("\n".join(test_lines) + "\n")
    info = {**vars(args), "users": len(kept), "items": len(item_ids), **counts}
    (args.out / "resplit.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    print(json.dumps(info, default=str))


if __name__ == "__main__":
    main()
