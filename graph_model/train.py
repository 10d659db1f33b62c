"""Train the link-prediction model on a snapshot, evaluate it and write a versioned artifact.

Training runs under a tf.distribute strategy (see `strategy_for`): variables are created in its
scope and each step runs through `strategy.run`, every replica scoring its share of the step's
supervised pairs over the full graph. The same code runs on one device, several GPUs
(MirroredStrategy) or several workers (MultiWorkerMirroredStrategy, from TF_CONFIG).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn
import tf_keras
from tensorflow.core.framework import summary_pb2

from graph_model import schema
from graph_model.artifacts import write_artifact
from graph_model.calibration import calibrate
from graph_model.candidates import (
    INCUMBENT,
    Candidate,
    all_candidates,
    choose,
    evaluate_candidates,
    table,
)
from graph_model.coldstart import ColdStart
from graph_model.config import TrainConfig
from graph_model.evaluability import assess
from graph_model.evaluate import (
    Evaluation,
    embedding_scorer,
    evaluate_scorer,
    popularity_scores,
)
from graph_model.graph_tensor import build_graph_tensor, node_counts, training_edges
from graph_model.model import build_model, degree_scale
from graph_model.phases import Phases
from graph_model.snapshot import Snapshot, SnapshotError, read_snapshot
from graph_model.split import Split, sample_donors, temporal_split, train_pairs

Progress = Callable[[int, int, float], None]  # (step, total steps, loss)
HISTORY = "history.json"  # in the artifact: {"loss": [{step, loss}], "evaluations": [...]}
TENSORBOARD = "tensorboard"  # in the artifact: TensorBoard event files of the run
PHASES = "phases.json"  # in the artifact: wall seconds and memory per phase (graph_model.phases)
PHASES_LOG = "phases.jsonl"  # the same rows as they happen, in the run's .training-* directory


def strategy_for(distribution: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy a TrainConfig.distribution names ("auto": see TrainConfig)."""
    if distribution == "auto":
        if os.environ.get("TF_CONFIG"):
            distribution = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            distribution = "mirrored"
        else:
            distribution = "default"
    if distribution == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if distribution == "mirrored":
        # All GPUs; without any, all logical CPUs (so the path can be exercised on CPU hosts).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only one worker writes logs and artifacts; with a single process that is this one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if resolver.task_type == "chief":
        return True
    return (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and ("chief" not in resolver.cluster_spec().as_dict())
    )


def _scalar(tag: str, value: float) -> None:
    """A TensorBoard scalar written by core TF: tf.summary.scalar needs the tensorboard package,
    which only adds this metadata (the scalars plugin's name) to the same `tf.summary.write`."""
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=metadata.SerializeToString())


@dataclass
class History:
    """What the run recorded: per-step loss, per-evaluation metrics (history.json)."""

    loss: list[dict[str, float]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"loss": self.loss, "evaluations": self.evaluations}


@dataclass
class Trained:
    model: tf_keras.Model
    graph: tfgnn.GraphTensor
    donor_embeddings: np.ndarray
    nonprofit_embeddings: np.ndarray
    history: History
    final_loss: float
    distribution: dict[str, Any]  # the strategy's class name and its number of replicas
    evaluation: Evaluation  # the holdout metrics of these embeddings (the last step's)


def _embed(model: tf_keras.Model, graph: tfgnn.GraphTensor) -> tuple[np.ndarray, np.ndarray]:
    embeddings = model(graph, training=False)
    return embeddings[schema.DONOR].numpy(), embeddings[schema.NONPROFIT].numpy()


