"""Build the heterogeneous donation GraphTensor from a snapshot and its training pairs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn

from graph_model import schema
from graph_model.snapshot import Snapshot
from graph_model.split import TrainPairs


def _edge_set(name: str, source: np.ndarray, target: np.ndarray) -> tfgnn.EdgeSet:
    source_set, target_set = schema.EDGE_SETS[name]
    return tfgnn.EdgeSet.from_fields(
        sizes=tf.constant([len(source)], tf.int64),
        adjacency=tfgnn.Adjacency.from_indices(
            source=(source_set, tf.constant(source, tf.int64)),
            target=(target_set, tf.constant(target, tf.int64)),
        ),
    )


def build_graph_tensor(snapshot: Snapshot, pairs: TrainPairs) -> tfgnn.GraphTensor:
    """One graph with every node but only the TRAINING donations, so no test pair leaks in."""
    sizes = {
        schema.DONOR: len(snapshot.donor_ids),
        schema.NONPROFIT: len(snapshot.nonprofit_ids),
        schema.CAUSE: len(snapshot.cause_ids),
        schema.REGION: len(snapshot.region_ids),
    }
    return tfgnn.GraphTensor.from_pieces(
        node_sets={
            name: tfgnn.NodeSet.from_fields(
                sizes=tf.constant([size], tf.int64),
                features={schema.INDEX: tf.range(size, dtype=tf.int64)},
            )
            for name, size in sizes.items()
        },
        edge_sets={
            schema.DONATED: _edge_set(schema.DONATED, pairs.donor, pairs.nonprofit),
            schema.DONOR_CAUSE: _edge_set(
                schema.DONOR_CAUSE, snapshot.donor_causes[:, 0], snapshot.donor_causes[:, 1]
            ),
            schema.NONPROFIT_CAUSE: _edge_set(
                schema.NONPROFIT_CAUSE,
                snapshot.nonprofit_causes[:, 0],
                snapshot.nonprofit_causes[:, 1],
            ),
            schema.DONOR_REGION: _edge_set(
                schema.DONOR_REGION, np.arange(sizes[schema.DONOR]), snapshot.donor_region
            ),
            schema.NONPROFIT_REGION: _edge_set(
                schema.NONPROFIT_REGION,
                np.arange(sizes[schema.NONPROFIT]),
                snapshot.nonprofit_region,
            ),
        },
    )
