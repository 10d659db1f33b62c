"""Sampled training subgraphs for graphs beyond one machine: TF-GNN's sampler as a Beam pipeline.

`donor-match train` uses full-graph steps (graph_model/model.py says why). When the donation
graph no longer fits one machine's memory, training has to move to subgraphs sampled around
seed donors. TF-GNN's sampler (`tensorflow_gnn.experimental.sampler`) compiles a sampling spec
into a program, and its Beam executor runs that program over the whole graph on any Beam
runner. This module feeds it the training graph and runs it:

- `write_unigraph` writes the training graph of a snapshot (training donations only, as
  `graph_model.graph_tensor` builds it) in TF-GNN's unigraph format: one CSV file per node set
  (`#id`) and per edge set (`#source`, `#target`), and a `schema.pbtxt` naming them. The
  donation edges are also written reversed, since the sampler follows edges from source to
  target.
- `sample` runs the pipeline. For each seed donor it writes one serialised GraphTensor
  (tf.train.Example) to TFRecord shards `<output>-*.tfrecord`: the donor, up to `fanout[0]` of
  its nonprofits, up to `fanout[1]` of their other donors, and the causes and regions of those
  donors and nonprofits. The default runner is Beam's DirectRunner, on this machine.

Running it elsewhere is Beam's business; pass the runner's options after `--`:

    python -m graph_model.beam_sampler --snapshot DIR --unigraph gs://B/g --output gs://B/s/part \
        -- --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
    # Flink: --runner FlinkRunner --flink_master HOST:8081 --environment_type DOCKER
    # Spark: --runner SparkRunner --spark_master_url spark://HOST:7077

Multi-worker training (`TF_CONFIG`, which `graph_model.train.strategy_for` turns into a
MultiWorkerMirroredStrategy) reads the shards as
`tf.data.Dataset.list_files(output + "-*.tfrecord").shard(workers, index)`, parses them with
`tfgnn.parse_example(tfgnn.create_graph_spec_from_schema_pb(schema), batch)`, and merges each
batch into one graph (`merge_batch_to_components`) before the model's step. That training loop
is not built: the full-graph loop is what ships.
"""

from __future__ import annotations

import argparse
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as graph_model does: TF-GNN needs Keras 2

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn
from google.protobuf import text_format
from tensorflow_gnn import sampler as sampler_lib
from tensorflow_gnn.data import unigraph
from tensorflow_gnn.experimental import sampler as sampler_api
from tensorflow_gnn.experimental.sampler.beam import executor_lib, unigraph_utils
from tensorflow_gnn.experimental.sampler.beam import sampler as beam_sampler

from graph_model import schema
from graph_model.graph_tensor import training_edges
from graph_model.snapshot import Snapshot, read_snapshot
from graph_model.split import temporal_split

REVERSED = "rev_" + schema.DONATED  # nonprofit -> donor
SCHEMA_FILE = "schema.pbtxt"


def _ids(snapshot: Snapshot) -> dict[str, list[str]]:
    return {
        schema.DONOR: snapshot.donor_ids,
        schema.NONPROFIT: snapshot.nonprofit_ids,
        schema.CAUSE: snapshot.cause_ids,
        schema.REGION: snapshot.region_ids,
    }


