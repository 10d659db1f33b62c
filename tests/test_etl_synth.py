"""The streaming synthetic generator: seeded, realistic in shape, valid, constant in memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from etl.snapshot import content_hash
from etl.sources import open_source
from etl.synth import SynthConfig, stream
from etl.validate import Validator

CONFIG = SynthConfig(donors=3_000, nonprofits=200, causes=10, regions=8, donations=40_000,
                      seed=3, chunk=7_000)


def read(directory: Path) -> dict:
    return {p.stem: pq.read_table(p) for p in sorted(directory.glob("*.parquet"))}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("stream")
    counts = stream(CONFIG, out)
    assert counts["donations"] == CONFIG.donations
    assert pq.ParquetFile(out / "donations.parquet").num_row_groups > 1  # written in chunks
    return {**read(out), "_dir": out}


def test_seeded_and_reproducible(tables: dict, tmp_path: Path) -> None:
    stream(CONFIG, tmp_path / "again")
    same = {k: v for k, v in tables.items() if not k.startswith("_")}
    assert content_hash(read(tmp_path / "again")) == content_hash(same)
    stream(SynthConfig(**{**CONFIG.__dict__, "seed": 4}), tmp_path / "other")
    assert content_hash(read(tmp_path / "other")) != content_hash(same)


def test_every_row_is_valid(tables: dict) -> None:
    source = open_source("parquet", tables["_dir"])
    source.check()
    validator = Validator(time.time())
    for entity in source.entities():
        for checked in validator.run(entity, source.batches(entity, 5_000)):
            assert checked.rejected == 0, checked.rejects[:3]


def test_shape_seasonality_recurring_cold_start_heavy_tails(tables: dict) -> None:
    gifts = tables["donations"]
    months = Counter(datetime.fromtimestamp(t, UTC).month
                     for t in gifts.column("ts").to_pylist()[::7])
    others = np.mean([months[m] for m in range(1, 12)])
    assert months[12] > 1.8 * others  # the December peak

    recurring = [g for g in gifts.to_pylist() if g["recurring"]]
    assert 0 < len(recurring) <= 0.2 * CONFIG.donations
    by_donor: dict[str, list[dict]] = {}
    for gift in recurring:
        by_donor.setdefault(gift["donor_id"], []).append(gift)
    monthly = next(iter(by_donor.values()))
    assert len({g["nonprofit_id"] for g in monthly}) == 1  # one nonprofit, a fixed amount
    assert len({g["amount"] for g in monthly}) == 1
    assert len(monthly) >= 6

    active_donors = set(gifts.column("donor_id").to_pylist())
    active_nonprofits = set(gifts.column("nonprofit_id").to_pylist())
    cold_donors = [d for d in tables["donors"].column("id").to_pylist() if d not in active_donors]
    cold_nonprofits = [n for n in tables["nonprofits"].column("id").to_pylist()
                       if n not in active_nonprofits]
    assert len(cold_donors) >= CONFIG.donors * CONFIG.new_donor_share
    assert len(cold_nonprofits) >= CONFIG.nonprofits * CONFIG.new_nonprofit_share
    # The newest ids are the cold-start ones: they still have interests / causes.
    interested = set(tables["donor_causes"].column("donor_id").to_pylist())
    assert cold_donors[-1] in interested

    per_donor = np.array(sorted(Counter(gifts.column("donor_id").to_pylist()).values()))[::-1]
    assert per_donor[: len(per_donor) // 10].sum() > 0.3 * per_donor.sum()
    amounts = gifts.column("amount").to_numpy()
    assert amounts.min() > 0 and np.mean(amounts) > 1.3 * np.median(amounts)
    donors = tables["donors"].to_pylist()
    assert all(d["email"] and d["phone"] and d["street"] and len(d["zip"]) == 5 for d in donors)


def test_memory_does_not_grow_with_donations(tmp_path: Path) -> None:
    def peak(donations: int) -> int:
        config = SynthConfig(donors=1_000, nonprofits=100, donations=donations, seed=1,
                              chunk=5_000)
        tracemalloc.start()
        try:
            stream(config, tmp_path / str(donations))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(10_000), peak(80_000)
    assert large < 1.5 * small, (small, large)


def test_cli_streams(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "etl", "synth", "--stream", "--out",
         str(tmp_path / "out"), "--donors", "300", "--nonprofits", "30", "--donations", "2000"],
        env=dict(os.environ), capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "out" / "donations.parquet").num_rows == 2_000
    assert (tmp_path / "out" / "synth.json").is_file()


def test_one_configuration_for_both_ways(tmp_path: Path) -> None:
    """`generate` and `stream` read the same SynthConfig: from one config they draw the same
    regions and causes, and as many donors and nonprofits."""
    from etl.synth import generate

    config = SynthConfig(donors=90, nonprofits=25, causes=7, regions=5, donations=500, seed=12)
    small = generate(config)
    stream(config, tmp_path)
    streamed = read(tmp_path)
    for name in ("regions", "causes"):
        assert streamed[name].to_pylist() == small[name].to_pylist(), name
    for name in ("donors", "nonprofits"):
        assert streamed[name].num_rows == small[name].num_rows == getattr(config, name)
