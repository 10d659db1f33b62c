"""Calibrated match probabilities: Platt scaling fitted on the holdout (numpy only, TF-free).

The model's scores are unnormalised dot products; the API used to show their per-donor min-max
rescaling as a "probability", which reads 1.0 for every donor's first match. What a donor can use
instead is the chance of the event the holdout records: that the donor gives to the nonprofit for
the first time within the holdout period (the last `holdout_fraction` of the history). Platt
scaling, p = sigmoid(a * score + b), is fitted on that event for a seeded sample of test donors
and measured (ECE) on a disjoint sample, so the reported error is the served fit's.

Which pairs: each donor's top `top` nonprofits (what the API shows, where the calibration must
be right) plus `negatives` nonprofits drawn uniformly from the rest, weighted by how many of the
rest each stands for, so that the fit also covers the long tail an impact-weighted page can reach
and the base rate stays that of all pairs. Platt rather than isotonic regression: two numbers,
monotone in the score (the ranking and the probabilities never disagree) and smooth, where
isotonic steps would give tied probabilities to neighbouring matches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from graph_model.evaluate import writable_scores
from graph_model.ranking import top_k

Scorer = Callable[[np.ndarray], np.ndarray]  # user indices -> (len(users), items) scores
_CHUNK_CELLS = 1 << 24


@dataclass(frozen=True)
class Platt:
    """p = sigmoid(slope * score + intercept), score transformed by `feature` first."""

    slope: float
    intercept: float
    feature: str = "score"  # "score": the raw score; "log1p": log(1 + score) (counts)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        x = np.asarray(scores, dtype=np.float64)
        if self.feature == "log1p":
            x = np.log1p(np.maximum(x, 0.0))
        z = self.slope * x + self.intercept
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow

    def to_json(self) -> dict[str, float | str]:
        return {"slope": self.slope, "intercept": self.intercept, "feature": self.feature}

    @classmethod
    def from_json(cls, value: dict) -> Platt:
        return cls(float(value["slope"]), float(value["intercept"]), str(value["feature"]))


def fit_platt(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, feature: str = "score"
) -> Platt:
    """Weighted logistic regression of y on one feature by Newton's method (a small ridge keeps
    it finite when the classes separate)."""
    x = np.asarray(x, dtype=np.float64)
    raw = np.log1p(np.maximum(x, 0.0)) if feature == "log1p" else x
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if weight is None else np.asarray(weight, dtype=np.float64)
    # Standardise for a well-conditioned Newton step, then map the coefficients back.
    centre = float(np.average(raw, weights=w)) if w.sum() > 0 else 0.0
    scale = float(np.sqrt(np.average((raw - centre) ** 2, weights=w))) if w.sum() > 0 else 1.0
    scale = scale if scale > 0 else 1.0
    z = (raw - centre) / scale
    design = np.stack([z, np.ones_like(z)], axis=1)
    rate = float(np.average(y, weights=w)) if w.sum() > 0 else 0.5
    rate = min(max(rate, 1e-9), 1 - 1e-9)
    theta = np.array([0.0, np.log(rate / (1 - rate))])
    ridge = 1e-6 * w.sum()
    for _ in range(100):
        p = 0.5 * (1.0 + np.tanh(0.5 * (design @ theta)))
        gradient = design.T @ (w * (y - p)) - ridge * np.array([theta[0], 0.0])
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + ridge * np.diag([1.0, 0.0])
        step = np.linalg.solve(hessian + 1e-12 * np.eye(2), gradient)
        theta = theta + step
        if np.abs(step).max() < 1e-10:
            break
    slope = theta[0] / scale
    return Platt(float(slope), float(theta[1] - slope * centre), feature)


def expected_calibration_error(
    p: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, bins: int = 10
) -> float:
    """ECE over `bins` equal-mass bins of the predictions: sum over bins of the bin's share of
    the weight times |mean prediction - observed rate|. Equal-mass rather than equal-width bins:
    match probabilities crowd near 0, where equal-width bins would put nearly all pairs in one."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones_like(p) if weight is None else np.asarray(weight, dtype=np.float64)
    if len(p) == 0 or w.sum() <= 0:
        return 0.0
    order = np.argsort(p, kind="stable")
    p, y, w = p[order], y[order], w[order]
    edges = np.searchsorted(np.cumsum(w) / w.sum(), np.linspace(0, 1, bins + 1)[1:-1])
    error = 0.0
    for part in np.split(np.arange(len(p)), edges):
        if len(part) == 0 or w[part].sum() <= 0:
            continue
        gap = np.average(p[part], weights=w[part]) - np.average(y[part], weights=w[part])
        error += w[part].sum() / w.sum() * abs(gap)
    return float(error)


@dataclass(frozen=True)
class Pairs:
    """Scored (donor, nonprofit) pairs with their holdout label and sampling weight."""

    score: np.ndarray
    label: np.ndarray
    weight: np.ndarray
    in_top: np.ndarray  # the pair is among the donor's top `k` (what a first page shows)
    relative: np.ndarray  # the per-donor min-max rescaling the API showed before