def write_unigraph(snapshot: Snapshot, holdout_fraction: float, directory: Path) -> Path:
    """The snapshot's training graph as a unigraph; returns the schema file."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = _ids(snapshot)
    split = temporal_split(snapshot.donations, len(snapshot.nonprofit_ids), holdout_fraction)
    edges = training_edges(snapshot, split.train_pairs)
    edges[REVERSED] = (edges[schema.DONATED][1], edges[schema.DONATED][0])
    ends = {**schema.EDGE_SETS, REVERSED: (schema.NONPROFIT, schema.DONOR)}
    graph = tfgnn.GraphSchema()
    for name, values in ids.items():
        filename = f"nodes-{name}.csv"
        (directory / filename).write_text("#id\n" + "".join(f"{v}\n" for v in values))
        node_set = graph.node_sets[name]
        node_set.features["#id"].dtype = tf.string.as_datatype_enum
        node_set.metadata.filename = filename
    for name, (source, target) in edges.items():
        source_set, target_set = ends[name]
        filename = f"edges-{name}.csv"
        src, dst = np.asarray(ids[source_set]), np.asarray(ids[target_set])
        rows = (f"{a},{b}\n" for a, b in zip(src[source], dst[target], strict=True))
        (directory / filename).write_text("#source,#target\n" + "".join(rows))
        edge_set = graph.edge_sets[name]
        edge_set.source, edge_set.target = source_set, target_set
        edge_set.metadata.filename = filename
    path = directory / SCHEMA_FILE
    path.write_text(text_format.MessageToString(graph))
    return path


def sampling_spec(fanout: Sequence[int]) -> sampler_lib.SamplingSpec:
    """Seed donor -> its nonprofits -> their donors, with causes and regions of both ends."""
    first, second = fanout
    spec = sampler_lib.SamplingSpec()
    spec.seed_op.op_name = "seed"
    spec.seed_op.node_set_name = schema.DONOR

    def hop(name: str, source: str, edge_set: str, size: int) -> None:
        op = spec.sampling_ops.add(op_name=name, edge_set_name=edge_set, sample_size=size)
        op.input_op_names.append(source)
        op.strategy = sampler_lib.SamplingStrategy.RANDOM_UNIFORM

    hop("nonprofits", "seed", schema.DONATED, first)
    hop("donor_causes", "seed", schema.DONOR_CAUSE, 16)
    hop("donor_region", "seed", schema.DONOR_REGION, 1)
    hop("peers", "nonprofits", REVERSED, second)
    hop("nonprofit_causes", "nonprofits", schema.NONPROFIT_CAUSE, 16)
    hop("nonprofit_region", "nonprofits", schema.NONPROFIT_REGION, 1)
    return spec


class _ShardWriter(beam.DoFn):
    """TFRecord shards written with TensorFlow's writer (Beam's own needs a CRC package that
    TensorFlow does not bring), one per bundle, on any filesystem tf.io.gfile reaches."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._writer: tf.io.TFRecordWriter | None = None

    def start_bundle(self) -> None:
        self._writer = None

    def process(self, example: object):  # type: ignore[no-untyped-def]
        if self._writer is None:
            self._writer = tf.io.TFRecordWriter(f"{self._prefix}-{uuid.uuid4().hex}.tfrecord")
        data = example if isinstance(example, bytes) else example.SerializeToString()  # type: ignore[attr-defined]
        self._writer.write(data)
        return []

    def finish_bundle(self) -> None:
        if self._writer is not None:
            self._writer.close()


def sample(
    schema_file: Path,
    output: str,
    fanout: Sequence[int] = (10, 10),
    pipeline_args: Sequence[str] = ("--runner", "DirectRunner"),
) -> list[str]:
    """Run the sampling pipeline over the unigraph; returns the shards written."""
    graph = unigraph.read_schema(str(schema_file))
    spec = sampling_spec(fanout)
    model, layers = beam_sampler.get_sampling_model(graph, spec)
    program, artifacts = sampler_api.create_program(model)
    # The program's TF stages are saved beside the output, where every worker can read them.
    artifacts_path = f"{output}-artifacts"
    if tf.io.gfile.exists(artifacts_path):
        tf.io.gfile.rmtree(artifacts_path)
    tf.io.gfile.makedirs(artifacts_path)
    beam_sampler.save_artifacts(artifacts, artifacts_path)
    options = beam.options.pipeline_options.PipelineOptions(list(pipeline_args))
    with beam.Pipeline(options=options) as root:
        feeds = root | unigraph_utils.ReadAndConvertUnigraph(graph, str(schema_file.parent))
        feeds.update({name: feeds[layers[name]] for name in layers})
        seeds = unigraph_utils.seeds_from_graph_dict(feeds, spec)
        examples = executor_lib.execute(
            program, {"Input": seeds}, feeds=feeds, artifacts_path=artifacts_path
        )
        _ = (
            examples
            | "DropExampleId" >> beam.Values()
            | "WriteShards" >> beam.ParDo(_ShardWriter(output))
        )
    return sorted(tf.io.gfile.glob(f"{output}-*.tfrecord"))


def read_samples(schema_file: Path, shards: Sequence[str]) -> list[tfgnn.GraphTensor]:
    """The sampled subgraphs of `shards` (for tests and inspection; training streams them)."""
    spec = tfgnn.create_graph_spec_from_schema_pb(unigraph.read_schema(str(schema_file)))
    return [tfgnn.parse_single_example(spec, record) for record in tf.data.TFRecordDataset(shards)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--unigraph", type=Path, required=True, help="directory to write it to")
    parser.add_argument("--output", required=True, help="shard prefix, local or gs://")
    parser.add_argument("--fanout", default="10,10")
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    args, pipeline_args = parser.parse_known_args(argv)
    if args.unigraph.exists():
        shutil.rmtree(args.unigraph)
    schema_file = write_unigraph(read_snapshot(args.snapshot), args.holdout_fraction, args.unigraph)
    fanout = [int(f) for f in args.fanout.split(",")]
    shards = sample(schema_file, args.output, fanout, pipeline_args or ["--runner", "DirectRunner"])
    print(f"{len(shards)} shards: {', '.join(shards[:3])}{' ...' if len(shards) > 3 else ''}")


if __name__ == "__main__":
    main()
