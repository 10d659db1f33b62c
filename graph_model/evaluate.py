"""The evaluation harness: ranking metrics, baselines and the impact sweep (pure numpy, TF-free).

Every model is judged the same way: a (donors, nonprofits) score matrix, a full ranking over all
nonprofits per donor with the donor's training nonprofits excluded, and the same test pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from graph_model.ranking import impact_adjusted, top_k

MAX_K = 50  # longest cut-off of the Recall@K curve
POPULAR_SHARE = 0.01  # "popular" nonprofits: the top 1% by training donations (at least one)


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
    report = evaluate_scores(scores, relevant, exclude, k=k, max_k=k)
    return RankingMetrics(recall=report.recall[k - 1], ndcg=report.ndcg, users=report.users)


Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile: two-sided 95% intervals
_CHUNK_CELLS = 1 << 24  # scores held at once (float64: 128 MiB): rows per chunk = this / items
Scorer = Callable[[np.ndarray], np.ndarray]  # user indices -> (len(users), items) scores


@dataclass(frozen=True)
class Evaluation:
    """One model on one slice. recall[i] is Recall@(i + 1) for i < max_k.

    The means are over `users` test users: all of them, or a seeded sample of them when there
    were more than the evaluation's `sample` (`test_users` says how many there were). `ci` holds
    two-sided 95% confidence intervals of the per-user means (normal approximation over users:
    with thousands of users the mean of a bounded per-user metric is close to normal, and the
    interval costs nothing beyond the per-user values; tests check it against resampling).
    """

    k: int
    users: int
    recall: list[float]
    ndcg: float  # NDCG@k
    mrr: float  # mean reciprocal rank of the first relevant item in the full ranking
    coverage: float  # share of all nonprofits that appear in some top-k list
    popularity_bias: float  # share of top-k list entries that are top-1% popular nonprofits
    test_users: int = -1  # users with a relevant pair before sampling (-1: same as users)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {
            f"recall@{self.k}": self.recall[self.k - 1],
            f"ndcg@{self.k}": self.ndcg,
            "mrr": self.mrr,
            f"coverage@{self.k}": self.coverage,
            f"popularity_bias@{self.k}": self.popularity_bias,
            "users": self.users,
        }

    def confidence(self) -> dict[str, dict[str, float]]:
        """{metric: {"low", "high"}} of the 95% intervals, for metrics.json and reports."""
        return {name: {"low": low, "high": high} for name, (low, high) in self.ci.items()}


def _excluded_mask(users: np.ndarray, exclude: np.ndarray, num_items: int) -> np.ndarray:
    mask = np.zeros((len(users), num_items), dtype=bool)
    position = np.searchsorted(users, exclude[:, 0])
    known = (position < len(users)) & (users[np.minimum(position, len(users) - 1)] == exclude[:, 0])
    mask[position[known], exclude[known, 1]] = True
    return mask


def popular_items(popularity: np.ndarray, share: float = POPULAR_SHARE) -> np.ndarray:
    """Boolean mask of the `share` most popular items (at least one; ties to the lower index)."""
    count = max(1, round(len(popularity) * share))
    mask = np.zeros(len(popularity), dtype=bool)
    mask[np.argsort(-np.asarray(popularity), kind="stable")[:count]] = True
    return mask


def sample_users(relevant: np.ndarray, sample: int | None, seed: int) -> np.ndarray:
    """The users with a relevant pair, sorted; a seeded sample of `sample` of them when there are
    more. The same seed gives the same users, so evaluations during training are comparable."""
    users = np.unique(np.asarray(relevant).reshape(-1, 2)[:, 0])
    if sample is not None and len(users) > sample:
        users = np.sort(np.random.default_rng(seed).choice(users, sample, replace=False))
    return users


def interval(values: np.ndarray) -> tuple[float, float]:
    """Two-sided 95% normal-approximation interval of the mean of per-user `values`."""
    n = len(values)
    if n == 0:
        return (0.0, 0.0)
    mean = float(values.mean())
    half = Z_95 * float(values.std(ddof=1)) / np.sqrt(n) if n > 1 else 0.0
    return (mean - half, mean + half)


def _pairs_of(users: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The pairs whose user is in `users` (sorted), sorted by user."""
    pairs = pairs[np.isin(pairs[:, 0], users)]
    return pairs[np.argsort(pairs[:, 0], kind="stable")]