def fit(
    snapshot: Snapshot,
    split: Split,
    config: TrainConfig,
    progress: Progress | None = None,
    log_dir: Path | None = None,
    phases: Phases | None = None,
) -> Trained:
    """Train on `split`'s training pairs; evaluate its warm test pairs every `eval_every` steps.

    Loss per step and the evaluations go to the returned History and, when `log_dir` is given,
    to TensorBoard event files there (written as training goes).
    """
    phases = phases if phases is not None else Phases()
    tf_keras.utils.set_random_seed(config.seed)
    strategy = strategy_for(config.distribution)
    num_nonprofits = len(snapshot.nonprofit_ids)
    # Steps run on a donor sample's subgraph (split.sample_donors: the model has no per-node
    # parameters, so a step's cost stops growing with the donors); the whole graph is embedded.
    with phases.phase("sample donors"):
        sample, pairs = sample_donors(snapshot, split.train_pairs, config.train_donors,
                                      config.seed)
    with phases.phase("graph tensor"):
        graph = build_graph_tensor(sample, pairs)
        whole = graph if sample is snapshot else build_graph_tensor(snapshot, split.train_pairs)
    with strategy.scope():
        model = build_model(
            graph.spec,
            node_counts(snapshot),
            embedding_dim=config.embedding_dim,
            num_layers=config.num_layers,
            l2=config.l2,
        )
        optimizer = tf_keras.optimizers.Adam(config.learning_rate)
    scale = degree_scale(model)
    training_scale = len(split.train_pairs) / max(1, len(pairs))
    replicas = strategy.num_replicas_in_sync
    vector = tf.TensorSpec([None], tf.int64)

    def replica_step(
        supervised: tf.Tensor, donor: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor
    ) -> tf.Tensor:
        # Every replica hides the same supervised edges and scores every replicas-th pair.
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        global_batch = tf.size(donor)
        donor, positive, negative = (t[replica::replicas] for t in (donor, positive, negative))
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
            loss = tf.nn.compute_average_loss(
                tf.math.softplus(-margin), global_batch_size=global_batch
            ) + tf.nn.scale_regularization_loss(tf.add_n([tf.constant(0.0), *model.losses]))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    @tf.function(input_signature=[tf.TensorSpec([None], tf.bool), vector, vector, vector])
    def step(
        supervised: tf.Tensor, donor: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor
    ) -> tf.Tensor:
        losses = strategy.run(replica_step, args=(supervised, donor, positive, negative))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    chief = _is_chief(strategy)
    writer = tf.summary.create_file_writer(str(log_dir)) if log_dir and chief else None
    history = History()
    popularity = split.popularity(num_nonprofits)
    seen = split.train_pairs.stacked()
    rng = np.random.default_rng(config.seed)
    loss = float("nan")
    for i in range(1, config.steps + 1):
        supervised = rng.random(len(pairs)) < config.supervision_fraction
        cold = rng.random(num_nonprofits) < config.cold_nonprofit_dropout
        supervised |= cold[pairs.nonprofit]
        donor = np.repeat(pairs.donor[supervised], config.negatives)
        positive = np.repeat(pairs.nonprofit[supervised], config.negatives)
        negative = rng.integers(0, num_nonprofits, len(donor))
        # A dropped nonprofit's negatives are dropped nonprofits too: otherwise "no donation
        # edges" would mark positives (all of a dropped nonprofit's pairs are positives) and the
        # model would learn to rank every new nonprofit first.
        cold_ids = np.flatnonzero(cold)
        against_cold = cold[positive]
        if len(cold_ids):
            negative[against_cold] = cold_ids[rng.integers(0, len(cold_ids), against_cold.sum())]
        with phases.phase("train step"):
            scale.assign(training_scale)
            loss = float(step(supervised, donor, positive, negative))
            scale.assign(1.0)
        history.loss.append({"step": i, "loss": loss})
        if writer is not None:
            with writer.as_default(step=i):
                _scalar("train/loss", loss)
        if i % config.eval_every == 0 or i == config.steps:
            with phases.phase("embed"):
                donors, nonprofits = _embed(model, whole)
            # A fixed sample of test donors, scored a chunk at a time: never donors x nonprofits.
            with phases.phase("evaluate gnn (during training)"):
                evaluation = evaluate_scorer(
                    embedding_scorer(donors, nonprofits),
                    split.test_pairs,
                    seen,
                    num_nonprofits,
                    k=config.k,
                    popularity=popularity,
                    sample=config.eval_donors,
                    seed=config.seed,
                )
            result = evaluation.summary()
            history.evaluations.append({"step": i, **result})
            if writer is not None:
                with writer.as_default(step=i):
                    for name, value in result.items():
                        _scalar(f"eval/{name}", value)
        if progress is not None:
            progress(i, config.steps, loss)
    if writer is not None:
        writer.close()
    # The last step was evaluated: its embeddings (every training donation an edge) are served.
    distribution = {"strategy": type(strategy).__name__, "replicas": replicas}
    return Trained(model, whole, donors, nonprofits, history, loss, distribution, evaluation)


