"""Candidate models as embeddings, side by side on one holdout; the rule that picks one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graph_model.benchmark.filters import GFCF, spectral
from graph_model.candidates import (
    Candidate,
    choose,
    combined,
    gf_cf_candidate,
    popularity_candidate,
)
from graph_model.evaluate import Evaluation


def _graph(seed: int = 0) -> sp.csr_matrix:
    """Two communities of 40 donors and 20 nonprofits, most gifts inside one's own."""
    rng = np.random.default_rng(seed)
    donors, nonprofits = np.arange(80), np.arange(40)
    inside = (donors[:, None] // 40) == (nonprofits[None, :] // 20)
    dense = rng.random((80, 40)) < np.where(inside, 0.25, 0.03)
    return sp.csr_matrix(dense.astype(np.float32))


def test_the_graph_filter_as_embeddings_is_gf_cf() -> None:
    """Ideal low-pass part: GF-CF's exactly; linear part: its rank-k truncation, which at the
    full rank less one is GF-CF's up to the smallest component."""
    train = _graph()
    users = np.arange(80)
    rank = 39
    candidate = gf_cf_candidate(train, rank=rank, alpha=0.3, seed=0)
    exact = GFCF(train, spectral(train, rank, seed=0, randomized=True), alpha=0.3)
    ideal = candidate.donors[:, rank:] @ candidate.nonprofits[:, rank:].T
    np.testing.assert_allclose(ideal, 0.3 * exact.ideal(users), rtol=1e-3, atol=1e-4)
    linear = candidate.donors[:, :rank] @ candidate.nonprofits[:, :rank].T
    assert np.corrcoef(linear.ravel(), exact.linear(users).ravel())[0, 1] > 0.999
    assert candidate.donors.dtype == np.float32 and candidate.donors.shape == (80, 2 * rank)


def test_combined_scores_are_the_sum_of_standardised_scores() -> None:
    rng = np.random.default_rng(1)
    a = Candidate("a", rng.normal(size=(50, 3)), rng.normal(size=(30, 3)), 1.0)
    b = Candidate("b", 100 * rng.normal(size=(50, 2)), rng.normal(size=(30, 2)), 2.0)
    both = combined(a, b)
    scores = both.donors @ both.nonprofits.T
    first, second = a.donors @ a.nonprofits.T, b.donors @ b.nonprofits.T
    # Per donor, the combination is first / s_a + second / s_b for two positive constants.
    ratio = np.linalg.lstsq(
        np.stack([first.ravel(), second.ravel()], axis=1), scores.ravel(), rcond=None
    )[0]
    np.testing.assert_allclose(scores, ratio[0] * first + ratio[1] * second, rtol=1e-4, atol=1e-4)
    assert ratio[0] > 0 and ratio[1] > 0
    assert ratio[0] / ratio[1] == pytest.approx(np.std(second) / np.std(first), rel=0.2)
    assert both.name == "a+b" and both.seconds == 3.0


def _evaluation(recall: float, ndcg: float, half: float) -> Evaluation:
    return Evaluation(
        k=2,
        users=100,
        recall=[recall / 2, recall],
        ndcg=ndcg,
        mrr=0.0,
        coverage=0.0,
        popularity_bias=0.0,
        ci={"recall@2": (recall - half, recall + half), "ndcg@2": (ndcg - half, ndcg + half)},
    )


def test_the_gnn_is_kept_unless_beaten_beyond_its_intervals() -> None:
    gnn = _evaluation(0.30, 0.20, 0.02)
    within = {"gnn": gnn, "gf_cf": _evaluation(0.31, 0.21, 0.02)}
    assert choose(within, 2)[0] == "gnn"
    one_metric = {"gnn": gnn, "gf_cf": _evaluation(0.40, 0.21, 0.02)}
    assert choose(one_metric, 2)[0] == "gnn"
    beyond = {
        "gnn": gnn,
        "gf_cf": _evaluation(0.40, 0.30, 0.02),
        "gnn+gf_cf": _evaluation(0.45, 0.31, 0.02),
        "popularity": _evaluation(0.10, 0.05, 0.02),
    }
    winner, reason = choose(beyond, 2)
    assert winner == "gnn+gf_cf" and "0.4500" in reason
    with pytest.raises(ValueError, match="no gnn"):
        choose({"gf_cf": gnn}, 2)


def test_popularity_as_embeddings_ranks_by_training_donations() -> None:
    candidate = popularity_candidate(np.array([3, 9, 0, 4]), num_donors=5)
    scores = candidate.donors @ candidate.nonprofits.T
    assert scores.shape == (5, 4)
    assert (np.argsort(-scores, axis=1) == [1, 3, 0, 2]).all()