def writable_scores(scores: np.ndarray) -> np.ndarray:
    """A chunk's scores as an array this evaluation may overwrite: a fresh float32 or float64
    array (what embedding products return) is used as it is; anything else is copied to float64.
    float32 is kept rather than widened: widening is exact, so rankings and ties are the same,
    and every pass over the block costs half."""
    scores = np.asarray(scores)
    fresh = scores.base is None and scores.flags.writeable and scores.flags.c_contiguous
    if fresh and scores.dtype in (np.float32, np.float64):
        return scores
    return np.array(scores, dtype=np.float64)


def evaluate_scorer(
    scorer: Scorer,
    relevant: np.ndarray,
    exclude: np.ndarray,
    num_items: int,
    *,
    k: int = 20,
    max_k: int = MAX_K,
    popularity: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> Evaluation:
    """Full-ranking metrics of a model given as `scorer(users) -> (users, items) scores`.

    Never holds more than a chunk of users x items: users are scored a chunk at a time
    (`_CHUNK_CELLS` scores), their top max_k found with `top_k`, and the reciprocal rank of the
    first relevant item counted in the same chunk. `sample`: score a seeded sample of that many
    of the users with a relevant pair (all when None or when there are fewer), so that the cost
    does not grow with the number of donors. Everything else as in `evaluate_scores`.
    """
    if not 1 <= k <= max_k:
        raise ValueError(f"k must be within [1, max_k={max_k}], got {k}")
    relevant, exclude = np.asarray(relevant).reshape(-1, 2), np.asarray(exclude).reshape(-1, 2)
    test_users = len(np.unique(relevant[:, 0]))
    users = sample_users(relevant, sample, seed)
    if len(users) == 0:
        return Evaluation(k, 0, [0.0] * max_k, 0.0, 0.0, 0.0, 0.0, test_users)
    relevant, exclude = _pairs_of(users, relevant), _pairs_of(users, exclude)
    popular = popular_items(popularity) if popularity is not None else np.zeros(num_items, bool)
    cut = min(max_k, num_items)
    kk = min(k, cut)
    discounts = 1.0 / np.log2(np.arange(2, cut + 2))
    ideal_at = np.cumsum(discounts)
    hits_at = np.zeros(max_k)
    per_user = {name: np.zeros(len(users)) for name in ("recall", "ndcg", "mrr")}
    bias = 0.0
    listed = np.zeros(num_items, dtype=bool)
    rows = max(1, min(len(users), _CHUNK_CELLS // max(1, num_items)))
    # Pair keys (user * num_items + item), sorted: a chunk's excluded and relevant pairs are
    # handled as index lists, never as (users, items) masks; only the scores are a full block.
    exclude_keys = np.unique(exclude[:, 0] * num_items + exclude[:, 1])
    relevant_keys = np.unique(relevant[:, 0] * num_items + relevant[:, 1])
    for start in range(0, len(users), rows):
        chunk_users = users[start : start + rows]
        n = len(chunk_users)
        user_scores = writable_scores(scorer(chunk_users))
        first, last = chunk_users[0] * num_items, (chunk_users[-1] + 1) * num_items
        ex = exclude_keys[
            np.searchsorted(exclude_keys, first) : np.searchsorted(exclude_keys, last)
        ]
        ex_row = np.searchsorted(chunk_users, ex // num_items)
        user_scores[ex_row, ex % num_items] = -np.inf
        rel = relevant_keys[
            np.searchsorted(relevant_keys, first) : np.searchsorted(relevant_keys, last)
        ]
        rel_row, rel_item = np.searchsorted(chunk_users, rel // num_items), rel % num_items
        if candidates is not None:
            user_scores[:, ~candidates] = -np.inf
            ok = candidates[rel_item]
            rel, rel_row, rel_item = rel[ok], rel_row[ok], rel_item[ok]
        # A relevant pair that is also excluded is neither counted nor found.
        ok = ~np.isin(rel, ex, assume_unique=True)
        rel, rel_row, rel_item = rel[ok], rel_row[ok], rel_item[ok]
        top = top_k(user_scores, cut)  # (n, cut), -1 past a row's last finite score
        valid = top >= 0
        top_keys = chunk_users[:, None] * num_items + np.maximum(top, 0)
        ranked_relevant = np.isin(top_keys, rel) & valid
        num_relevant = np.bincount(rel_row, minlength=n)
        found = num_relevant > 0
        denominator = np.maximum(num_relevant, 1)
        recall_curve = np.cumsum(ranked_relevant, axis=1) / denominator[:, None]
        hits_at[:cut] += recall_curve.sum(axis=0)
        hits_at[cut:] += recall_curve[:, -1].sum()
        ideal = ideal_at[np.minimum(denominator, kk) - 1]
        ndcg = (ranked_relevant[:, :kk] * discounts[:kk]).sum(axis=1) / ideal
        # The full-ranking rank of the best relevant item: items scoring above it, plus those
        # tied with it at a lower index (ties break towards the lower index).
        rel_score = user_scores[rel_row, rel_item]
        order = np.lexsort((rel_item, -rel_score, rel_row))  # per row: best, lowest index first
        firsts = order[np.searchsorted(rel_row[order], np.flatnonzero(found))]
        best_score = np.full(n, -np.inf, dtype=user_scores.dtype)
        best_item = np.zeros(n, dtype=np.int64)
        best_score[rel_row[firsts]] = rel_score[firsts]
        best_item[rel_row[firsts]] = rel_item[firsts]
        above = np.count_nonzero(user_scores > best_score[:, None], axis=1)
        for row in np.flatnonzero(found):
            above[row] += np.count_nonzero(user_scores[row, : best_item[row]] == best_score[row])
        block = slice(start, start + n)
        per_user["recall"][block] = recall_curve[:, kk - 1]
        per_user["ndcg"][block] = ndcg
        per_user["mrr"][block] = np.where(found, 1.0 / (above + 1), 0.0)
        top_k_items, top_k_valid = top[:, :kk], valid[:, :kk]
        listed[top_k_items[top_k_valid]] = True
        # Per donor, so that the figure does not depend on how donors fall into chunks.
        popular_entries = (popular[np.maximum(top_k_items, 0)] & top_k_valid).sum(axis=1)
        bias += float((popular_entries / np.maximum(top_k_valid.sum(axis=1), 1)).sum())
    n = len(users)
    return Evaluation(
        k=k,
        users=n,
        recall=[float(v) / n for v in hits_at],
        ndcg=float(per_user["ndcg"].mean()),
        mrr=float(per_user["mrr"].mean()),
        coverage=float(listed.mean()),
        popularity_bias=bias / n,
        test_users=test_users,
        ci={
            f"recall@{k}": interval(per_user["recall"]),
            f"ndcg@{k}": interval(per_user["ndcg"]),
            "mrr": interval(per_user["mrr"]),
        },
    )


def evaluate_scores(
    scores: np.ndarray,
    relevant: np.ndarray,
    exclude: np.ndarray,
    *,
    k: int = 20,
    max_k: int = MAX_K,
    popularity: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> Evaluation:
    """Full-ranking metrics of one score matrix on one set of relevant pairs.

    scores: (users, items); relevant / exclude: (pairs, 2) of (user, item). Users without a
    relevant pair are not averaged. Ties break towards the lower item index. `popularity`
    (training donations per item) defines the popular items for the popularity bias; without it
    the bias is reported as 0. `candidates` (boolean per item) restricts the ranking to those
    items, e.g. to nonprofits without training donations for the cold-nonprofit slice.
    """
    return evaluate_scorer(
        lambda users: scores[users],
        relevant,
        exclude,
        scores.shape[1],
        k=k,
        max_k=max_k,
        popularity=popularity,
        candidates=candidates,
        sample=sample,
        seed=seed,
    )


def embedding_scorer(users: np.ndarray, items: np.ndarray) -> Scorer:
    """Scores as dot products of user and item embeddings, computed per chunk of users."""
    return lambda rows: users[rows] @ items.T


def popularity_scores(popularity: np.ndarray, num_users: int) -> np.ndarray:
    """The popularity baseline: every donor gets the training donation counts as scores."""
    return np.broadcast_to(np.asarray(popularity, dtype=np.float64), (num_users, len(popularity)))


@dataclass(frozen=True)
class MatrixFactorization:
    users: np.ndarray  # (users, dim)
    items: np.ndarray  # (items, dim)
    item_bias: np.ndarray  # (items,)

    def scores(self) -> np.ndarray:
        return self.users @ self.items.T + self.item_bias[None, :]


def bpr_mf(
    pairs: np.ndarray,
    num_users: int,
    num_items: int,
    *,
    dim: int = 32,
    epochs: int = 30,
    learning_rate: float = 0.05,
    l2: float = 1e-4,
    batch_size: int = 1024,
    seed: int = 0,
) -> MatrixFactorization:
    """BPR matrix factorisation (Rendle et al. 2009) with an item bias, by minibatch SGD.

    The item bias lets a user without training pairs (a zero vector) fall back to a learned
    popularity order rather than to an arbitrary one, which is the fair way to run MF on cold
    donors. numpy only: at these sizes an epoch takes milliseconds and avoids a dependency.
    """
    rng = np.random.default_rng(seed)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    users = rng.normal(0.0, 0.1, (num_users, dim))
    items = rng.normal(0.0, 0.1, (num_items, dim))
    bias = np.zeros(num_items)
    if len(pairs):
        users[~np.isin(np.arange(num_users), pairs[:, 0])] = 0.0  # never trained: no signal
    for _ in range(epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(pairs), batch_size):
            batch = pairs[order[start : start + batch_size]]
            u, i = batch[:, 0], batch[:, 1]
            j = rng.integers(0, num_items, len(batch))
            pu, qi, qj = users[u], items[i], items[j]
            margin = np.sum(pu * (qi - qj), axis=1) + bias[i] - bias[j]
            g = 1.0 / (1.0 + np.exp(np.clip(margin, -30, 30)))  # -d log sigmoid(m) / dm
            np.add.at(users, u, learning_rate * (g[:, None] * (qi - qj) - l2 * pu))
            np.add.at(items, i, learning_rate * (g[:, None] * pu - l2 * qi))
            np.add.at(items, j, learning_rate * (-g[:, None] * pu - l2 * qj))
            np.add.at(bias, i, learning_rate * (g - l2 * bias[i]))
            np.add.at(bias, j, learning_rate * (-g - l2 * bias[j]))
    return MatrixFactorization(users, items, bias)


@dataclass(frozen=True)
class SweepPoint:
    weight: float
    recall: float  # Recall@k of the impact-adjusted ranking
    coverage: float
    underfunded_share: float  # share of top-k list entries that are under-funded nonprofits


def impact_sweep(
    scores: np.ndarray,
    relevant: np.ndarray,
    exclude: np.ndarray,
    impact: np.ndarray,
    underfunded: np.ndarray,
    *,
    weights: Iterable[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    k: int = 20,
) -> list[SweepPoint]:
    """How Recall@k, coverage and the under-funded share move as the impact weight grows."""
    relevant = np.asarray(relevant).reshape(-1, 2)
    users = np.unique(relevant[:, 0])
    base = np.array(scores[users], dtype=np.float64)
    base[_excluded_mask(users, np.asarray(exclude).reshape(-1, 2), base.shape[1])] = -np.inf
    remap = np.searchsorted(users, relevant[:, 0])
    points = []
    for weight in weights:
        adjusted = impact_adjusted(base, impact, weight)
        result = evaluate_scores(
            adjusted, np.stack([remap, relevant[:, 1]], axis=1), _no_pairs(), k=k, max_k=k
        )
        top = top_k(adjusted, k)
        valid = top >= 0
        share = float((underfunded[top] & valid).sum() / max(1, valid.sum()))
        points.append(SweepPoint(float(weight), result.recall[k - 1], result.coverage, share))
    return points


def _no_pairs() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.int64)


def evaluate_models(
    scores: Mapping[str, np.ndarray],
    slices: Mapping[str, np.ndarray],
    exclude: np.ndarray,
    popularity: np.ndarray,
    *,
    k: int = 20,
    candidates: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, Evaluation]]:
    """{model: {slice: Evaluation}}: every model on every slice, in one harness.

    `candidates` optionally maps a slice name to the items its rankings are restricted to.
    """
    candidates = candidates or {}
    return {
        model: {
            name: evaluate_scores(
                matrix, pairs, exclude, k=k, popularity=popularity, candidates=candidates.get(name)
            )
            for name, pairs in slices.items()
        }
        for model, matrix in scores.items()
    }