def holdout_pairs(
    scorer: Scorer,
    users: np.ndarray,
    relevant: np.ndarray,
    exclude: np.ndarray,
    num_items: int,
    *,
    top: int = 50,
    k: int = 20,
    negatives: int = 50,
    seed: int = 0,
) -> Pairs:
    """The calibration pairs of `users` (see the module docstring), scored a chunk at a time."""
    rng = np.random.default_rng(seed)
    relevant, exclude = np.asarray(relevant).reshape(-1, 2), np.asarray(exclude).reshape(-1, 2)
    relevant = relevant[np.isin(relevant[:, 0], users)]
    exclude = exclude[np.isin(exclude[:, 0], users)]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in ("score", "label", "weight", "top", "rel")}
    rows = max(1, min(len(users), _CHUNK_CELLS // max(1, num_items)))
    # Sorted pair keys (user * num_items + item): labels and exclusions are looked up as index
    # lists; only the scores are a full (chunk, items) block, passed over as few times as we can.
    relevant_keys = np.unique(relevant[:, 0] * num_items + relevant[:, 1])
    for start in range(0, len(users), rows):
        chunk = users[start : start + rows]
        n = len(chunk)
        scores = writable_scores(scorer(chunk))
        where = np.searchsorted(chunk, exclude[:, 0])
        mine = (where < n) & (chunk[np.minimum(where, n - 1)] == exclude[:, 0])
        excluded_rows, excluded_items = where[mine], exclude[mine, 1]
        # The bounds of each row's finite scores in two plain reductions: excluded scores are
        # +inf for the minimum and -inf (as they stay) for the maximum. A row with non-finite
        # scores of its own (never from embeddings) is redone with a mask.
        scores[excluded_rows, excluded_items] = np.inf
        low = scores.min(axis=1).astype(np.float64)
        scores[excluded_rows, excluded_items] = -np.inf
        high = scores.max(axis=1).astype(np.float64)
        finite = np.isfinite(scores)
        finite_count = np.count_nonzero(finite, axis=1)
        for row in np.flatnonzero(np.isnan(low) | (low == -np.inf) | ~(high < np.inf)):
            values = scores[row][finite[row]]
            low[row] = values.min() if len(values) else np.inf
            high[row] = values.max() if len(values) else -np.inf
        del finite
        span = high - low
        best = top_k(scores, top)  # (n, top), -1 past a row's finite scores
        row_of, position = np.divmod(np.arange(best.size), best.shape[1])
        ok = best.ravel() >= 0
        chosen_keys = np.unique(row_of[ok] * num_items + best.ravel()[ok])
        # Negatives: uniform draws over all nonprofits, kept where they fall in the rest (finite
        # and outside the top): uniform over the rest, each standing for rest / kept of it.
        draws = rng.integers(0, num_items, (n, negatives))
        draw_rows = np.repeat(np.arange(n), negatives)
        kept = np.isfinite(scores[draw_rows, draws.ravel()]) & ~np.isin(
            draw_rows * num_items + draws.ravel(), chosen_keys
        )
        per_row = np.bincount(draw_rows[kept], minlength=n)
        in_top = np.bincount(row_of[ok], minlength=n)
        stands_for = (finite_count - in_top) / np.maximum(per_row, 1)
        item_rows = np.concatenate([row_of[ok], draw_rows[kept]])
        items = np.concatenate([best.ravel()[ok], draws.ravel()[kept]])
        values = scores[item_rows, items].astype(np.float64)
        parts["score"].append(values)
        parts["label"].append(np.isin(chunk[item_rows] * num_items + items, relevant_keys))
        parts["weight"].append(np.concatenate([np.ones(ok.sum()), stands_for[draw_rows[kept]]]))
        parts["top"].append(np.concatenate([position[ok] < k, np.zeros(kept.sum(), bool)]))
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = (values - low[item_rows]) / span[item_rows]
        parts["rel"].append(np.where(span[item_rows] > 0, relative, 1.0))
    joined = {
        name: np.concatenate(values) if values else np.zeros(0) for name, values in parts.items()
    }
    return Pairs(
        joined["score"],
        joined["label"].astype(bool),
        joined["weight"],
        joined["top"].astype(bool),
        joined["rel"],
    )


def calibrate(
    scorer: Scorer,
    relevant: np.ndarray,
    exclude: np.ndarray,
    num_items: int,
    *,
    donors: int = 20_000,
    k: int = 20,
    seed: int = 0,
    feature: str = "score",
) -> tuple[Platt, dict[str, float]]:
    """Fit Platt scaling on half of a seeded sample of test donors; measure it on the other half.

    Returns the fit and its report: ECE over the top-k pairs (what a first page shows) and over
    all pairs (weighted), both for the calibrated probabilities and for the min-max rescaling
    served before, the observed rate of the top-k pairs, and the donors of each half.
    """
    users = np.unique(np.asarray(relevant).reshape(-1, 2)[:, 0])
    rng = np.random.default_rng(seed)
    users = rng.permutation(users)[: 2 * donors]
    fit_users, check_users = np.sort(users[0::2]), np.sort(users[1::2])
    fitting = holdout_pairs(scorer, fit_users, relevant, exclude, num_items, k=k, seed=seed)
    platt = fit_platt(fitting.score, fitting.label, fitting.weight, feature)
    check = holdout_pairs(scorer, check_users, relevant, exclude, num_items, k=k, seed=seed + 1)
    p = platt(check.score)
    top = check.in_top
    report = {
        f"ece@{k}": expected_calibration_error(p[top], check.label[top]),
        "ece": expected_calibration_error(p, check.label, check.weight),
        f"ece@{k}_minmax": expected_calibration_error(check.relative[top], check.label[top]),
        f"mean_probability@{k}": float(p[top].mean()) if top.any() else 0.0,
        f"hit_rate@{k}": float(check.label[top].mean()) if top.any() else 0.0,
        "fit_donors": len(fit_users),
        "check_donors": len(check_users),
    }
    return platt, report
