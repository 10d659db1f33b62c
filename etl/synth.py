"""Seeded synthetic donor graph with a planted preference structure.

Donors favour a few causes and nearby nonprofits; donor activity and gift sizes are heavy-tailed;
nonprofits differ in popularity. A model that learns the structure beats popularity ranking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from etl.tables import TABLE_SCHEMAS, Tables

CAUSE_NAMES = (
    "Education", "Health", "Environment", "Animal Welfare", "Arts & Culture", "Housing",
    "Hunger Relief", "Disaster Relief", "Civil Rights", "Youth Development", "Elder Care",
    "Clean Water", "Science & Research", "Veterans", "Refugees", "Mental Health",
)
START_TS = 1_672_531_200  # 2023-01-01 UTC
SPAN_S = 2 * 365 * 24 * 3600

# Strength of the planted structure (log-odds).
CAUSE_AFFINITY = 2.5
DISTANCE_SCALE_DEG = 6.0


@dataclass(frozen=True)
class SynthConfig:
    donors: int = 2000
    nonprofits: int = 200
    causes: int = 12
    regions: int = 10
    donations: int = 30_000
    seed: int = 7

    def __post_init__(self) -> None:
        for name in ("donors", "nonprofits", "causes", "regions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.donations < 0:
            raise ValueError("donations must not be negative")


def generate(config: SynthConfig) -> Tables:
    rng = np.random.default_rng(config.seed)
    # Six decimals survive every store's float round trip.
    region_lat = np.round(rng.uniform(25.0, 49.0, config.regions), 6)
    region_lon = np.round(rng.uniform(-124.0, -67.0, config.regions), 6)
    region_ids = [f"region-{i:03d}" for i in range(config.regions)]
    cause_ids = [f"cause-{i:03d}" for i in range(config.causes)]
    cause_names = [
        CAUSE_NAMES[i % len(CAUSE_NAMES)] + ("" if i < len(CAUSE_NAMES) else f" {i}")
        for i in range(config.causes)
    ]
    cause_weight = _zipf_weights(config.causes, 0.8, rng)

    np_region = rng.integers(0, config.regions, config.nonprofits)
    np_causes = _pick_causes(config.nonprofits, cause_weight, rng)
    np_popularity = rng.lognormal(0.0, 0.8, config.nonprofits)
    donor_region = rng.integers(0, config.regions, config.donors)
    donor_causes = _pick_causes(config.donors, cause_weight, rng)
    donor_activity = rng.pareto(1.5, config.donors) + 1.0

    donations = _donations(
        config, rng, donor_region, donor_causes, donor_activity,
        np_region, np_causes, np_popularity, region_lat, region_lon,
    )
    donor_ids = [f"donor-{i:06d}" for i in range(config.donors)]
    np_ids = [f"nonprofit-{i:05d}" for i in range(config.nonprofits)]
    donor_idx, np_idx = donations
    n = len(donor_idx)
    amounts = np.round(rng.lognormal(3.5, 1.1, n), 2)
    ts = np.sort(rng.integers(START_TS, START_TS + SPAN_S, n))
    order = rng.permutation(n)  # time order independent of donor order
    donor_idx, np_idx = donor_idx[order], np_idx[order]

    def table(name: str, columns: Mapping[str, object]) -> pa.Table:
        return pa.table(columns, schema=TABLE_SCHEMAS[name])

    return {
        "regions": table(
            "regions",
            {
                "id": region_ids,
                "name": [f"Region {i}" for i in range(config.regions)],
                "lat": region_lat,
                "lon": region_lon,
            },
        ),
        "causes": table("causes", {"id": cause_ids, "name": cause_names}),
        "donors": table(
            "donors",
            {
                "id": donor_ids,
                "name": [f"Donor {i}" for i in range(config.donors)],
                "region_id": [region_ids[r] for r in donor_region],
            },
        ),
        "nonprofits": table(
            "nonprofits",
            {
                "id": np_ids,
                "name": [f"Nonprofit {i}" for i in range(config.nonprofits)],
                "region_id": [region_ids[r] for r in np_region],
            },
        ),
        "donor_causes": table("donor_causes", _membership(donor_ids, donor_causes, cause_ids,
                                                          "donor_id")),
        "nonprofit_causes": table("nonprofit_causes", _membership(np_ids, np_causes, cause_ids,
                                                                  "nonprofit_id")),
        "donations": table(
            "donations",
            {
                "id": [f"donation-{i:08d}" for i in range(n)],
                "donor_id": [donor_ids[i] for i in donor_idx],
                "nonprofit_id": [np_ids[i] for i in np_idx],
                "amount": amounts,
                "ts": ts,
            },
        ),
    }


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.permutation(weights / weights.sum())


def _pick_causes(count: int, weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A boolean (count x causes) membership matrix with 1 to 3 causes per row."""
    k = min(3, len(weight))
    sizes = rng.integers(1, k + 1, count)
    member = np.zeros((count, len(weight)), dtype=bool)
    for row, size in enumerate(sizes):
        member[row, rng.choice(len(weight), size=size, replace=False, p=weight)] = True
    return member


def _donations(
    config: SynthConfig,
    rng: np.random.Generator,
    donor_region: np.ndarray,
    donor_causes: np.ndarray,
    donor_activity: np.ndarray,
    np_region: np.ndarray,
    np_causes: np.ndarray,
    np_popularity: np.ndarray,
    region_lat: np.ndarray,
    region_lon: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample (donor, nonprofit) index pairs from the planted preference model."""
    per_donor = rng.multinomial(config.donations, donor_activity / donor_activity.sum())
    region_dist = np.hypot(
        region_lat[:, None] - region_lat[None, :], region_lon[:, None] - region_lon[None, :]
    )
    log_pop = np.log(np_popularity)
    donors_out: list[np.ndarray] = []
    nonprofits_out: list[np.ndarray] = []
    chunk = 1024
    for start in range(0, config.donors, chunk):
        stop = min(start + chunk, config.donors)
        shared = donor_causes[start:stop].astype(np.float32) @ np_causes.T.astype(np.float32)
        logits = (
            log_pop[None, :]
            + CAUSE_AFFINITY * np.minimum(shared, 2.0)
            - region_dist[donor_region[start:stop]][:, np_region] / DISTANCE_SCALE_DEG
        )
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(probs, axis=1)
        cdf /= cdf[:, -1:]
        for offset, count in enumerate(per_donor[start:stop]):
            if count:
                picks = np.searchsorted(cdf[offset], rng.random(count), side="right")
                donors_out.append(np.full(count, start + offset))
                nonprofits_out.append(np.minimum(picks, config.nonprofits - 1))
    if not donors_out:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(donors_out), np.concatenate(nonprofits_out)


def _membership(
    owner_ids: list[str], member: np.ndarray, cause_ids: list[str], owner_column: str
) -> dict[str, list[str]]:
    rows, cols = np.nonzero(member)
    return {owner_column: [owner_ids[r] for r in rows], "cause_id": [cause_ids[c] for c in cols]}
