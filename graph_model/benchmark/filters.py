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


def _inv_sqrt(degrees: np.ndarray) -> np.ndarray:
    out = np.zeros_like(degrees, dtype=np.float64)
    positive = degrees > 0
    out[positive] = degrees[positive] ** -0.5
    return out


@dataclass(frozen=True)
class Spectral:
    """The normalised graph and its top singular components (shared by the filter and model)."""

    norm: sp.csr_matrix  # R~, users x items
    item_inv_sqrt: np.ndarray  # D_i^-1/2 (0 for items without train interactions)
    item_sqrt: np.ndarray  # D_i^1/2
    singular_values: np.ndarray  # descending
    vt: np.ndarray  # (k, items), rows in the order of singular_values


def spectral(train: sp.csr_matrix, k: int, seed: int = 0) -> Spectral:
    """Normalise the train graph and take its top-k singular triplets (truncated SVD)."""
    user_inv_sqrt = _inv_sqrt(np.asarray(train.sum(axis=1)).ravel())
    item_degrees = np.asarray(train.sum(axis=0)).ravel()
    item_inv_sqrt = _inv_sqrt(item_degrees)
    norm = sp.csr_matrix(
        sp.diags(user_inv_sqrt.astype(np.float32))
        @ train
        @ sp.diags(item_inv_sqrt.astype(np.float32))
    )
    k = min(k, min(norm.shape) - 1)
    # svds' ARPACK start vector is seeded so that runs are repeatable.
    v0 = np.random.default_rng(seed).random(min(norm.shape))
    _, values, vt = svds(norm.astype(np.float64), k=k, v0=v0)
    order = np.argsort(-values)
    return Spectral(
        norm=norm,
        item_inv_sqrt=item_inv_sqrt.astype(np.float32),
        item_sqrt=np.sqrt(item_degrees).astype(np.float32),
        singular_values=values[order].astype(np.float32),
        vt=np.ascontiguousarray(vt[order], dtype=np.float32),
    )


def propagate(
    train: sp.csr_matrix, spec: Spectral, users: np.ndarray, hops: int
) -> list[np.ndarray]:
    """[r P, r P^2, ...] up to P^hops for each user's row r, with P = R~^T R~ (item x item).

    P itself is never formed (42M non-zeros on Gowalla, far denser than R~): each hop is two
    products with the sparse R~ on a dense items x users block, 2 x nnz(R~) multiply-adds per
    user and hop.
    """
    norm = spec.norm
    block = np.ascontiguousarray(train[users].toarray().T)  # items x users
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
        return propagate(self.train, self.spec, users, hops=1)[0]

    def ideal(self, users: np.ndarray) -> np.ndarray:
        """r D_i^-1/2 V_k V_k^T D_i^1/2 for each user."""
        spec = self.spec
        projected = (self.train[users] @ sp.diags(spec.item_inv_sqrt)) @ spec.vt.T
        return (np.asarray(projected, np.float32) @ spec.vt) * spec.item_sqrt

    def __call__(self, users: np.ndarray) -> np.ndarray:
        return self.linear(users) + self.alpha * self.ideal(users)


class Popularity:
    """Every user gets the items ranked by their number of train interactions."""

    def __init__(self, train: sp.csr_matrix) -> None:
        self.counts = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()

    def __call__(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))
