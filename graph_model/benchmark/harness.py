"""Every benchmark model side by side, under one protocol, in one run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from graph_model.benchmark.dataset import InteractionDataset
from graph_model.benchmark.filters import GFCF, Popularity, Spectral, propagate, spectral
from graph_model.benchmark.metrics import Scorer, evaluate_ranking

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchmarkConfig:
    k: int = 20  # the cut-off of Recall@k and NDCG@k
    svd_rank: int = 256  # singular components of the filter (and the model's initial state)
    alpha: float = 0.3  # GF-CF's weight of the ideal low-pass filter
    chunk_size: int = 1024  # users scored at once (dense users x items blocks)
    model: dict[str, float | int] = field(default_factory=dict)  # ModelConfig overrides


@dataclass(frozen=True)
class ModelResult:
    name: str
    recall: float
    ndcg: float
    fit_s: float  # preparation and training, shared steps (the full graph's SVD) included
    eval_s: float  # scoring and ranking every user with test items

    @property
    def wall_s(self) -> float:
        return self.fit_s + self.eval_s


@dataclass(frozen=True)
class BenchmarkResult:
    dataset: str
    users: int
    items: int
    train_interactions: int
    test_interactions: int
    evaluated_users: int
    k: int
    models: list[ModelResult]
    wall_s: float
    training_losses: list[float]
    held_out_scores: list[float]  # Recall+NDCG@k on held-out hidden edges: initialisation, epochs
    selected_epoch: int  # the weights the model keeps: 0 is the GF-CF initialisation

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        for model, entry in zip(self.models, out["models"], strict=True):
            entry["wall_s"] = model.wall_s
        return out


def run_benchmark(
    dataset: InteractionDataset,
    config: BenchmarkConfig | None = None,
    progress: Progress | None = None,
) -> BenchmarkResult:
    """Popularity, GF-CF alone and the trained TF-GNN model, ranked by the same evaluation."""
    # TensorFlow loads only here: loading and ranking need numpy and scipy alone.
    from graph_model.benchmark import model as gnn

    config = config or BenchmarkConfig()
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    results: list[ModelResult] = []

    def evaluate(name: str, scorer: Scorer, fit_s: float) -> None:
        begin = time.perf_counter()
        metrics = evaluate_ranking(scorer, dataset.train, dataset.test, config.k, config.chunk_size)
        results.append(
            ModelResult(name, metrics.recall, metrics.ndcg, fit_s, time.perf_counter() - begin)
        )
        say(f"{name}: Recall@{config.k} {metrics.recall:.4f}, NDCG@{config.k} {metrics.ndcg:.4f}")

    begin = time.perf_counter()
    popularity = Popularity(dataset.train)
    evaluate("popularity", popularity, time.perf_counter() - begin)

    begin = time.perf_counter()
    say(f"truncated SVD of the normalised train graph (k={config.svd_rank})")
    full = spectral(dataset.train, config.svd_rank)
    spectral_s = time.perf_counter() - begin
    evaluate("GF-CF (filter alone)", GFCF(dataset.train, full, config.alpha), spectral_s)

    begin = time.perf_counter()
    model_config = gnn.ModelConfig(**config.model)  # type: ignore[arg-type]
    rng = np.random.default_rng(model_config.seed)
    keep, hidden = gnn.hide_edges(dataset.train, model_config.hidden_share, rng)
    say(f"SVD of the graph with {hidden.nnz} train edges hidden")
    masked = spectral(keep, config.svd_rank)
    say("training set: hidden edges, hard and uniform negatives")
    data = gnn.training_set(
        keep, hidden, masked, lambda users: propagate(keep, masked, users, 2), model_config, rng
    )
    model = gnn.SpectralFilterModel(masked, model_config.knots)
    # Selection set: hidden edges of users the training set does not use, on the masked graph.
    eligible = np.flatnonzero(np.diff(hidden.indptr) > 0)
    others = np.setdiff1d(eligible, data.users)
    chosen = np.zeros(dataset.num_users, np.float32)
    chosen[rng.choice(others, min(model_config.validation_users, len(others)), replace=False)] = 1
    held_out = sp.csr_matrix(sp.diags(chosen) @ hidden)
    masked_scorer = _model_scorer(model, keep, masked)

    scores: list[float] = []

    def validate() -> float:
        metrics = evaluate_ranking(masked_scorer, keep, held_out, config.k, config.chunk_size)
        if not scores:
            say(
                f"held-out Recall+NDCG@{config.k} at the GF-CF initialisation "
                f"{metrics.recall + metrics.ndcg:.4f}"
            )
        scores.append(metrics.recall + metrics.ndcg)
        return scores[-1]

    losses = gnn.fit(
        model,
        keep,
        data,
        model_config,
        rng,
        validate,
        lambda epoch, loss, score: say(
            f"epoch {epoch + 1}/{model_config.epochs}: loss {loss:.4f}, "
            f"held-out Recall+NDCG@{config.k} {score:.4f}"
        ),
    )
    model.set_spectrum(full)
    evaluate(
        "TF-GNN learned filter",
        _model_scorer(model, dataset.train, full),
        spectral_s + time.perf_counter() - begin,
    )

    return BenchmarkResult(
        dataset=dataset.name,
        users=dataset.num_users,
        items=dataset.num_items,
        train_interactions=int(dataset.train.nnz),
        test_interactions=int(dataset.test.nnz),
        evaluated_users=int((np.diff(dataset.test.indptr) > 0).sum()),
        k=config.k,
        models=results,
        wall_s=time.perf_counter() - started,
        training_losses=losses,
        held_out_scores=scores,
        selected_epoch=int(np.argmax(scores)),
    )


def _model_scorer(model, train: sp.csr_matrix, spec: Spectral) -> Scorer:
    from graph_model.benchmark.model import batch_graph

    def score(users: np.ndarray) -> np.ndarray:
        model.set_spectrum(spec)
        linear, sharpen = propagate(train, spec, users, 2)
        return model.full_scores(batch_graph(train, users), linear, sharpen)

    return score
