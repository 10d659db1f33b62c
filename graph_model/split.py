"""Temporal train/test split of donations (TF-free)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graph_model.snapshot import Donations


@dataclass(frozen=True)
class TrainPairs:
    """Distinct (donor, nonprofit) pairs of the training donations, sorted."""

    donor: np.ndarray
    nonprofit: np.ndarray

    def __len__(self) -> int:
        return len(self.donor)


@dataclass(frozen=True)
class Split:
    cutoff_ts: int  # train: ts < cutoff_ts, test: ts >= cutoff_ts
    train: Donations
    train_pairs: TrainPairs
    test_pairs: np.ndarray  # (pairs, 2): donor, nonprofit; new pairs only, see temporal_split


def _pair_keys(donor: np.ndarray, nonprofit: np.ndarray, num_nonprofits: int) -> np.ndarray:
    return donor.astype(np.int64) * num_nonprofits + nonprofit


def train_pairs(donations: Donations, num_nonprofits: int) -> TrainPairs:
    keys = np.unique(_pair_keys(donations.donor, donations.nonprofit, num_nonprofits))
    return TrainPairs(keys // num_nonprofits, keys % num_nonprofits)


def temporal_split(donations: Donations, num_nonprofits: int, holdout_fraction: float) -> Split:
    """Train on donations before the (1 - holdout_fraction) time quantile, test on the rest.

    Test pairs are what a recommender can be asked to find: distinct pairs whose donor and
    nonprofit both appear in training (we cannot rank for nodes we never saw give or receive)
    and that are not already training pairs (those are excluded from rankings anyway).
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    cutoff = int(np.quantile(donations.ts, 1.0 - holdout_fraction, method="higher"))
    is_train = donations.ts < cutoff
    train, test = donations.select(is_train), donations.select(~is_train)
    if len(train) == 0:
        raise ValueError("no donations before the split time; too few distinct timestamps")
    pairs = train_pairs(train, num_nonprofits)
    keys = np.unique(_pair_keys(test.donor, test.nonprofit, num_nonprofits))
    donor, nonprofit = keys // num_nonprofits, keys % num_nonprofits
    keep = (
        np.isin(donor, train.donor)
        & np.isin(nonprofit, train.nonprofit)
        & ~np.isin(keys, _pair_keys(pairs.donor, pairs.nonprofit, num_nonprofits))
    )
    return Split(
        cutoff_ts=cutoff,
        train=train,
        train_pairs=pairs,
        test_pairs=np.stack([donor[keep], nonprofit[keep]], axis=1),
    )
