"""Train the link-prediction model on a snapshot, evaluate it and write a versioned artifact."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn
import tf_keras

from graph_model import schema
from graph_model.artifacts import write_artifact
from graph_model.config import TrainConfig
from graph_model.evaluate import RankingMetrics, ranking_metrics
from graph_model.graph_tensor import build_graph_tensor
from graph_model.model import build_model
from graph_model.snapshot import read_snapshot
from graph_model.split import TrainPairs, temporal_split

Progress = Callable[[int, int, float], None]  # (step, total steps, loss)


def _fit(
    model: tf_keras.Model,
    graph: tfgnn.GraphTensor,
    pairs: TrainPairs,
    num_nonprofits: int,
    config: TrainConfig,
    progress: Progress | None,
) -> float:
    """Run the BPR training loop; returns the last step's loss."""
    rng = np.random.default_rng(config.seed)
    optimizer = tf_keras.optimizers.Adam(config.learning_rate)
    vector = tf.TensorSpec([None], tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.bool), vector, vector, vector])
    def step(
        supervised: tf.Tensor, donor: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor
    ) -> tf.Tensor:
        message_graph = tfgnn.mask_edges(graph, schema.DONATED, tf.logical_not(supervised))
        with tf.GradientTape() as tape:
            embeddings = model(message_graph, training=True)
            donors = tf.gather(embeddings[schema.DONOR], donor)
            nonprofits = embeddings[schema.NONPROFIT]
            margin = tf.reduce_sum(
                donors * (tf.gather(nonprofits, positive) - tf.gather(nonprofits, negative)), -1
            )
            # BPR: a donor's nonprofit should outscore a random one. A sampled negative is now and
            # then a true positive; at this density that noise is small and not worth filtering.
            loss = tf.reduce_mean(tf.math.softplus(-margin)) + tf.add_n(
                [tf.constant(0.0), *model.losses]
            )
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    loss = float("nan")
    for i in range(config.steps):
        supervised = rng.random(len(pairs)) < config.supervision_fraction
        donor = np.repeat(pairs.donor[supervised], config.negatives)
        positive = np.repeat(pairs.nonprofit[supervised], config.negatives)
        negative = rng.integers(0, num_nonprofits, len(donor))
        loss = float(step(supervised, donor, positive, negative))
        if progress is not None:
            progress(i + 1, config.steps, loss)
    return loss


def _save_model(model: tf_keras.Model, path: Path) -> None:
    with warnings.catch_warnings():
        # TF notes that loading needs the GraphTensor spec types registered; importing
        # tensorflow_gnn (which any loader of this model must do anyway) registers them.
        warnings.filterwarnings("ignore", "Encoding a StructuredValue", UserWarning)
        model.save(path, save_format="tf", include_optimizer=False)


def _metrics_json(metrics: RankingMetrics, k: int) -> dict[str, float]:
    return {f"recall@{k}": metrics.recall, f"ndcg@{k}": metrics.ndcg}


def train(
    snapshot_dir: Path,
    artifacts_root: Path,
    config: TrainConfig = TrainConfig(),
    progress: Progress | None = None,
) -> Path:
    """Train on the snapshot's training split, evaluate on its holdout, write an artifact.

    `progress(step, steps, loss)` is called after every training step. Returns the new version
    directory, which `artifacts_root/CURRENT` then names.
    """
    started = time.monotonic()
    tf_keras.utils.set_random_seed(config.seed)
    snapshot = read_snapshot(snapshot_dir)
    num_donors, num_nonprofits = len(snapshot.donor_ids), len(snapshot.nonprofit_ids)
    split = temporal_split(snapshot.donations, num_nonprofits, config.holdout_fraction)
    graph = build_graph_tensor(snapshot, split.train_pairs)
    model = build_model(
        graph.spec,
        {name: int(graph.node_sets[name].total_size) for name in schema.NODE_SETS},
        embedding_dim=config.embedding_dim,
        num_layers=config.num_layers,
        l2=config.l2,
    )
    loss = _fit(model, graph, split.train_pairs, num_nonprofits, config, progress)

    # Served embeddings see every training donation as an edge.
    embeddings = model(graph, training=False)
    donor_embeddings = embeddings[schema.DONOR].numpy()
    nonprofit_embeddings = embeddings[schema.NONPROFIT].numpy()
    popularity = np.bincount(split.train.nonprofit, minlength=num_nonprofits)
    seen = np.stack([split.train_pairs.donor, split.train_pairs.nonprofit], axis=1)
    model_metrics = ranking_metrics(
        donor_embeddings @ nonprofit_embeddings.T, split.test_pairs, seen, config.k
    )
    popularity_metrics = ranking_metrics(
        np.broadcast_to(popularity, (num_donors, num_nonprofits)), split.test_pairs, seen, config.k
    )
    metrics = {
        "k": config.k,
        "model": _metrics_json(model_metrics, config.k),
        "popularity": _metrics_json(popularity_metrics, config.k),
        "train": {
            "donations": len(split.train),
            "pairs": len(split.train_pairs),
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
        save_model=lambda path: _save_model(model, path),
        donor_ids=snapshot.donor_ids,
        nonprofit_ids=snapshot.nonprofit_ids,
        donor_embeddings=donor_embeddings,
        nonprofit_embeddings=nonprofit_embeddings,
        nonprofit_popularity=popularity,
        metrics=metrics,
    )
