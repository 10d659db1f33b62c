"""Every benchmark model side by side, under one protocol, in one run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from graph_model.benchmark.dataset import InteractionDataset
from graph_model.benchmark.filters import GFCF, Popularity, Spectral, spectral
from graph_model.benchmark.metrics import Scorer, evaluate_ranking

Progress = Callable[[str], None]
INITIALISATION = "normalised filter (initialisation)"
SHIPPED = "TF-GNN filter (shipped)"


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
    held_out_scores: list[float]  # Recall+NDCG@k of hidden edges: initial, then each accepted
    parameters: list[float]  # shipped: response power, linear weight, degree powers
    fitted_parameters: list[float] = field(default_factory=list)  # what the search found
    fold_gains: list[float] = field(default_factory=list)  # held-out, fitted - initial, per fold
    shipped: str = "fitted"  # "fitted" or "initialisation" (see significant_gain)
    shipped_reason: str = ""
    fit_users: list[int] = field(default_factory=list)  # users fitted on, per fold

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
    """Popularity, GF-CF, the model's filter at its initialisation and the fitted TF-GNN model,
    ranked by the same evaluation."""
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
    say(
        f"randomized SVD of the train graph (k={model_config.rank}, "
        f"exponent {model_config.exponent})"
    )
    full_model = spectral(
        dataset.train, model_config.rank, exponent=model_config.exponent, randomized=True
    )
    model = gnn.NormalisedFilterModel(full_model, model_config)
    setup_s = time.perf_counter() - begin
    evaluate(INITIALISATION, _model_scorer(model, dataset.train), setup_s)

    begin = time.perf_counter()
    folds = []
    fit_users: list[int] = []
    for fold in range(model_config.folds):
        keep, hidden = gnn.hide_edges(dataset.train, model_config.hidden_share, rng)
        say(f"fold {fold + 1}: randomized SVD of the graph with {hidden.nnz} train edges hidden")
        masked = spectral(
            keep,
            model_config.rank,
            seed=model_config.seed + fold,
            exponent=model_config.exponent,
            randomized=True,
        )
        model.set_spectrum(masked)
        eligible = np.flatnonzero(np.diff(hidden.indptr) > 0)
        users = np.sort(
            rng.choice(eligible, min(model_config.fit_users, len(eligible)), replace=False)
        )
        signals = [
            gnn.user_signals(model, keep, users[start : start + config.chunk_size])
            for start in range(0, len(users), config.chunk_size)
        ]
        folds.append(_Fold(masked, signals, keep[users], hidden[users]))
        fit_users.append(len(users))

    def per_fold() -> list[float]:
        """Recall+NDCG@k of each fold's hidden edges."""
        totals = []
        for fold in folds:
            model.set_spectrum(fold.spectrum)

            def scores(batch: np.ndarray, fold: _Fold = fold) -> np.ndarray:
                return model.scores(*_batch_signals(fold.signals, batch, config.chunk_size)).numpy()

            metrics = evaluate_ranking(
                scores,
                fold.train,
                fold.hidden,
                config.k,
                config.chunk_size,
            )
            totals.append(metrics.recall + metrics.ndcg)
        return totals

    def held_out() -> float:
        """Recall+NDCG@k of the folds' hidden edges, averaged over the folds."""
        return float(np.mean(per_fold()))

    # The real numbers, not the configuration's: a small dataset has fewer eligible users.
    say(
        f"fitting on the hidden edges of {', '.join(str(f.hidden.shape[0]) for f in folds)} "
        f"users in {len(folds)} folds"
    )
    initial = model.parameters()
    before = per_fold()
    scores = gnn.fit(
        model,
        held_out,
        model_config,
        lambda what, score: say(f"{what}: held-out Recall+NDCG@{config.k} {score:.4f}"),
    )
    fitted = model.parameters()
    gains = [after - first for after, first in zip(per_fold(), before, strict=True)]
    significant, why = significant_gain(gains)
    if not significant:
        model.set_parameters(initial)  # ship the initialisation
    shipped = "fitted" if significant else "initialisation"
    say(f"shipping the {shipped}: {why}")
    folds.clear()  # the users' signals: 2.6 GB a fold on Gowalla
    model.set_spectrum(full_model)
    if significant:
        evaluate(
            SHIPPED,
            _model_scorer(model, dataset.train),
            setup_s + time.perf_counter() - begin,
        )
    else:  # the same scores as the initialisation's row: not ranked a second time
        init = next(r for r in results if r.name == INITIALISATION)
        results.append(
            ModelResult(
                SHIPPED, init.recall, init.ndcg, setup_s + time.perf_counter() - begin, init.eval_s
            )
        )
        say(f"{SHIPPED}: Recall@{config.k} {init.recall:.4f}, NDCG@{config.k} {init.ndcg:.4f}")

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
        held_out_scores=scores,
        parameters=model.parameters(),
        fitted_parameters=fitted,
        fold_gains=gains,
        shipped=shipped,
        shipped_reason=why,
        fit_users=fit_users,
    )


# The rule, stated before looking at any test set: the fitted parameters ship only when their
# held-out gain over the initialisation, fold by fold, passes a one-sided paired t-test at 5%
# (fold-to-fold noise). Otherwise the initialisation ships and the result says why.
GAIN_CONFIDENCE = 0.95


def significant_gain(gains: list[float], confidence: float = GAIN_CONFIDENCE) -> tuple[bool, str]:
    """Whether per-fold held-out gains exceed their fold-to-fold noise, and why (or why not)."""
    from scipy.stats import t

    n = len(gains)
    mean = float(np.mean(gains)) if n else 0.0
    if n < 2:
        return False, f"{n} fold: no fold-to-fold noise to judge a gain of {mean:+.4f} by"
    spread = float(np.std(gains, ddof=1))
    bound = float(t.ppf(confidence, n - 1)) * spread / np.sqrt(n)
    if mean > bound and mean > 0:
        return True, (
            f"held-out gain {mean:+.4f} over the initialisation exceeds the fold-to-fold noise "
            f"({bound:.4f}, one-sided paired t at {confidence:.0%} over {n} folds)"
        )
    return False, (
        f"held-out gain {mean:+.4f} over the initialisation is within the fold-to-fold noise "
        f"({bound:.4f}, one-sided paired t at {confidence:.0%} over {n} folds)"
    )


@dataclass(frozen=True)
class _Fold:
    """One hidden-edge draw: its graph's spectrum, the fitting users' signals and edges."""

    spectrum: Spectral
    signals: list  # UserSignals of the fitting users, one per chunk, in order
    train: sp.csr_matrix  # the users' kept edges (excluded from their ranking)
    hidden: sp.csr_matrix  # the users' hidden edges (what the ranking should find)


def _batch_signals(signals: list, batch: np.ndarray, chunk_size: int) -> tuple:
    """The precomputed signals of `batch`, a chunk of the fitting users (in their order)."""
    chunk = signals[int(batch[0]) // chunk_size]
    if chunk.states.shape[0] != len(batch):
        raise ValueError("batches must be the fitting users' chunks, in order")
    return chunk.states, chunk.linear


def _model_scorer(model, train: sp.csr_matrix) -> Scorer:
    from graph_model.benchmark.model import user_signals

    def score(users: np.ndarray) -> np.ndarray:
        signals = user_signals(model, train, users)
        return model.scores(signals.states, signals.linear).numpy()

    return score
