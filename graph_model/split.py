"""Train/test splits of donations (TF-free): temporal, plus donors and nonprofits held out whole."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from graph_model.snapshot import Donations, Snapshot


@dataclass(frozen=True)
class TrainPairs:
    """Distinct (donor, nonprofit) pairs of the training donations, sorted."""

    donor: np.ndarray
    nonprofit: np.ndarray

    def __len__(self) -> int:
        return len(self.donor)

    def stacked(self) -> np.ndarray:
        """The pairs as (pairs, 2) donor, nonprofit: what evaluations exclude from rankings."""
        return np.stack([self.donor, self.nonprofit], axis=1)


def _no_pairs() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.int64)


def _no_nodes() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Split:
    cutoff_ts: int  # train: ts < cutoff_ts, test: ts >= cutoff_ts
    train: Donations
    train_pairs: TrainPairs
    test_pairs: np.ndarray  # (pairs, 2): donor, nonprofit; warm new pairs only, see temporal_split
    # Cold-start slices (see cold_start_split): pairs of donors / nonprofits without any training
    # donation, and the nodes held out whole to create them.
    cold_donor_pairs: np.ndarray = field(default_factory=_no_pairs)
    cold_nonprofit_pairs: np.ndarray = field(default_factory=_no_pairs)
    held_out_donors: np.ndarray = field(default_factory=_no_nodes)
    held_out_nonprofits: np.ndarray = field(default_factory=_no_nodes)

    def popularity(self, num_nonprofits: int) -> np.ndarray:
        """Training donations per nonprofit: the popularity baseline's scores, and the strata
        evaluations report recall by."""
        return np.bincount(self.train.nonprofit, minlength=num_nonprofits)


def _pair_keys(donor: np.ndarray, nonprofit: np.ndarray, num_nonprofits: int) -> np.ndarray:
    return donor.astype(np.int64) * num_nonprofits + nonprofit


def _distinct(donations: Donations, num_nonprofits: int) -> np.ndarray:
    keys = np.unique(_pair_keys(donations.donor, donations.nonprofit, num_nonprofits))
    return np.stack([keys // num_nonprofits, keys % num_nonprofits], axis=1).reshape(-1, 2)


def train_pairs(donations: Donations, num_nonprofits: int) -> TrainPairs:
    keys = np.unique(_pair_keys(donations.donor, donations.nonprofit, num_nonprofits))
    return TrainPairs(keys // num_nonprofits, keys % num_nonprofits)


def _cutoff(donations: Donations, holdout_fraction: float) -> int:
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    return int(np.quantile(donations.ts, 1.0 - holdout_fraction, method="higher"))


def temporal_split(donations: Donations, num_nonprofits: int, holdout_fraction: float) -> Split:
    """Train on donations before the (1 - holdout_fraction) time quantile, test on the rest.

    Test pairs are what a recommender can be asked to find: distinct pairs whose donor and
    nonprofit both appear in training (we cannot rank for nodes we never saw give or receive)
    and that are not already training pairs (those are excluded from rankings anyway).
    """
    cutoff = _cutoff(donations, holdout_fraction)
    is_train = donations.ts < cutoff
    train, test = donations.select(is_train), donations.select(~is_train)
    if len(train) == 0:
        raise ValueError("no donations before the split time; too few distinct timestamps")
    pairs = train_pairs(train, num_nonprofits)
    test_pairs = _distinct(test, num_nonprofits)
    donor, nonprofit = test_pairs[:, 0], test_pairs[:, 1]
    keep = (
        np.isin(donor, train.donor)
        & np.isin(nonprofit, train.nonprofit)
        & ~np.isin(
            _pair_keys(donor, nonprofit, num_nonprofits),
            _pair_keys(pairs.donor, pairs.nonprofit, num_nonprofits),
        )
    )
    return Split(cutoff_ts=cutoff, train=train, train_pairs=pairs, test_pairs=test_pairs[keep])


def cold_start_split(
    donations: Donations,
    num_donors: int,
    num_nonprofits: int,
    *,
    holdout_fraction: float,
    cold_donor_fraction: float,
    cold_nonprofit_fraction: float,
    seed: int,
) -> Split:
    """The temporal split, with some donors and nonprofits also held out whole (all their gifts).

    Training keeps the donations before the cutoff between nodes that are not held out. Slices:
    - test_pairs: warm pairs as in `temporal_split` (both ends have training donations);
    - cold_donor_pairs: distinct pairs of donors without any training donation: the held-out
      donors (all their gifts, any time) and donors whose first gift came after the cutoff;
    - cold_nonprofit_pairs: distinct pairs, any time, of a nonprofit without training donations
      (held out, or first funded after the cutoff) with a donor that has training donations.
    Only the snapshot's stated interests and regions describe cold nodes to a model.
    """
    for name, value in (
        ("cold_donor_fraction", cold_donor_fraction),
        ("cold_nonprofit_fraction", cold_nonprofit_fraction),
    ):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    cutoff = _cutoff(donations, holdout_fraction)
    rng = np.random.default_rng(seed)
    held_donors = np.sort(
        rng.choice(num_donors, int(num_donors * cold_donor_fraction), replace=False)
    )
    held_nonprofits = np.sort(
        rng.choice(num_nonprofits, int(num_nonprofits * cold_nonprofit_fraction), replace=False)
    )
    is_train = (
        (donations.ts < cutoff)
        & ~np.isin(donations.donor, held_donors)
        & ~np.isin(donations.nonprofit, held_nonprofits)
    )
    train = donations.select(is_train)
    if len(train) == 0:
        raise ValueError("no training donations left after the cutoff and the holdouts")
    pairs = train_pairs(train, num_nonprofits)
    warm_donor = np.isin(donations.donor, train.donor)
    warm_nonprofit = np.isin(donations.nonprofit, train.nonprofit)
    after = donations.ts >= cutoff
    warm_test = _distinct(donations.select(after & warm_donor & warm_nonprofit), num_nonprofits)
    warm_test = warm_test[
        ~np.isin(
            _pair_keys(warm_test[:, 0], warm_test[:, 1], num_nonprofits),
            _pair_keys(pairs.donor, pairs.nonprofit, num_nonprofits),
        )
    ]
    return Split(
        cutoff_ts=cutoff,
        train=train,
        train_pairs=pairs,
        test_pairs=warm_test,
        cold_donor_pairs=_distinct(donations.select(~warm_donor), num_nonprofits),
        cold_nonprofit_pairs=_distinct(
            donations.select(warm_donor & ~warm_nonprofit), num_nonprofits
        ),
        held_out_donors=held_donors,
        held_out_nonprofits=held_nonprofits,
    )


def sample_donors(
    snapshot: Snapshot, pairs: TrainPairs, count: int, seed: int
) -> tuple[Snapshot, TrainPairs]:
    """The snapshot and training pairs restricted to a seeded uniform sample of `count` donors
    (renumbered in order), every nonprofit, cause and region kept; unchanged when there are no
    more donors than `count`.

    The GNN has no per-donor or per-nonprofit parameters (graph_model.model), so it can learn
    its weights on such a subgraph and then embed the whole graph: a training step then costs
    what a `count`-donor graph costs, whatever the graph's size. Each sampled donor keeps all its
    edges; a nonprofit hears a uniform sample of its donors, whose mean estimates its mean.
    """
    num_donors = len(snapshot.donor_ids)
    if num_donors <= count:
        return snapshot, pairs
    chosen = np.sort(np.random.default_rng(seed).choice(num_donors, count, replace=False))
    remap = np.full(num_donors, -1, dtype=np.int64)
    remap[chosen] = np.arange(count)
    causes = snapshot.donor_causes[remap[snapshot.donor_causes[:, 0]] >= 0]
    donations = snapshot.donations.select(remap[snapshot.donations.donor] >= 0)
    keep = remap[pairs.donor] >= 0
    sampled = replace(
        snapshot,
        donor_ids=[snapshot.donor_ids[i] for i in chosen],
        donor_region=snapshot.donor_region[chosen],
        donor_causes=np.stack([remap[causes[:, 0]], causes[:, 1]], axis=1).reshape(-1, 2),
        donations=Donations(remap[donations.donor], donations.nonprofit, donations.ts),
    )
    # remap is increasing, so the kept pairs stay sorted.
    return sampled, TrainPairs(remap[pairs.donor[keep]], pairs.nonprofit[keep])
