"""Training-free graph filters (GF-CF, Shen et al., CIKM 2021) and popularity.

With R the binary user x item train matrix and R~ = D_u^-1/2 R D_i^-1/2 its normalised form,
GF-CF scores a user's row r as

    r R~^T R~  +  alpha * r D_i^-1/2 V_k V_k^T D_i^1/2

the linear filter (normalised item-item propagation) plus the ideal low-pass filter built from the
top-k right singular vectors V_k of R~ (k = 256 and alpha = 0.3 in the paper for Gowalla).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds
from sklearn.utils.extmath import randomized_svd


def _power(degrees: np.ndarray, exponent: float) -> np.ndarray:
    """degrees^exponent, 0 where a degree is 0 (a user or item without train interactions)."""
    out = np.zeros_like(degrees, dtype=np.float64)
    positive = degrees > 0
    out[positive] = degrees[positive] ** exponent
    return out


@dataclass(frozen=True)
class Spectral:
    """The normalised graph and its top singular components (shared by the filters and model)."""

    norm: sp.csr_matrix  # R~ = D_u^-e R D_i^-e, users x items
    exponent: float  # e
    item_degree: np.ndarray  # D_i: train interactions per item
    singular_values: np.ndarray  # descending
    vt: np.ndarray  # (k, items), rows in the order of singular_values

    @property
    def item_norm(self) -> np.ndarray:
        """D_i^-e (0 for items without train interactions)."""
        return _power(self.item_degree, -self.exponent).astype(np.float32)

    @property
    def item_denorm(self) -> np.ndarray:
        """D_i^e."""
        return _power(self.item_degree, self.exponent).astype(np.float32)


def spectral(
    train: sp.csr_matrix, k: int, seed: int = 0, exponent: float = 0.5, randomized: bool = False
) -> Spectral:
    """Normalise the train graph and take its top-k singular triplets (truncated SVD).

    ARPACK (`svds`) for the few hundred components of GF-CF; a randomized SVD (Halko et al.,
    scikit-learn's) for more, where ARPACK's restarts get slow.
    """
    item_degree = np.asarray(train.sum(axis=0)).ravel()
    norm = sp.csr_matrix(
        sp.diags(_power(np.asarray(train.sum(axis=1)).ravel(), -exponent).astype(np.float32))
        @ train
        @ sp.diags(_power(item_degree, -exponent).astype(np.float32))
    )
    k = min(k, min(norm.shape) - 1)
    if randomized:
        _, values, vt = randomized_svd(
            norm, k, n_oversamples=min(100, min(norm.shape) - k), n_iter=4, random_state=seed
        )
    else:
        # svds' ARPACK start vector is seeded so that runs are repeatable.
        v0 = np.random.default_rng(seed).random(min(norm.shape))
        _, values, vt = svds(norm.astype(np.float64), k=k, v0=v0)
    order = np.argsort(-values)
    return Spectral(
        norm=norm,
        exponent=exponent,
        item_degree=item_degree,
        singular_values=values[order].astype(np.float32),
        vt=np.ascontiguousarray(vt[order], dtype=np.float32),
    )


def propagate(spec: Spectral, rows: sp.csr_matrix, hops: int) -> list[np.ndarray]:
    """[r P, r P^2, ...] up to P^hops for each row r of `rows` (users x items), with
    P = R~^T R~ (item x item).

    P itself is never formed (42M non-zeros on Gowalla, far denser than R~): each hop is two
    products with the sparse R~ on a dense items x users block, 2 x nnz(R~) multiply-adds per
    user and hop.
    """
    norm = spec.norm
    block = np.ascontiguousarray(rows.toarray(), dtype=np.float32).T  # items x users
    powers = []
    for _ in range(hops):
        block = np.ascontiguousarray(norm.T @ (norm @ block))
        powers.append(block.T)
    return powers


class GFCF:
    """GF-CF: linear filter plus alpha times the ideal low-pass filter."""

    def __init__(self, train: sp.csr_matrix, spec: Spectral, alpha: float = 0.3) -> None:
        self.train = train
        self.spec = spec
        self.alpha = alpha

    def linear(self, users: np.ndarray) -> np.ndarray:
        """r R~^T R~ for each user."""
        return propagate(self.spec, self.train[users], hops=1)[0]

    def ideal(self, users: np.ndarray) -> np.ndarray:
        """r D_i^-1/2 V_k V_k^T D_i^1/2 for each user."""
        spec = self.spec
        projected = (self.train[users] @ sp.diags(spec.item_norm)) @ spec.vt.T
        return (np.asarray(projected, np.float32) @ spec.vt) * spec.item_denorm

    def __call__(self, users: np.ndarray) -> np.ndarray:
        return self.linear(users) + self.alpha * self.ideal(users)


class Popularity:
    """Every user gets the items ranked by their number of train interactions."""

    def __init__(self, train: sp.csr_matrix) -> None:
        self.counts = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()

    def __call__(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))
