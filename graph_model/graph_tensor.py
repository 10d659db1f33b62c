"""Build the heterogeneous donation GraphTensor from a snapshot and its training pairs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn

from graph_model import schema
from graph_model.snapshot import Snapshot
from graph_model.split import TrainPairs

Edges = tuple[tf.Tensor, tf.Tensor]  # (source indices, target indices), int64


def graph_from_edges(
    sizes: Mapping[str, tf.Tensor], edges: Mapping[str, Edges]
) -> tfgnn.GraphTensor:
    """A one-component GraphTensor from node counts and edge index tensors.

    Works on tensors, so the cold-start serving functions can build extended graphs in-graph.
    """
    return tfgnn.GraphTensor.from_pieces(
        node_sets={
            name: tfgnn.NodeSet.from_fields(
                sizes=tf.reshape(tf.cast(sizes[name], tf.int64), [1]),
                features={schema.INDEX: tf.range(tf.cast(sizes[name], tf.int64))},
            )
            for name in schema.NODE_SETS
        },
        edge_sets={
            name: tfgnn.EdgeSet.from_fields(
                sizes=tf.reshape(tf.size(edges[name][0], out_type=tf.int64), [1]),
                adjacency=tfgnn.Adjacency.from_indices(
                    source=(schema.EDGE_SETS[name][0], tf.cast(edges[name][0], tf.int64)),
                    target=(schema.EDGE_SETS[name][1], tf.cast(edges[name][1], tf.int64)),
                ),
            )
            for name in schema.EDGE_SETS
        },
    )


def training_edges(
    snapshot: Snapshot, pairs: TrainPairs
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every edge set of the training graph as (source, target) index arrays. A donor or
    nonprofit without a region (NO_REGION) has no region edge."""
    donors = np.flatnonzero(snapshot.donor_region >= 0)
    nonprofits = np.flatnonzero(snapshot.nonprofit_region >= 0)
    return {
        schema.DONATED: (pairs.donor, pairs.nonprofit),
        schema.DONOR_CAUSE: (snapshot.donor_causes[:, 0], snapshot.donor_causes[:, 1]),
        schema.NONPROFIT_CAUSE: (snapshot.nonprofit_causes[:, 0], snapshot.nonprofit_causes[:, 1]),
        schema.DONOR_REGION: (donors, snapshot.donor_region[donors]),
        schema.NONPROFIT_REGION: (nonprofits, snapshot.nonprofit_region[nonprofits]),
    }


def node_counts(snapshot: Snapshot) -> dict[str, int]:
    return {
        schema.DONOR: len(snapshot.donor_ids),
        schema.NONPROFIT: len(snapshot.nonprofit_ids),
        schema.CAUSE: len(snapshot.cause_ids),
        schema.REGION: len(snapshot.region_ids),
    }


def build_graph_tensor(snapshot: Snapshot, pairs: TrainPairs) -> tfgnn.GraphTensor:
    """One graph with every node but only the TRAINING donations, so no test pair leaks in."""
    edges = training_edges(snapshot, pairs)
    return graph_from_edges(
        {name: tf.constant(size, tf.int64) for name, size in node_counts(snapshot).items()},
        {
            name: (tf.constant(source, tf.int64), tf.constant(target, tf.int64))
            for name, (source, target) in edges.items()
        },
    )
