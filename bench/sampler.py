"""Full-graph training steps against mini-batches from TF-GNN's in-memory sampler.

    PYTHONPATH=. .venv/bin/python bench/sampler.py --snapshot DIR [--steps 6] [--batch 1024]
        [--fanout 10,10] [--out bench/results/sampler.json]

On one snapshot, with the training configuration `donor-match train` uses:
- full graph: the time of a training step of graph_model.train.fit (every node's complete
  neighbourhood; a step scores supervision_fraction x training pairs x negatives triples), the
  first (tracing) and last (evaluated) steps left out;
- mini-batches: the time TF-GNN's sampler (`tensorflow_gnn.experimental.sampler`, with
  InMemUniformEdgesSampler over the training donations) takes to sample the 2-hop subgraphs
  (donor -donated-> nonprofit -donated backwards-> donor, `--fanout` edges per hop) of a batch of
  `--batch` seed donors. That is a lower bound of a mini-batch step: the step would still have to
  sample the positive and negative nonprofits' subgraphs, the cause and region edges, and run the
  model forward and backward on the result.
Both are reported per scored (donor, positive, negative) triple, the unit of work of BPR. Writes
JSON (default bench/results/sampler.json) with the command, the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # as graph_model does: TF-GNN needs Keras 2

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_gnn as tfgnn  # noqa: E402
from tensorflow_gnn.experimental import sampler  # noqa: E402
from tensorflow_gnn.sampler.sampling_spec_builder import SamplingSpecBuilder  # noqa: E402

from graph_model.config import TrainConfig  # noqa: E402
from graph_model.snapshot import read_snapshot  # noqa: E402
from graph_model.split import temporal_split  # noqa: E402
from graph_model.train import fit  # noqa: E402


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def full_graph(snapshot, split, config: TrainConfig) -> dict[str, float]:
    stamps: list[float] = []
    fit(snapshot, split, config, lambda step, total, loss: stamps.append(time.perf_counter()))
    steady = np.diff(stamps[:-1])  # from the end of step 1 to the end of step steps - 1
    triples = config.supervision_fraction * len(split.train_pairs) * config.negatives
    return {
        "steps_timed": len(steady),
        "step_s": float(np.median(steady)),
        "triples_per_step": triples,
        "us_per_triple": float(np.median(steady)) / triples * 1e6,
        "peak_rss_mb": _peak_rss_mb(),
    }


def mini_batches(split, num_donors: int, num_nonprofits: int, batch: int, fanout: list[int],
                 batches: int, config: TrainConfig) -> dict[str, float]:
    schema = tfgnn.GraphSchema()
    schema.node_sets["donor"].description = "donor"
    schema.node_sets["nonprofit"].description = "nonprofit"
    schema.edge_sets["donated"].source, schema.edge_sets["donated"].target = "donor", "nonprofit"
    schema.edge_sets["rev_donated"].source = "nonprofit"
    schema.edge_sets["rev_donated"].target = "donor"
    spec = (
        SamplingSpecBuilder(schema)
        .seed("donor")
        .sample(fanout[0], "donated")
        .sample(fanout[1], "rev_donated")
        .build()
    )
    donors = tf.constant(split.train_pairs.donor, tf.int64)
    nonprofits = tf.constant(split.train_pairs.nonprofit, tf.int64)
    edges = {
        "donated": (num_donors, donors, nonprofits),
        "rev_donated": (num_nonprofits, nonprofits, donors),
    }

    def edge_sampler(op):
        count, source, target = edges[op.edge_set_name]
        return sampler.InMemUniformEdgesSampler(
            num_source_nodes=count, source=source, target=target, seed=config.seed,
            sample_size=op.sample_size, name=op.op_name,
        )

    model = sampler.create_sampling_model_from_spec(
        schema, spec, edge_sampler, seed_node_dtype=tf.int64
    )
    rng = np.random.default_rng(config.seed)
    with_pairs = np.unique(split.train_pairs.donor)
    times, nodes, sampled_edges = [], [], []
    for i in range(batches + 1):
        seeds = rng.choice(with_pairs, batch, replace=False)
        begin = time.perf_counter()
        graph = model(tf.RaggedTensor.from_row_lengths(tf.constant(seeds, tf.int64),
                                                       tf.ones(batch, tf.int64)))
        graph = graph.merge_batch_to_components()
        size = {name: int(tf.reduce_sum(s.sizes)) for name, s in graph.node_sets.items()}
        elapsed = time.perf_counter() - begin
        if i:  # the first call traces the sampling model
            times.append(elapsed)
            nodes.append(sum(size.values()))
            sampled_edges.append(sum(int(tf.reduce_sum(e.sizes)) for e in
                                     graph.edge_sets.values()))
    step_s = float(np.median(times))
    # The seed donors' supervised triples: their share of the pairs, supervised, with negatives.
    pairs_per_donor = len(split.train_pairs) / len(with_pairs)
    triples = batch * pairs_per_donor * config.supervision_fraction * config.negatives
    return {
        "batch": batch,
        "fanout": fanout,
        "batches_timed": len(times),
        "sample_s": step_s,
        "nodes_per_batch": float(np.mean(nodes)),
        "edges_per_batch": float(np.mean(sampled_edges)),
        "triples_per_batch": triples,
        "us_per_triple_sampling_only": step_s / triples * 1e6,
        "peak_rss_mb": _peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--fanout", default="10,10")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/sampler.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    snapshot = read_snapshot(args.snapshot)
    config = TrainConfig(steps=args.steps, eval_every=args.steps, eval_donors=2000)
    split = temporal_split(snapshot.donations, len(snapshot.nonprofit_ids), config.holdout_fraction)
    fanout = [int(f) for f in args.fanout.split(",")]
    # Mini-batches first: the full graph's peak memory would otherwise hide the sampler's.
    sampled = mini_batches(split, len(snapshot.donor_ids), len(snapshot.nonprofit_ids),
                           args.batch, fanout, args.batches, config)
    print("mini-batches:", json.dumps(sampled), flush=True)
    full = full_graph(snapshot, split, config)
    print("full graph:", json.dumps(full), flush=True)
    report = {
        "snapshot": str(args.snapshot),
        "donors": len(snapshot.donor_ids),
        "nonprofits": len(snapshot.nonprofit_ids),
        "train_pairs": len(split.train_pairs),
        "full_graph": full,
        "mini_batches": sampled,
        "ratio_sampling_only_to_full": sampled["us_per_triple_sampling_only"]
        / full["us_per_triple"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_start": load_before, "load_average_end": os.getloadavg()},
        "command": "python bench/sampler.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"sampling alone costs {report['ratio_sampling_only_to_full']:.2f}x a full-graph step "
          f"per triple; wrote {args.out}")


if __name__ == "__main__":
    main()
