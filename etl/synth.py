"""Seeded synthetic donor graphs: one configuration (`SynthConfig`, one set of defaults) for
two ways of drawing them.

- `generate(config)`: a small graph in memory with a planted preference structure. Donors favour
  a few causes and nearby nonprofits; donor activity and gift sizes are heavy-tailed; nonprofits
  differ in popularity. A model that learns the structure beats popularity ranking. The tests,
  `demo` and docs/model-overview.md's figures use it.
- `stream(config, out)`: the same kind of graph at scale, written to canonical Parquet in
  constant memory (`etl synth --stream`, the benchmarks), with what real donation data also has:
  recurring donors, a December peak, cold-start donors and nonprofits, contact details.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from etl.entities import DONOR_TYPES
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
    # `stream` only: the shape of real donation data beyond the planted preferences.
    recurring_share: float = 0.04  # of active donors: monthly givers
    new_donor_share: float = 0.05  # donors without any donation (cold start)
    new_nonprofit_share: float = 0.05  # nonprofits without any donation (cold start)
    december_boost: float = 2.5  # December's daily rate relative to the rest of the year
    days: int = 730
    chunk: int = 200_000  # rows per generated chunk and Parquet row group

    def __post_init__(self) -> None:
        for name in ("donors", "nonprofits", "causes", "regions", "chunk", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.donations < 0:
            raise ValueError("donations must not be negative")
        for name in ("recurring_share", "new_donor_share", "new_nonprofit_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be within [0, 1)")


def generate(config: SynthConfig) -> Tables:
    """A small graph in memory, as canonical tables (the planted-preference model)."""
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


# ---------------------------------------------------------------------------------------------
# `stream`: the graph at scale, chunk by chunk.

DAY = 86_400
FIRST = ("Maria", "James", "Aiko", "Oluwaseun", "Zoë", "Liam", "Priya", "Mateo", "Chen",
         "Fatima", "Noah", "Ingrid", "Kwame", "Sofia", "Arjun", "Hana")
LAST = ("García", "Smith", "Tanaka", "Adeyemi", "Müller", "O'Brien", "Patel", "Rossi", "Wang",
        "Haddad", "Johnson", "Larsen", "Mensah", "Silva", "Kumar", "Kim")
STREETS = ("Main St", "Oak Ave", "Valencia St", "Market St", "Elm St", "2nd Ave", "Park Rd",
           "Lake Dr")
Progress = Callable[[str, int], None]


class _World:
    """Per-donor and per-nonprofit traits: O(donors + nonprofits) memory, small dtypes."""

    def __init__(self, c: SynthConfig, rng: np.random.Generator) -> None:
        self.c = c
        self.region_lat = np.round(rng.uniform(25.0, 49.0, c.regions), 6)
        self.region_lon = np.round(rng.uniform(-124.0, -67.0, c.regions), 6)
        cause_weight = 1.0 / np.arange(1, c.causes + 1) ** 0.8
        self.cause_weight = rng.permutation(cause_weight / cause_weight.sum())
        self.np_region = rng.integers(0, c.regions, c.nonprofits).astype(np.int32)
        self.np_causes = self._pick_causes(c.nonprofits, rng)
        self.np_popularity = rng.lognormal(0.0, 1.0, c.nonprofits)
        self.donor_region = rng.integers(0, c.regions, c.donors).astype(np.int32)
        self.donor_causes = self._pick_causes(c.donors, rng)
        self.active_donors = c.donors - int(c.donors * c.new_donor_share)
        self.active_nonprofits = max(1, c.nonprofits - int(c.nonprofits * c.new_nonprofit_share))
        activity = rng.pareto(1.2, self.active_donors) + 1.0
        self.donor_cdf = np.cumsum(activity / activity.sum())
        popularity = self.np_popularity[: self.active_nonprofits]
        self.global_cdf = np.cumsum(popularity / popularity.sum())
        # Per cause and per region: active nonprofits and their popularity CDF.
        self.by_cause = [self._group(self.np_causes[: self.active_nonprofits] == cause)
                         for cause in range(c.causes)]
        self.by_region = [self._group(self.np_region[: self.active_nonprofits] == region)
                          for region in range(c.regions)]
        self.recurring = rng.random(self.active_donors) < c.recurring_share
        self.day_cdf = self._seasonal_days()

    def _pick_causes(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, 3) cause indexes, -1 padded: 1 to 3 distinct causes each."""
        k = min(3, self.c.causes)
        picks = np.full((count, 3), -1, dtype=np.int16)
        sizes = rng.integers(1, k + 1, count)
        for start in range(0, count, 100_000):
            stop = min(count, start + 100_000)
            # Gumbel top-k: weighted sampling without replacement, vectorised.
            keys = np.log(self.cause_weight)[None, :] - np.log(-np.log(
                rng.random((stop - start, self.c.causes))))
            order = np.argsort(-keys, axis=1)[:, :k].astype(np.int16)
            mask = np.arange(k)[None, :] < sizes[start:stop, None]
            picks[start:stop, :k] = np.where(mask, order, -1)
        return picks

    def _group(self, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.flatnonzero(member.any(axis=1) if member.ndim == 2 else member)
        if len(ids) == 0:
            return ids, ids.astype(float)
        weight = self.np_popularity[ids]
        return ids, np.cumsum(weight / weight.sum())

    def _seasonal_days(self) -> np.ndarray:
        start = datetime.fromtimestamp(START_TS, UTC)
        weight = np.array([
            self.c.december_boost if (start + timedelta(days=d)).month == 12 else 1.0
            for d in range(self.c.days)
        ])
        return np.cumsum(weight / weight.sum())


def _pick(cdf: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


def _gifts(world: _World, rng: np.random.Generator, n: int,
           donor: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """n one-off gifts: donor by activity (unless given), nonprofit by cause / region /
    popularity."""
    c = world.c
    donor = _pick(world.donor_cdf, rng, n) if donor is None else donor
    nonprofit = _pick(world.global_cdf, rng, n)
    route = rng.random(n)
    by_cause = route < 0.65
    slots = (world.donor_causes[donor] >= 0).sum(axis=1)
    slot = (rng.random(n) * slots).astype(np.int64)
    cause = world.donor_causes[donor, slot]
    for index in range(c.causes):
        chosen = np.flatnonzero(by_cause & (cause == index))
        ids, cdf = world.by_cause[index]
        if len(chosen) and len(ids):
            nonprofit[chosen] = ids[_pick(cdf, rng, len(chosen))]
    by_region = (route >= 0.65) & (route < 0.85)
    region = world.donor_region[donor]
    for index in range(c.regions):
        chosen = np.flatnonzero(by_region & (region == index))
        ids, cdf = world.by_region[index]
        if len(chosen) and len(ids):
            nonprofit[chosen] = ids[_pick(cdf, rng, len(chosen))]
    day = _pick(world.day_cdf, rng, n)
    ts = START_TS + day * DAY + rng.integers(0, DAY, n)
    amount = np.round(np.minimum(rng.lognormal(3.5, 1.1, n), 250_000.0), 2)
    return {"donor": donor, "nonprofit": nonprofit, "ts": ts, "amount": amount,
            "recurring": np.zeros(n, dtype=bool)}


def _recurring(world: _World, rng: np.random.Generator, donors: np.ndarray,
               budget: int) -> dict[str, np.ndarray]:
    """Monthly gifts of a fixed amount from each recurring donor to one nonprofit."""
    months = world.c.days // 30
    start = rng.integers(0, max(1, months - 6), len(donors))
    length = rng.integers(6, months + 1, len(donors))
    count = np.minimum(length, months - start)
    total = int(count.sum())
    if total > budget:
        count = np.floor(count * budget / total).astype(np.int64)
    donor = np.repeat(donors, count)
    month = np.repeat(start, count) + (np.arange(len(donor)) - np.repeat(
        np.cumsum(count) - count, count))
    picks = _gifts(world, rng, len(donors), donors)  # each donor's one nonprofit
    nonprofit = np.repeat(picks["nonprofit"], count)
    amount = np.repeat(rng.choice([10.0, 25.0, 50.0, 100.0], len(donors)), count)
    day = np.repeat(rng.integers(0, 28, len(donors)), count)
    ts = START_TS + (month * 30 + day) * DAY + 9 * 3600
    return {"donor": donor, "nonprofit": nonprofit, "ts": ts, "amount": amount,
            "recurring": np.ones(len(donor), dtype=bool)}


def _donation_chunks(world: _World, rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
    c = world.c
    recurring_donors = np.flatnonzero(world.recurring)
    budget = int(c.donations * 0.2)  # recurring gifts: at most a fifth of all
    produced = 0
    step = max(1, c.chunk // 24)  # about a chunk of gifts per step
    for start in range(0, len(recurring_donors), step):
        if produced >= budget:
            break
        part = _recurring(world, rng, recurring_donors[start:start + step], budget - produced)
        produced += len(part["donor"])
        yield part
    remaining = c.donations - produced
    for start in range(0, remaining, c.chunk):
        yield _gifts(world, rng, min(c.chunk, remaining - start))


class _Writer:
    """One Parquet file per entity, written a row group at a time."""

    def __init__(self, out: Path, progress: Progress | None) -> None:
        self.out = out
        self.progress = progress
        self.counts: dict[str, int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}

    def write(self, name: str, table: pa.Table) -> None:
        if name not in self._writers:
            self._writers[name] = pq.ParquetWriter(self.out / f"{name}.parquet", table.schema)
        self._writers[name].write_table(table)
        self.counts[name] = self.counts.get(name, 0) + table.num_rows
        if self.progress:
            self.progress(name, table.num_rows)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def stream(config: SynthConfig, out: Path, progress: Progress | None = None) -> dict[str, int]:
    """Write the synthetic graph as canonical Parquet files into `out`, in constant memory
    (up to 1M donors, 100k nonprofits and 10M donations: memory grows with donors and
    nonprofits, a few bytes each, not with donations); return row counts. Seeded: the same
    config writes byte-identical tables."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    world = _World(config, rng)
    writer = _Writer(out, progress)
    try:
        writer.write("regions", pa.table({
            "id": [f"region-{i:03d}" for i in range(config.regions)],
            "name": [f"Region {i}" for i in range(config.regions)],
            "lat": world.region_lat, "lon": world.region_lon,
        }))
        writer.write("causes", pa.table({
            "id": [f"cause-{i:03d}" for i in range(config.causes)],
            "name": [CAUSE_NAMES[i % len(CAUSE_NAMES)] + ("" if i < len(CAUSE_NAMES) else
                                                          f" {i}") for i in range(config.causes)],
        }))
        for start in range(0, config.donors, config.chunk):
            writer.write("donors", _donors(world, rng, start,
                                           min(config.donors, start + config.chunk)))
        for start in range(0, config.nonprofits, config.chunk):
            stop = min(config.nonprofits, start + config.chunk)
            writer.write("nonprofits", pa.table({
                "id": [f"nonprofit-{i:06d}" for i in range(start, stop)],
                "name": [f"Nonprofit {i}" for i in range(start, stop)],
                "region_id": [f"region-{r:03d}" for r in world.np_region[start:stop]],
            }))
        for name, owner, picks, count in (
            ("donor_causes", "donor", world.donor_causes, config.donors),
            ("nonprofit_causes", "nonprofit", world.np_causes, config.nonprofits),
        ):
            width = 7 if owner == "donor" else 6
            for start in range(0, count, config.chunk):
                rows, slots = np.nonzero(picks[start:start + config.chunk] >= 0)
                causes = picks[start:start + config.chunk][rows, slots]
                writer.write(name, pa.table({
                    f"{owner}_id": [f"{owner}-{start + r:0{width}d}" for r in rows],
                    "cause_id": [f"cause-{c:03d}" for c in causes],
                }))
        number = 0
        for chunk in _donation_chunks(world, rng):
            n = len(chunk["donor"])
            writer.write("donations", pa.table({
                "id": [f"donation-{i:09d}" for i in range(number, number + n)],
                "donor_id": [f"donor-{d:07d}" for d in chunk["donor"]],
                "nonprofit_id": [f"nonprofit-{p:06d}" for p in chunk["nonprofit"]],
                "amount": chunk["amount"].astype(np.float64),
                "ts": chunk["ts"].astype(np.int64),
                "recurring": chunk["recurring"],
            }))
            number += n
    finally:
        writer.close()
    (out / "synth.json").write_text(json.dumps(
        {"config": asdict(config), "counts": writer.counts}, indent=2) + "\n")
    return writer.counts


def _donors(world: _World, rng: np.random.Generator, start: int, stop: int) -> pa.Table:
    n = stop - start
    first = rng.integers(0, len(FIRST), n)
    last = rng.integers(0, len(LAST), n)
    number = rng.integers(1, 9_999, n)
    street = rng.integers(0, len(STREETS), n)
    zips = 10_000 + (world.donor_region[start:stop] * 4_000 + rng.integers(0, 4_000, n)) % 89_999
    kinds = rng.choice(len(DONOR_TYPES), n, p=[0.85, 0.05, 0.04, 0.03, 0.03])
    ids = range(start, stop)
    return pa.table({
        "id": [f"donor-{i:07d}" for i in ids],
        "name": [f"{FIRST[a]} {LAST[b]}" for a, b in zip(first, last, strict=True)],
        "email": [f"{FIRST[a].lower()}.{LAST[b].lower().replace(chr(39), '')}{i}@example.org"
                  for a, b, i in zip(first, last, ids, strict=True)],
        "phone": [f"+1-555-{i // 10_000 % 1_000:03d}-{i % 10_000:04d}" for i in ids],
        "street": [f"{s} {STREETS[t]}" for s, t in zip(number, street, strict=True)],
        "zip": [f"{z:05d}" for z in zips],
        "region_id": [f"region-{r:03d}" for r in world.donor_region[start:stop]],
        "donor_type": [DONOR_TYPES[k] for k in kinds],
    })
