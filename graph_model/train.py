"""Train the link-prediction model on a snapshot, evaluate it and write a versioned artifact."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from graph_model import schema
from graph_model.artifacts import write_artifact
from graph_model.evaluate import RankingMetrics, ranking_metrics
from graph_model.graph_tensor import build_graph_tensor
from graph_model.model import build_model
from graph_model.snapshot import read_snapshot
from graph_model.split import temporal_split

Progress = Callable[[int, int, float], None]  # (step, total steps, loss)


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = 32
    num_layers: int = 2
    steps: int = 150  # full-batch steps: each sees every training pair once
    learning_rate: float = 0.01
    l2: float = 1e-5
    negatives: int = 4  # sampled negative nonprofits per positive pair
    seed: int = 0
    holdout_fraction: float = 0.2
    k: int = 20  # cut-off of the reported Recall@k / NDCG@k


def _metrics_json(metrics: RankingMetrics, k: int) -> dict[str, float]:
    return {f"recall@{k}": metrics.recall, f"ndcg@{k}": metrics.ndcg}


def train(
    snapshot_dir: Path,
    artifacts_root: Path,
    config: TrainConfig = TrainConfig(),
    progress: Progress | None = None,
) -> Path:
    """Train with BPR loss on the training split, evaluate on the holdout, write an artifact.

    Returns the new version directory, which `artifacts_root/CURRENT` then names.
    """
    started = time.monotonic()
    tf_keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    snapshot = read_snapshot(snapshot_dir)
    num_nonprofits = len(snapshot.nonprofit_ids)
    split = temporal_split(snapshot.donations, num_nonprofits, config.holdout_fraction)
    pairs = split.train_pairs
    graph = build_graph_tensor(snapshot, pairs)
    model = build_model(
        graph.spec,
        {name: int(graph.node_sets[name].total_size) for name in schema.NODE_SETS},
        embedding_dim=config.embedding_dim,
        num_layers=config.num_layers,
        l2=config.l2,
    )
    optimizer = tf_keras.optimizers.Adam(config.learning_rate)
    positive_donor = tf.constant(np.repeat(pairs.donor, config.negatives))
    positive_nonprofit = tf.constant(np.repeat(pairs.nonprofit, config.negatives))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
    def step(negative_nonprofit: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            embeddings = model(graph, training=True)
            donor = tf.gather(embeddings[schema.DONOR], positive_donor)
            nonprofits = embeddings[schema.NONPROFIT]
            positive = tf.reduce_sum(donor * tf.gather(nonprofits, positive_nonprofit), -1)
            negative = tf.reduce_sum(donor * tf.gather(nonprofits, negative_nonprofit), -1)
            # BPR: a donor's nonprofit should outscore a random one. A sampled negative may be a
            # true positive; at this density that noise is small and not worth filtering.
            loss = tf.reduce_mean(tf.math.softplus(negative - positive)) + tf.add_n(
                [tf.constant(0.0), *model.losses]
            )
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    loss = float("nan")
    for i in range(config.steps):
        negatives = rng.integers(0, num_nonprofits, len(pairs) * config.negatives)
        loss = float(step(tf.constant(negatives, tf.int64)))
        if progress is not None:
            progress(i + 1, config.steps, loss)

    embeddings = model(graph, training=False)
    donor_embeddings = embeddings[schema.DONOR].numpy()
    nonprofit_embeddings = embeddings[schema.NONPROFIT].numpy()
    popularity = np.bincount(split.train.nonprofit, minlength=num_nonprofits)
    seen = np.stack([pairs.donor, pairs.nonprofit], axis=1)
    model_metrics = ranking_metrics(
        donor_embeddings @ nonprofit_embeddings.T, split.test_pairs, seen, config.k
    )
    popularity_metrics = ranking_metrics(
        np.broadcast_to(popularity, (len(snapshot.donor_ids), num_nonprofits)),
        split.test_pairs,
        seen,
        config.k,
    )
    metrics = {
        "k": config.k,
        "model": _metrics_json(model_metrics, config.k),
        "popularity": _metrics_json(popularity_metrics, config.k),
        "train": {
            "donations": len(split.train),
            "pairs": len(pairs),
            "cutoff_ts": split.cutoff_ts,
            "final_loss": loss,
            "seconds": round(time.monotonic() - started, 2),
        },
        "test": {"pairs": len(split.test_pairs), "donors": model_metrics.users},
        "config": asdict(config),
        "snapshot_hash": snapshot.hash,
    }
    return write_artifact(
        artifacts_root,
        snapshot_dir=snapshot_dir,
        snapshot_hash=snapshot.hash,
        save_model=lambda path: model.save(path, save_format="tf", include_optimizer=False),
        donor_ids=snapshot.donor_ids,
        nonprofit_ids=snapshot.nonprofit_ids,
        donor_embeddings=donor_embeddings,
        nonprofit_embeddings=nonprofit_embeddings,
        nonprofit_popularity=popularity,
        metrics=json.loads(json.dumps(metrics)),
    )