def _save_model(
    trained: Trained,
    served: Candidate,
    snapshot: Snapshot,
    split: Split,
    path: Path,
    log_dir: Path,
) -> None:
    """The SavedModel (Keras model plus cold-start signatures in the served candidate's space),
    history and TensorBoard logs."""
    cold_start = ColdStart(
        trained.model,
        edges=training_edges(snapshot, split.train_pairs),
        sizes=node_counts(snapshot),
        cause_ids=snapshot.cause_ids,
        region_ids=snapshot.region_ids,
        nonprofit_ids=snapshot.nonprofit_ids,
        nonprofit_embeddings=served.nonprofits,
        segments=served.cold_start(),
    )
    with warnings.catch_warnings():
        # TF notes that loading needs the GraphTensor spec types registered; importing
        # tensorflow_gnn (which any loader of this model must do anyway) registers them.
        warnings.filterwarnings("ignore", "Encoding a StructuredValue", UserWarning)
        tf.saved_model.save(cold_start, str(path), signatures=cold_start.signatures())
    # The version directory is the SavedModel's parent: training logs travel with the model.
    (path.parent / HISTORY).write_text(json.dumps(trained.history.to_json()) + "\n")
    if log_dir.is_dir():
        shutil.copytree(log_dir, path.parent / TENSORBOARD)


def _metrics_json(summary: dict[str, float], k: int) -> dict[str, float]:
    return {f"recall@{k}": summary[f"recall@{k}"], f"ndcg@{k}": summary[f"ndcg@{k}"]}


def _select(
    snapshot: Snapshot, split: Split, config: TrainConfig, gnn: Candidate, phases: Phases
) -> tuple[Candidate, Evaluation, dict[str, Any]]:
    """Every candidate of graph_model.candidates on the same sampled holdout; the chosen one."""
    num_donors, num_nonprofits = len(snapshot.donor_ids), len(snapshot.nonprofit_ids)
    began = time.monotonic()
    candidates = all_candidates(gnn, split, num_donors, num_nonprofits, config, phases)
    evaluations = evaluate_candidates(
        candidates, split, num_nonprofits, k=config.k, sample=config.eval_donors,
        seed=config.seed, phases=phases,
    )
    winner, reason = choose(evaluations, config.k)
    chosen = next(c for c in candidates if c.name == winner)
    selection = {
        "candidate": winner,
        "reason": reason,
        "candidates": table(candidates, evaluations, config.k),
        "seconds": round(time.monotonic() - began, 2),
    }
    return chosen, evaluations[winner], selection


def _split(snapshot: Snapshot, config: TrainConfig) -> tuple[Split, str | None]:
    """The temporal split, or, when the timestamps allow none, every donation for training and
    no test pairs (with why: the model trains but cannot be evaluated)."""
    num_nonprofits = len(snapshot.nonprofit_ids)
    try:
        return temporal_split(snapshot.donations, num_nonprofits, config.holdout_fraction), None
    except ValueError as exc:
        donations = snapshot.donations
        everything = Split(
            cutoff_ts=int(donations.ts.max()) + 1,
            train=donations,
            train_pairs=train_pairs(donations, num_nonprofits),
            test_pairs=np.zeros((0, 2), dtype=np.int64),
        )
        return everything, f"{exc} ({len(np.unique(donations.ts))} distinct timestamps)"


