"""The TF-GNN model: full-graph message passing that yields donor and nonprofit embeddings."""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf
import tensorflow_gnn as tfgnn
import tf_keras

from graph_model import schema

# The edge sets each node set reads, and the end it receives at: receiving at the SOURCE end reads
# an edge set backwards (e.g. donors hear from the nonprofits they gave to).
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
    schema.REGION: {schema.DONOR_REGION: tfgnn.TARGET, schema.NONPROFIT_REGION: tfgnn.TARGET},
}


def _graph_update(
    dim: int, l2: float, node_sets: tuple[str, ...]
) -> tfgnn.keras.layers.GraphUpdate:
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
            if node_set in node_sets
        }
    )


DEGREE = "degree"  # nonprofit feature added by AddDegree


class AddDegree(tf_keras.layers.Layer):
    """Adds each nonprofit's number of visible donation edges, times `scale`, as the float
    feature DEGREE.

    Computed from the graph rather than stored with it, so it always matches the edges message
    passing sees (training hides some; a new nonprofit has none). `scale` (a non-trainable
    weight, 1 when serving) is set while training on a donor sample (graph_model.split.
    sample_donors) to the full graph's pairs over the sample's, so that a nonprofit's degree
    keeps the scale it has in the whole graph the model later embeds.
    """

    def build(self, input_shape: object) -> None:
        self.scale = self.add_weight(
            name="degree_scale", shape=(), initializer="ones", trainable=False
        )
        super().build(input_shape)

    def call(self, graph: tfgnn.GraphTensor) -> tfgnn.GraphTensor:
        features = dict(graph.node_sets[schema.NONPROFIT].features)
        degree = tfgnn.node_degree(graph, schema.DONATED, tfgnn.TARGET)
        features[DEGREE] = tf.cast(degree, tf.float32) * self.scale
        return graph.replace_features(node_sets={schema.NONPROFIT: features})


def degree_scale(model: tf_keras.Model) -> tf.Variable:
    """The model's AddDegree scale (see AddDegree)."""
    return next(layer.scale for layer in model.layers if isinstance(layer, AddDegree))


def build_model(
    graph_spec: tfgnn.GraphTensorSpec,
    num_nodes: Mapping[str, int],
    *,
    embedding_dim: int,
    num_layers: int,
    l2: float,
) -> tf_keras.Model:
    """GraphTensor -> {"donor": (donors, dim), "nonprofit": (nonprofits, dim)} embeddings.

    Full-graph propagation, not mini-batches of sampled subgraphs: every step sees each node's
    complete neighbourhood and scores all of the step's supervised pairs at once. Measured
    (bench/sampler.py, docs/model.md) at 100k donors / 10k nonprofits / 1M donations: a
    full-graph step costs 6.2 us per scored (donor, positive, negative) triple, while TF-GNN's
    in-memory sampler alone (tensorflow_gnn.experimental.sampler, 2-hop donor subgraphs, fanout
    10 x 10) costs 389 us per triple before any model work: 63x more. The price is memory that
    grows with the edges (3.3 GB peak there): beyond what one machine holds, the sampler's
    subgraphs (or its Beam pipeline) are the way on, at that per-triple cost. Since the model has
    no per-node parameters, training runs these full-graph steps on the subgraph of a donor
    sample (graph_model.split.sample_donors), which bounds that memory, and only the forward
    pass sees the whole graph.
    """

    def initial_state(node_set: tfgnn.NodeSet, *, node_set_name: str) -> tf.Tensor:
        index = node_set[schema.INDEX]
        if node_set_name == schema.DONOR:
            # No per-donor parameters: all donors start from one shared vector, and a donor's
            # embedding comes from its interests, region and gifts. Per-donor embeddings overfit
            # donors with few gifts and lost recall in our runs.
            return tf_keras.layers.Embedding(1, embedding_dim)(tf.zeros_like(index))
        if node_set_name == schema.NONPROFIT:
            # No per-nonprofit parameters either: a shared vector plus a function of the
            # nonprofit's donation count (popularity, which mean pooling cannot see). That makes
            # the model inductive (a new nonprofit is embedded from its causes and region) and
            # it beat per-nonprofit embeddings on the test graph (Recall@20 0.84 vs 0.81).
            log_degree = tf.math.log1p(node_set[DEGREE])[:, None]
            shared = tf_keras.layers.Embedding(1, embedding_dim)(tf.zeros_like(index))
            return shared + tf_keras.layers.Dense(embedding_dim)(log_degree)
        # At least one row: a graph may have no causes or no regions (the schema allows it).
        return tf_keras.layers.Embedding(max(1, num_nodes[node_set_name]), embedding_dim)(index)

    # Node and edge counts vary: training hides a random subset of donation edges on every step,
    # and cold-start serving appends new donors and nonprofits to the training graph.
    inputs = tf_keras.layers.Input(type_spec=graph_spec.relax(num_nodes=True, num_edges=True))
    graph = AddDegree()(inputs)
    graph = tfgnn.keras.layers.MapFeatures(node_sets_fn=initial_state)(graph)
    for layer in range(num_layers):
        # The last layer only updates what is read out: causes' and regions' last states are
        # never used.
        last = layer == num_layers - 1
        updated = (schema.DONOR, schema.NONPROFIT) if last else tuple(INCOMING)
        graph = _graph_update(embedding_dim, l2, updated)(graph)
    outputs = {
        name: tfgnn.keras.layers.Readout(node_set_name=name)(graph)
        for name in (schema.DONOR, schema.NONPROFIT)
    }
    return tf_keras.Model(inputs, outputs)
