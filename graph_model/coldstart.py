"""Cold-start serving: embed donors and nonprofits that are not in the training graph.

The model has no per-donor or per-nonprofit parameters (see model.py), so a new node's embedding
is the same message passing the model was trained with, run over the training graph with the new
nodes appended: a new donor hears from its stated causes, its region and the nonprofits it has
given to so far; a new nonprofit from its causes and region. No retraining, no approximation.
Each call costs one full-graph forward pass (milliseconds at the synthetic sizes); batches of new
nodes share it.

The functions are exported as signatures of the artifact's SavedModel:
- embed_donors(region_ids[n], cause_ids[c], cause_owner[c], gift_nonprofit_ids[g],
  gift_owner[g]) -> {"embeddings": (n, dim), "scores": (n, nonprofits)};
- embed_nonprofits(region_ids[m], cause_ids[c], cause_owner[c]) -> {"embeddings": (m, dim)}.
Ids are the snapshot's string ids; `*_owner` gives the row (0-based, into region_ids) that each
cause or gift belongs to. Ids the model does not know are ignored. `scores` are the new donors'
dot products with the served nonprofit embeddings, in the artifact's nonprofit order.

Whatever candidate family is served (graph_model.candidates), the embeddings are in its space:
its `Segment`s say which columns come from the GNN (weighted), from the donor's gifts times a
matrix (GF-CF), or are constant (BPR-MF's bias column, popularity), so the signatures' scores
rank as the served embeddings do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from graph_model import schema
from graph_model.candidates import Segment, gnn_segments
from graph_model.graph_tensor import graph_from_edges

EMBED_DONORS = "embed_donors"
EMBED_NONPROFITS = "embed_nonprofits"


def _table(ids: Sequence[str]) -> tf.lookup.StaticHashTable:
    # TF cannot build an empty table (a graph without causes or regions): "" is never an id and
    # maps to -1, as every unknown id does.
    keys = list(ids) or [""]
    values = tf.range(len(ids), dtype=tf.int64) if ids else tf.constant([-1], tf.int64)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string), values),
        default_value=-1,
    )


class ColdStart(tf.Module):
    """Holds the training graph and id lookups; its tf.functions are the serving signatures."""

    def __init__(
        self,
        model: tf_keras.Model,
        *,
        edges: dict[str, tuple[np.ndarray, np.ndarray]],
        sizes: dict[str, int],
        cause_ids: Sequence[str],
        region_ids: Sequence[str],
        nonprofit_ids: Sequence[str],
        nonprofit_embeddings: np.ndarray,
        segments: tuple[Segment, ...] | None = None,
    ) -> None:
        """`nonprofit_embeddings` and `segments`: the served candidate's (default: the GNN's
        embeddings, whole)."""
        super().__init__(name="cold_start")
        self.model = model
        segments = segments or gnn_segments(int(nonprofit_embeddings.shape[1]))
        # Plain tuples and variables (by segment position), which tf.Module saves as they are.
        self.layout = tuple((s.kind, s.width, float(s.weight)) for s in segments)
        self.segment_values = {
            str(i): tf.Variable(np.asarray(value, np.float32), trainable=False,
                                name=f"segment_{i}")
            for i, s in enumerate(segments)
            if (value := s.matrix if s.kind == "gifts" else s.vector) is not None
        }
        self.uses_gnn = any(kind == "gnn" for kind, _, _ in self.layout)
        # Variables rather than constants: a large graph would not fit a GraphDef's 2 GiB.
        self.edges = {
            name: (
                tf.Variable(np.asarray(source, np.int64), trainable=False, name=f"{name}_source"),
                tf.Variable(np.asarray(target, np.int64), trainable=False, name=f"{name}_target"),
            )
            for name, (source, target) in edges.items()
        }
        self.sizes = {name: tf.constant(size, tf.int64) for name, size in sizes.items()}
        self.causes = _table(cause_ids)
        self.regions = _table(region_ids)
        self.nonprofits = _table(nonprofit_ids)
        self.nonprofit_embeddings = tf.Variable(
            nonprofit_embeddings.astype(np.float32), trainable=False, name="nonprofit_embeddings"
        )

    def _known(
        self, table: tf.lookup.StaticHashTable, ids: tf.Tensor, owner: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(owner rows, indices) of the ids the model knows; unknown ids are dropped."""
        index = table.lookup(ids)
        keep = index >= 0
        return tf.boolean_mask(owner, keep), tf.boolean_mask(index, keep)

    def _extended(
        self, node_set: str, count: tf.Tensor, new_edges: dict[str, tuple[tf.Tensor, tf.Tensor]]
    ) -> tf.Tensor:
        """Training graph plus `count` new nodes of `node_set` with their edges appended."""
        first = self.sizes[node_set]
        sizes = dict(self.sizes)
        sizes[node_set] = first + count
        edges = {}
        for name, (source, target) in self.edges.items():
            if name in new_edges:
                owner, other = new_edges[name]
                source = tf.concat([source, owner + first], 0)
                target = tf.concat([target, other], 0)
            edges[name] = (source, target)
        embeddings = self.model(graph_from_edges(sizes, edges), training=False)
        return embeddings[node_set][first:]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="region_ids"),
            tf.TensorSpec([None], tf.string, name="cause_ids"),
            tf.TensorSpec([None], tf.int64, name="cause_owner"),
            tf.TensorSpec([None], tf.string, name="gift_nonprofit_ids"),
            tf.TensorSpec([None], tf.int64, name="gift_owner"),
        ]
    )
    def embed_donors(
        self,
        region_ids: tf.Tensor,
        cause_ids: tf.Tensor,
        cause_owner: tf.Tensor,
        gift_nonprofit_ids: tf.Tensor,
        gift_owner: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        count = tf.size(region_ids, out_type=tf.int64)
        rows = tf.range(count)
        # One edge per distinct pair, as in training.
        gift_owner, gift_nonprofit = self._distinct(
            *self._known(self.nonprofits, gift_nonprofit_ids, gift_owner)
        )
        gnn = None
        if self.uses_gnn:
            gnn = self._extended(
                schema.DONOR,
                count,
                {
                    schema.DONOR_REGION: self._known(self.regions, region_ids, rows),
                    schema.DONOR_CAUSE: self._known(self.causes, cause_ids, cause_owner),
                    schema.DONATED: (gift_owner, gift_nonprofit),
                },
            )
        columns = []
        for i, (kind, _, weight) in enumerate(self.layout):
            if kind == "gnn":
                assert gnn is not None  # uses_gnn
                columns.append(gnn * weight)
            elif kind == "gifts":
                columns.append(tf.math.unsorted_segment_sum(
                    tf.gather(self.segment_values[str(i)], gift_nonprofit), gift_owner, count
                ))
            else:
                columns.append(tf.tile(self.segment_values[str(i)][None, :], tf.stack([count, 1])))
        embeddings = tf.concat(columns, axis=1)
        return {
            "embeddings": embeddings,
            "scores": tf.matmul(embeddings, self.nonprofit_embeddings, transpose_b=True),
        }

    @staticmethod
    def _distinct(owner: tf.Tensor, other: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        width = tf.maximum(tf.reduce_max(other), 0) + 1  # max of nothing is the dtype's minimum
        keys, _ = tf.unique(owner * width + other)
        return keys // width, keys % width

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="region_ids"),
            tf.TensorSpec([None], tf.string, name="cause_ids"),
            tf.TensorSpec([None], tf.int64, name="cause_owner"),
        ]
    )
    def embed_nonprofits(
        self, region_ids: tf.Tensor, cause_ids: tf.Tensor, cause_owner: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        count = tf.size(region_ids, out_type=tf.int64)
        gnn = None
        if self.uses_gnn:
            gnn = self._extended(
                schema.NONPROFIT,
                count,
                {
                    schema.NONPROFIT_REGION: self._known(
                        self.regions, region_ids, tf.range(count)
                    ),
                    schema.NONPROFIT_CAUSE: self._known(self.causes, cause_ids, cause_owner),
                },
            )
        # A new nonprofit has no donations: outside the GNN's columns it has zeros.
        columns = [
            gnn if kind == "gnn" else tf.zeros(tf.stack([count, width]), tf.float32)
            for kind, width, _ in self.layout
        ]
        return {"embeddings": tf.concat(columns, axis=1)}

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            EMBED_DONORS: self.embed_donors.get_concrete_function(),
            EMBED_NONPROFITS: self.embed_nonprofits.get_concrete_function(),
        }
