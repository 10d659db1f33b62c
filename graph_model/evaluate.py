"""Ranking metrics for link prediction (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankingMetrics:
    recall: float
    ndcg: float
    users: int  # users with at least one relevant item, over which the means are taken


def ranking_metrics(
    scores: np.ndarray, relevant: np.ndarray, exclude: np.ndarray, k: int
) -> RankingMetrics:
    """Recall@k and NDCG@k with binary relevance over a full ranking of all items.

    scores: (users, items), higher is better. relevant, exclude: (pairs, 2) of (user, item).
    Excluded items (e.g. a donor's training nonprofits) are removed from the user's ranking.
    Recall@k = hits in top k / number of relevant items; NDCG@k = DCG / ideal DCG with gains
    1 / log2(rank + 1). Ties break towards the lower item index, so results are deterministic.
    """
    users, row = np.unique(relevant[:, 0], return_inverse=True)
    if len(users) == 0:
        return RankingMetrics(recall=0.0, ndcg=0.0, users=0)
    num_items = scores.shape[1]
    user_scores = np.array(scores[users], dtype=np.float64)
    is_relevant = np.zeros_like(user_scores, dtype=bool)
    is_relevant[row, relevant[:, 1]] = True
    position = np.searchsorted(users, exclude[:, 0])
    known = (position < len(users)) & (users[np.minimum(position, len(users) - 1)] == exclude[:, 0])
    user_scores[position[known], exclude[known, 1]] = -np.inf
    is_relevant[position[known], exclude[known, 1]] = False
    top = np.argsort(-user_scores, axis=1, kind="stable")[:, : min(k, num_items)]
    hits = np.take_along_axis(is_relevant, top, axis=1)
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    num_relevant = np.bincount(row)
    ideal = np.cumsum(discounts)[np.minimum(num_relevant, top.shape[1]) - 1]
    return RankingMetrics(
        recall=float(np.mean(hits.sum(axis=1) / num_relevant)),
        ndcg=float(np.mean((hits * discounts).sum(axis=1) / ideal)),
        users=len(users),
    )
