"""Evaluation at scale: chunked scoring, a seeded sample of test donors, confidence intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graph_model import evaluate
from graph_model.evaluate import (
    embedding_scorer,
    evaluate_scorer,
    evaluate_scores,
    popularity_scores,
    sample_users,
)


def _reference(scores: np.ndarray, relevant: np.ndarray, exclude: np.ndarray, k: int) -> dict:
    """Recall@k, NDCG@k and MRR by a plain full sort per user (ties to the lower index)."""
    recall, ndcg, rr = [], [], []
    excluded = {(int(u), int(i)) for u, i in exclude}
    for user in np.unique(relevant[:, 0]):
        wanted = {int(i) for u, i in relevant if u == user and (int(u), int(i)) not in excluded}
        ranking = sorted(
            (i for i in range(scores.shape[1]) if (int(user), i) not in excluded),
            key=lambda i: (-scores[user, i], i),
        )
        hits = [item in wanted for item in ranking]
        recall.append(sum(hits[:k]) / max(1, len(wanted)))
        dcg = sum(1 / math.log2(r + 2) for r, hit in enumerate(hits[:k]) if hit)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(max(1, len(wanted)), k)))
        ndcg.append(dcg / ideal)
        rr.append(1 / (hits.index(True) + 1) if True in hits else 0.0)
    return {"recall": np.mean(recall), "ndcg": np.mean(ndcg), "mrr": np.mean(rr)}


def _same(a: evaluate.Evaluation, b: evaluate.Evaluation) -> None:
    """Equal up to the order of floating-point sums (chunks add up in another order)."""
    assert (a.k, a.users, a.test_users) == (b.k, b.users, b.test_users)
    assert a.recall == pytest.approx(b.recall)
    for name in ("ndcg", "mrr", "coverage", "popularity_bias"):
        assert getattr(a, name) == pytest.approx(getattr(b, name)), name
    for name, bounds in a.ci.items():
        assert bounds == pytest.approx(b.ci[name]), name


def _problem(seed: int, users: int = 60, items: int = 40) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, (users, items)).astype(np.float64)  # many ties
    relevant = np.unique(rng.integers(0, [users, items], (users * 3, 2)), axis=0)
    exclude = np.unique(rng.integers(0, [users, items], (users * 4, 2)), axis=0)
    return scores, relevant, exclude


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunked_evaluation_matches_a_full_sort(seed: int, monkeypatch) -> None:
    scores, relevant, exclude = _problem(seed)
    expected = _reference(scores, relevant, exclude, k=5)
    # 7 rows of 40 scores per chunk: the 60 users are scored in 9 chunks.
    monkeypatch.setattr(evaluate, "_CHUNK_CELLS", 7 * 40)
    chunked = evaluate_scores(scores, relevant, exclude, k=5, max_k=10)
    monkeypatch.undo()
    whole = evaluate_scores(scores, relevant, exclude, k=5, max_k=10)
    for result in (chunked, whole):
        assert result.recall[4] == pytest.approx(expected["recall"])
        assert result.ndcg == pytest.approx(expected["ndcg"])
        assert result.mrr == pytest.approx(expected["mrr"])
    _same(chunked, whole)


def test_a_sample_covering_every_donor_is_the_full_evaluation() -> None:
    scores, relevant, exclude = _problem(3)
    popularity = np.arange(40)
    full = evaluate_scores(scores, relevant, exclude, k=5, popularity=popularity)
    covering = evaluate_scores(scores, relevant, exclude, k=5, popularity=popularity, sample=1000)
    assert covering == full
    assert full.users == full.test_users == len(np.unique(relevant[:, 0]))


def test_a_sample_is_seeded_and_scores_only_its_donors(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    donors, nonprofits = rng.normal(size=(500, 8)), rng.normal(size=(30, 8))
    relevant = np.stack([np.arange(500), rng.integers(0, 30, 500)], axis=1)
    monkeypatch.setattr(evaluate, "_CHUNK_CELLS", 25 * 30)  # 25 donors per chunk
    scored: list[np.ndarray] = []
    scorer = embedding_scorer(donors, nonprofits)

    def recording(rows: np.ndarray) -> np.ndarray:
        scored.append(rows)
        return scorer(rows)

    result = evaluate_scorer(recording, relevant, np.zeros((0, 2), int), 30, k=5, sample=100)
    assert result.users == 100 and result.test_users == 500
    assert max(len(rows) for rows in scored) == 25
    chosen = np.concatenate(scored)
    assert np.array_equal(chosen, sample_users(relevant, 100, seed=0))
    assert len(np.unique(chosen)) == 100
    again = evaluate_scorer(scorer, relevant, np.zeros((0, 2), int), 30, k=5, sample=100)
    assert again == result
    other = evaluate_scorer(scorer, relevant, np.zeros((0, 2), int), 30, k=5, sample=100, seed=1)
    assert not np.array_equal(sample_users(relevant, 100, 1), chosen)
    assert other.users == 100
    # The sample's estimate is close to the evaluation of every donor.
    full = evaluate_scorer(scorer, relevant, np.zeros((0, 2), int), 30, k=5)
    low, high = result.ci["recall@5"]
    assert low < full.recall[4] < high


def test_confidence_intervals_bracket_the_population_mean_at_their_level() -> None:
    """95% intervals from samples of 200 of 3,000 donors hold the all-donor figure in about
    95% of seeds (binomially, at least 34 of 40 but for a 1-in-200 chance)."""
    rng = np.random.default_rng(7)
    donors, nonprofits = rng.normal(size=(3000, 4)), rng.normal(size=(50, 4))
    # Each donor's relevant nonprofit: the embedding's favourite half of the time, else random.
    favourite = np.argmax(donors @ nonprofits.T, axis=1)
    noise = rng.integers(0, 50, 3000)
    relevant = np.stack([np.arange(3000), np.where(rng.random(3000) < 0.5, favourite, noise)], 1)
    nothing = np.zeros((0, 2), int)
    scorer = embedding_scorer(donors, nonprofits)
    full = evaluate_scorer(scorer, relevant, nothing, 50, k=10)
    inside = {"recall@10": 0, "ndcg@10": 0, "mrr": 0}
    for seed in range(40):
        sampled = evaluate_scorer(scorer, relevant, nothing, 50, k=10, sample=200, seed=seed)
        figures = {"recall@10": full.recall[9], "ndcg@10": full.ndcg, "mrr": full.mrr}
        for name, value in figures.items():
            low, high = sampled.ci[name]
            inside[name] += low <= value <= high
    assert all(count >= 34 for count in inside.values()), inside
    low, high = full.ci["recall@10"]
    assert low < full.recall[9] < high and high - low > 0


def test_popularity_is_evaluated_without_a_donor_matrix() -> None:
    popularity = np.array([5, 1, 9, 0])
    relevant = np.array([[0, 0], [1, 2], [999_999, 1]])
    result = evaluate_scorer(
        lambda rows: popularity_scores(popularity, len(rows)),
        relevant,
        np.zeros((0, 2), int),
        4,
        k=1,
        max_k=4,
    )
    assert result.users == 3
    assert result.recall[0] == pytest.approx(1 / 3)  # only donor 1's nonprofit 2 is first
