"""Candidate models side by side on the temporal split; the holdout decides what is served.

Every candidate is a pair of embedding matrices whose dot products are its scores, so whichever
wins is served through the same artifact files (donor_embeddings.npy, nonprofit_embeddings.npy)
and the API's per-request cost stays one product of a donor row with the nonprofit matrix:
- gnn: the heterogeneous TF-GNN (graph_model.train);
- gf_cf: the graph filter of the public benchmark (graph_model.benchmark.filters, GF-CF) on the
  donor -> nonprofit training graph, as a rank-k factorisation: with R~ = U S V^T truncated, the
  linear filter r R~^T R~ becomes (r V S^2) V^T and the ideal low-pass filter
  r D^-1/2 V V^T D^1/2 is already low rank; donors get [r V S^2, alpha r D^-1/2 V], nonprofits
  [V, D^1/2 V]. The linear part is thereby truncated to rank k (exact GF-CF keeps it whole,
  which would need a sparse product per request);
- gnn+gf_cf: the two with equal weight after scaling each to unit score deviation (a weight fixed
  in advance: tuning it on the holdout that also picks the winner would flatter it);
- bpr_mf: BPR matrix factorisation with an item bias (graph_model.evaluate.bpr_mf), the bias as
  one more dimension against a constant 1;
- popularity: training donations per nonprofit, against a constant 1.

All are ranked by the same sampled evaluation (graph_model.evaluate.evaluate_scorer: the same
seeded test donors, full ranking, training pairs excluded). `choose` keeps the GNN (the only
family with cold-start serving signatures) unless a challenger is better beyond the evaluation's
noise: both its Recall@k and NDCG@k above the upper end of the GNN's 95% intervals.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from graph_model.benchmark.filters import spectral
from graph_model.config import TrainConfig
from graph_model.evaluate import Evaluation, bpr_mf, embedding_scorer, evaluate_scorer
from graph_model.phases import Phases
from graph_model.split import Split

INCUMBENT = "gnn"


@dataclass(frozen=True)
class Segment:
    """A run of columns of a candidate's embeddings, as a node the training graph lacks gets
    them (graph_model.coldstart serves these):
    - "gnn": the GNN's embedding; a donor's times `weight`, a nonprofit's as it is;
    - "gifts": a donor's distinct gifts (a 0/1 row over the nonprofits) times `matrix`
      (nonprofits, width): what a filter of the donation graph makes of a donor;
    - "constant": `vector` for every donor.
    A new nonprofit has no donations, so outside "gnn" its columns are zeros, as they are for a
    training nonprofit without donations in each of these families.
    """

    kind: str
    width: int
    weight: float = 1.0
    matrix: np.ndarray | None = None
    vector: np.ndarray | None = None


def gnn_segments(dim: int) -> tuple[Segment, ...]:
    return (Segment("gnn", dim),)


@dataclass(frozen=True)
class Candidate:
    name: str
    donors: np.ndarray  # (donors, dim) float32
    nonprofits: np.ndarray  # (nonprofits, dim) float32
    seconds: float  # to fit it (the GNN's: its training)
    # How a new donor or nonprofit gets its columns (Segment); None: the GNN's, whole.
    segments: tuple[Segment, ...] | None = None

    def cold_start(self) -> tuple[Segment, ...]:
        return self.segments or gnn_segments(int(self.donors.shape[1]))


def _f32(*arrays: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]


def popularity_candidate(popularity: np.ndarray, num_donors: int) -> Candidate:
    donors, nonprofits = _f32(np.ones((num_donors, 1)), np.asarray(popularity)[:, None])
    constant = Segment("constant", 1, vector=np.ones(1, np.float32))
    return Candidate("popularity", donors, nonprofits, 0.0, (constant,))


def bpr_mf_candidate(
    split: Split, num_donors: int, num_nonprofits: int, *, dim: int, epochs: int, seed: int
) -> Candidate:
    began = time.monotonic()
    # A batch of about a tenth of the nonprofits (at least 1024): how often a nonprofit recurs
    # in a batch, and so the size of its summed step, stays what it is at 10k nonprofits (where
    # 1024 was tuned), and at 100k nonprofits an epoch is 10x fewer Python-level batches.
    mf = bpr_mf(
        split.train_pairs.stacked(), num_donors, num_nonprofits, dim=dim, epochs=epochs,
        seed=seed, batch_size=max(1024, num_nonprofits // 10),
    )
    donors, nonprofits = _f32(
        np.hstack([mf.users, np.ones((num_donors, 1))]),
        np.hstack([mf.items, mf.item_bias[:, None]]),
    )
    # A donor without training pairs has a zero vector (evaluate.bpr_mf) and the constant 1
    # against the item bias: the learned popularity order.
    constant = np.zeros(donors.shape[1], np.float32)
    constant[-1] = 1.0
    segments = (Segment("constant", len(constant), vector=constant),)
    return Candidate("bpr_mf", donors, nonprofits, time.monotonic() - began, segments)


def train_matrix(split: Split, num_donors: int, num_nonprofits: int) -> sp.csr_matrix:
    pairs = split.train_pairs
    ones = np.ones(len(pairs), dtype=np.float32)
    return sp.csr_matrix((ones, (pairs.donor, pairs.nonprofit)), shape=(num_donors, num_nonprofits))


def gf_cf_candidate(
    train: sp.csr_matrix, *, rank: int, alpha: float = 0.3, seed: int = 0
) -> Candidate:
    """GF-CF on the donor -> nonprofit graph as a rank-`rank` factorisation (module docstring)."""
    began = time.monotonic()
    spec = spectral(train, rank, seed=seed, randomized=True)
    v = spec.vt.T  # (nonprofits, k)
    # A donor's columns are its 0/1 training row times this: the same map serves new donors.
    (projection,) = _f32(
        np.hstack([v * spec.singular_values**2, alpha * v * spec.item_norm[:, None]])
    )
    donors, nonprofits = _f32(train @ projection, np.hstack([v, v * spec.item_denorm[:, None]]))
    segments = (Segment("gifts", projection.shape[1], matrix=projection),)
    return Candidate("gf_cf", donors, nonprofits, time.monotonic() - began, segments)


def combined(first: Candidate, second: Candidate, seed: int = 0) -> Candidate:
    """Equal weights after dividing each by the deviation of its scores (over random pairs)."""
    rng = np.random.default_rng(seed)
    donors = rng.integers(0, len(first.donors), 4096)
    nonprofits = rng.integers(0, len(first.nonprofits), 4096)

    def deviation(c: Candidate) -> float:
        spread = float(np.std(np.sum(c.donors[donors] * c.nonprofits[nonprofits], axis=1)))
        return spread if spread > 0 else 1.0

    a, b = deviation(first), deviation(second)
    joined_donors, joined_nonprofits = _f32(
        np.hstack([first.donors / a, second.donors / b]),
        np.hstack([first.nonprofits, second.nonprofits]),
    )
    return Candidate(
        f"{first.name}+{second.name}",
        joined_donors,
        joined_nonprofits,
        first.seconds + second.seconds,
        _scaled(first.cold_start(), 1 / a) + _scaled(second.cold_start(), 1 / b),
    )


def _scaled(segments: tuple[Segment, ...], factor: float) -> tuple[Segment, ...]:
    """The segments of donor columns multiplied by `factor` (nonprofit columns unchanged)."""
    return tuple(
        replace(
            s,
            weight=s.weight * factor,
            matrix=None if s.matrix is None else (s.matrix * factor).astype(np.float32),
            vector=None if s.vector is None else (s.vector * factor).astype(np.float32),
        )
        for s in segments
    )


def _timed(phases: Phases | None, name: str) -> AbstractContextManager[None]:
    return nullcontext() if phases is None else phases.phase(name)


def all_candidates(
    gnn: Candidate,
    split: Split,
    num_donors: int,
    num_nonprofits: int,
    config: TrainConfig,
    phases: Phases | None = None,
) -> list[Candidate]:
    """The GNN and every challenger, fitted on the split's training graph with `config`'s sizes.

    Args:
        gnn: the trained GNN's embeddings, the incumbent.
        split, num_donors, num_nonprofits: the training graph and its sizes.
        config: ranks, epochs and seed of the challengers.
        phases: when given, each fit's wall time and memory (graph_model.phases).
    Returns:
        GNN, GF-CF, GNN+GF-CF, BPR-MF and popularity, in that order.
    """
    with _timed(phases, "candidate gf_cf"):
        gf_cf = gf_cf_candidate(
            train_matrix(split, num_donors, num_nonprofits), rank=config.gf_cf_rank,
            seed=config.seed,
        )
    with _timed(phases, "candidate gnn+gf_cf"):
        mix = combined(gnn, gf_cf, config.seed)
    with _timed(phases, "candidate bpr_mf"):
        mf = bpr_mf_candidate(split, num_donors, num_nonprofits, dim=config.embedding_dim,
                              epochs=config.mf_epochs, seed=config.seed)
    with _timed(phases, "candidate popularity"):
        popular = popularity_candidate(split.popularity(num_nonprofits), num_donors)
    return [gnn, gf_cf, mix, mf, popular]


def evaluate_candidates(
    candidates: list[Candidate],
    split: Split,
    num_nonprofits: int,
    *,
    k: int,
    sample: int,
    seed: int,
    phases: Phases | None = None,
) -> dict[str, Evaluation]:
    popularity = split.popularity(num_nonprofits)
    seen = split.train_pairs.stacked()
    evaluations = {}
    for c in candidates:
        with _timed(phases, f"evaluate {c.name}"):
            evaluations[c.name] = evaluate_scorer(
                embedding_scorer(c.donors, c.nonprofits),
                split.test_pairs,
                seen,
                num_nonprofits,
                k=k,
                popularity=popularity,
                sample=sample,
                seed=seed,
            )
    return evaluations


def choose(evaluations: dict[str, Evaluation], k: int) -> tuple[str, str]:
    """(the candidate to serve, why): see the module docstring for the rule."""
    recall, ndcg = f"recall@{k}", f"ndcg@{k}"
    if INCUMBENT not in evaluations:
        raise ValueError(f"no {INCUMBENT} among the candidates")
    gnn = evaluations[INCUMBENT]
    ceiling = (gnn.ci[recall][1], gnn.ci[ndcg][1])
    better = {
        name: e.recall[k - 1] + e.ndcg
        for name, e in evaluations.items()
        if name != INCUMBENT and e.recall[k - 1] > ceiling[0] and e.ndcg > ceiling[1]
    }
    if not better:
        return INCUMBENT, (
            f"no candidate beats the GNN's 95% upper bounds (Recall@{k} {ceiling[0]:.4f}, "
            f"NDCG@{k} {ceiling[1]:.4f}) on both"
        )
    winner = max(better, key=lambda name: better[name])
    return winner, (
        f"{winner} beats the GNN's 95% upper bounds on both Recall@{k} "
        f"({evaluations[winner].recall[k - 1]:.4f} > {ceiling[0]:.4f}) and NDCG@{k} "
        f"({evaluations[winner].ndcg:.4f} > {ceiling[1]:.4f})"
    )


def table(
    candidates: list[Candidate], evaluations: dict[str, Evaluation], k: int
) -> list[dict[str, Any]]:
    """One row per candidate for metrics.json and the docs."""
    rows = []
    for c in candidates:
        e = evaluations[c.name]
        rows.append(
            {
                "name": c.name,
                f"recall@{k}": e.recall[k - 1],
                f"ndcg@{k}": e.ndcg,
                "mrr": e.mrr,
                f"coverage@{k}": e.coverage,
                "confidence": e.confidence(),
                "donors": e.users,
                "dim": int(c.donors.shape[1]),
                "fit_s": round(c.seconds, 2),
            }
        )
    return rows
