"""The TF-GNN model: full-graph message passing that yields donor and nonprofit embeddings."""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow_gnn as tfgnn
import tf_keras

from graph_model import schema

# Which edge sets each node set reads, and from which end: receiving at the SOURCE end reads an
# edge set backwards (e.g. donors hear from the nonprofits they gave to).
INCOMING: dict[str, dict[str, str]] = {
    schema.DONOR: {
        schema.DONATED: tfgnn.SOURCE,
        schema.DONOR_CAUSE: tfgnn.SOURCE,
        schema.DONOR_REGION: tfgnn.SOURCE,
    },
    schema.NONPROFIT: {
        schema.DONATED: tfgnn.TARGET,
        schema.NONPROFIT_CAUSE: tfgnn.SOURCE,
        schema.NONPROFIT_REGION: tfgnn.SOURCE,
    },
    schema.CAUSE: {schema.DONOR_CAUSE: tfgnn.TARGET, schema.NONPROFIT_CAUSE: tfgnn.TARGET},
    schema.REGION: {
        schema.DONOR_REGION: tfgnn.TARGET,
        schema.NONPROFIT_REGION: tfgnn.TARGET,
        schema.NEAR: tfgnn.TARGET,
    },
}


def _graph_update(dim: int, l2: float) -> tfgnn.keras.layers.GraphUpdate:
    regularizer = tf_keras.regularizers.l2(l2)

    def conv(receiver_tag: str) -> tfgnn.keras.layers.SimpleConv:
        # Mean pooling keeps prolific donors and popular nonprofits on the same scale as others.
        return tfgnn.keras.layers.SimpleConv(
            tf_keras.layers.Dense(dim, "relu", kernel_regularizer=regularizer),
            "mean",
            receiver_tag=receiver_tag,
            receiver_feature=None,
        )

    return tfgnn.keras.layers.GraphUpdate(
        node_sets={
            node_set: tfgnn.keras.layers.NodeSetUpdate(
                {edge_set: conv(tag) for edge_set, tag in incoming.items()},
                tfgnn.keras.layers.NextStateFromConcat(
                    tf_keras.layers.Dense(dim, kernel_regularizer=regularizer)
                ),
            )
            for node_set, incoming in INCOMING.items()
        }
    )


def build_model(
    graph_spec: tfgnn.GraphTensorSpec,
    num_nodes: Mapping[str, int],
    *,
    embedding_dim: int,
    num_layers: int,
    l2: float,
) -> tf_keras.Model:
    """GraphTensor -> {"donor": (donors, dim), "nonprofit": (nonprofits, dim)} embeddings.

    Full-graph propagation: the whole graph (thousands of nodes, tens of thousands of edges) fits
    in memory and one forward pass over it costs milliseconds, so there is no need for subgraph
    sampling; every step sees every node's complete neighbourhood.
    """

    def initial_state(node_set: tfgnn.NodeSet, *, node_set_name: str) -> tf_keras.KerasTensor:
        # A learned embedding per node; the cause and region structure enters by message passing.
        return tf_keras.layers.Embedding(
            num_nodes[node_set_name], embedding_dim, name=f"{node_set_name}_embedding"
        )(node_set[schema.INDEX])

    inputs = tf_keras.layers.Input(type_spec=graph_spec)
    graph = tfgnn.keras.layers.MapFeatures(node_sets_fn=initial_state)(inputs)
    for _ in range(num_layers):
        graph = _graph_update(embedding_dim, l2)(graph)
    outputs = {
        name: tfgnn.keras.layers.Readout(node_set_name=name)(graph)
        for name in (schema.DONOR, schema.NONPROFIT)
    }
    return tf_keras.Model(inputs, outputs)
