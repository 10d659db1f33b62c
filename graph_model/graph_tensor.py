"""Build the heterogeneous donation GraphTensor from a snapshot and its training pairs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn

from graph_model import schema
from graph_model.snapshot import Snapshot
from graph_model.split import TrainPairs


def nearest_regions(latlon: np.ndarray, k: int) -> np.ndarray:
    """(regions * k, 2) pairs linking each region to its k nearest other regions."""
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    # Haversine great-circle distance (up to a constant factor) between all region pairs.
    a = (
        np.sin((lat[:, None] - lat[None, :]) / 2) ** 2
        + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin((lon[:, None] - lon[None, :]) / 2) ** 2
    )
    distance = np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    np.fill_diagonal(distance, np.inf)
    k = min(k, len(latlon) - 1)
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
    return np.stack([np.repeat(np.arange(len(latlon)), k), nearest.ravel()], axis=1)


def _edge_set(source: np.ndarray, target: np.ndarray, name: str,
              features: dict[str, tf.Tensor] | None = None) -> tfgnn.EdgeSet:  # fmt: skip
    source_set, target_set = schema.EDGE_SETS[name]
    return tfgnn.EdgeSet.from_fields(
        sizes=tf.constant([len(source)], tf.int64),
        adjacency=tfgnn.Adjacency.from_indices(
            source=(source_set, tf.constant(source, tf.int64)),
            target=(target_set, tf.constant(target, tf.int64)),
        ),
        features=features or {},
    )


def build_graph_tensor(
    snapshot: Snapshot, pairs: TrainPairs, near_regions: int = 3
) -> tfgnn.GraphTensor:
    """One graph holding every node, but only the TRAINING donations (no test leakage)."""
    sizes = {
        schema.DONOR: len(snapshot.donor_ids),
        schema.NONPROFIT: len(snapshot.nonprofit_ids),
        schema.CAUSE: len(snapshot.cause_ids),
        schema.REGION: len(snapshot.region_ids),
    }
    near = nearest_regions(snapshot.region_latlon, near_regions)
    donors, nonprofits = np.arange(sizes[schema.DONOR]), np.arange(sizes[schema.NONPROFIT])
    return tfgnn.GraphTensor.from_pieces(
        node_sets={
            name: tfgnn.NodeSet.from_fields(
                sizes=tf.constant([size], tf.int64),
                features={schema.INDEX: tf.range(size, dtype=tf.int64)},
            )
            for name, size in sizes.items()
        },
        edge_sets={
            schema.DONATED: _edge_set(
                pairs.donor, pairs.nonprofit, schema.DONATED,
                {schema.WEIGHT: tf.constant(np.log1p(pairs.count)[:, None], tf.float32)},
            ),  # fmt: skip
            schema.DONOR_CAUSE: _edge_set(
                snapshot.donor_causes[:, 0], snapshot.donor_causes[:, 1], schema.DONOR_CAUSE
            ),
            schema.NONPROFIT_CAUSE: _edge_set(
                snapshot.nonprofit_causes[:, 0], snapshot.nonprofit_causes[:, 1],
                schema.NONPROFIT_CAUSE,
            ),  # fmt: skip
            schema.DONOR_REGION: _edge_set(donors, snapshot.donor_region, schema.DONOR_REGION),
            schema.NONPROFIT_REGION: _edge_set(
                nonprofits, snapshot.nonprofit_region, schema.NONPROFIT_REGION
            ),
            schema.NEAR: _edge_set(near[:, 0], near[:, 1], schema.NEAR),
        },
    )