def train(
    snapshot_dir: Path,
    artifacts_root: Path,
    config: TrainConfig = TrainConfig(),
    progress: Progress | None = None,
) -> Path:
    """Train on the snapshot's training split, evaluate it on its holdout, write an artifact.

    `progress(step, steps, loss)` is called after every training step. A split too small to
    judge the model (`config.min_test_donors`) still trains: metrics.json then records the
    evaluation as unevaluated (why, with the numbers), no candidate is chosen over the GNN and
    nothing is calibrated, and the version is never served on arrival. `SnapshotError` when the
    snapshot is not a graph the schema allows. Returns the new version directory (with
    history.json and tensorboard/ beside the SavedModel).
    """
    started = time.monotonic()
    phases = Phases()
    with phases.phase("read snapshot"):
        snapshot = read_snapshot(snapshot_dir)
    num_nonprofits = len(snapshot.nonprofit_ids)
    if len(snapshot.donations) == 0 or num_nonprofits < 2:
        raise SnapshotError(f"nothing to learn from: {len(snapshot.donations)} donations, "
                            f"{num_nonprofits} nonprofits (a ranking needs donations and at "
                            f"least 2 nonprofits)")
    with phases.phase("split"):
        split, split_problem = _split(snapshot, config)
    evaluation = assess(split.test_pairs, config.min_test_donors,
                        train_donations=len(split.train),
                        test_donations=len(snapshot.donations) - len(split.train),
                        split_problem=split_problem)
    artifacts_root.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix=".training-", dir=artifacts_root))
    phases.stream_to(log_dir / PHASES_LOG)
    try:
        trained = fit(snapshot, split, config, progress, log_dir, phases)
        served = Candidate(
            INCUMBENT,
            trained.donor_embeddings,
            trained.nonprofit_embeddings,
            time.monotonic() - started,
        )
        model_evaluation = trained.evaluation
        selection: dict[str, Any] = {"candidate": INCUMBENT, "reason": "candidates not compared"}
        if config.candidates and evaluation.possible:
            served, model_evaluation, selection = _select(
                snapshot, split, config, served, phases
            )
        elif config.candidates:
            selection["reason"] = "the holdout cannot judge candidates"
        popularity = split.popularity(num_nonprofits)
        with phases.phase("evaluate popularity (gate)"):
            popularity_evaluation = evaluate_scorer(
                lambda rows: popularity_scores(popularity, len(rows)),
                split.test_pairs,
                split.train_pairs.stacked(),
                num_nonprofits,
                k=config.k,
                sample=config.eval_donors,
                seed=config.seed,
            )
        # Probabilities the API can show: Platt scaling fitted on the holdout, for the model and
        # for the popularity ranking that donors unknown to the model get (graph_model.calibration).
        calibration: dict[str, Any] = {}
        for name, scorer, feature in () if not evaluation.possible else (
            (
                "model",
                embedding_scorer(served.donors, served.nonprofits),
                "score",
            ),
            ("popularity", lambda rows: popularity_scores(popularity, len(rows)), "log1p"),
        ):
            with phases.phase(f"calibrate {name}"):
                platt, report = calibrate(
                    scorer,
                    split.test_pairs,
                    split.train_pairs.stacked(),
                    num_nonprofits,
                    donors=max(1, config.eval_donors // 2),
                    k=config.k,
                    seed=config.seed,
                    feature=feature,
                )
            calibration[name] = {**platt.to_json(), **report}
        model_metrics = model_evaluation.summary()
        popularity_metrics = popularity_evaluation.summary()
        metrics: dict[str, Any] = {
            "k": config.k,
            "model": _metrics_json(model_metrics, config.k),
            "popularity": _metrics_json(popularity_metrics, config.k),
            "train": {
                "donations": len(split.train),
                "pairs": len(split.train_pairs),
                "cutoff_ts": split.cutoff_ts,
                "final_loss": trained.final_loss,
                "distribution": trained.distribution,
                "seconds": round(time.monotonic() - started, 2),
            },
            # donors: the test donors the figures average over (a seeded sample of test_donors
            # when there are more than config.eval_donors); confidence: their 95% intervals.
            "test": {
                "pairs": len(split.test_pairs),
                "donors": model_evaluation.users,
                "test_donors": model_evaluation.test_users,
            },
            "confidence": {
                "model": model_evaluation.confidence(),
                "popularity": popularity_evaluation.confidence(),
            },
            "evaluation": evaluation.to_json(),
            "calibration": calibration,
            # What donor_embeddings.npy and nonprofit_embeddings.npy hold ("model" above is its
            # holdout figure), why, and every candidate's holdout figures (graph_model.candidates).
            "served": selection.pop("candidate"),
            "selection": selection,
            "config": asdict(config),
            "snapshot_hash": snapshot.hash,
        }
        if not evaluation.possible:
            # Figures over no (or a handful of) test pairs would read as a verdict: none.
            for source in ("model", "popularity"):
                metrics[source] = dict.fromkeys(metrics[source])
        with phases.phase("write artifact"):
            version_dir = write_artifact(
                artifacts_root,
                snapshot_dir=snapshot_dir,
                snapshot_hash=snapshot.hash,
                save_model=lambda path: _save_model(
                    trained, served, snapshot, split, path, log_dir
                ),
                donor_ids=snapshot.donor_ids,
                nonprofit_ids=snapshot.nonprofit_ids,
                donor_embeddings=served.donors,
                nonprofit_embeddings=served.nonprofits,
                gift_donors=split.train.donor,
                gift_nonprofits=split.train.nonprofit,
                metrics=metrics,
                serve_if_first=evaluation.possible,
            )
        # Every phase's wall time and memory, the artifact's write included (so not in
        # metrics.json, which that phase writes): what a run at production size is judged by.
        (version_dir / PHASES).write_text(
            json.dumps({"phases": phases.rows, "totals": phases.totals()}, indent=1) + "\n"
        )
        return version_dir
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
