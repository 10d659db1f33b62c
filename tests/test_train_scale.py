"""Training at production size: donor-sampled steps, the whole graph embedded, phases recorded.

Real TensorFlow on a tiny graph; `train_donors` below the graph's donors makes the steps run on
a sample exactly as they do at 1M donors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from etl.snapshot import write_snapshot
from etl.synth import SynthConfig, generate
from graph_model import schema
from graph_model.artifacts import load_artifact
from graph_model.config import TrainConfig
from graph_model.graph_tensor import build_graph_tensor
from graph_model.snapshot import read_snapshot
from graph_model.split import sample_donors, temporal_split
from graph_model.train import PHASES, train

GRAPH = SynthConfig(donors=300, nonprofits=80, causes=8, regions=6, donations=4000, seed=0)
CONFIG = TrainConfig(seed=0, steps=60, train_donors=150, candidates=False)


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("snapshot")
    write_snapshot(generate(GRAPH), directory)
    return directory


@pytest.fixture(scope="module")
def trained(snapshot_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(snapshot_dir, tmp_path_factory.mktemp("artifacts"), CONFIG)


def test_sample_donors_keeps_every_pair_of_the_sampled_donors(snapshot_dir: Path) -> None:
    snapshot = read_snapshot(snapshot_dir)
    pairs = temporal_split(snapshot.donations, len(snapshot.nonprofit_ids), 0.2).train_pairs
    sample, sampled_pairs = sample_donors(snapshot, pairs, 100, seed=3)
    assert len(sample.donor_ids) == 100 and sample.nonprofit_ids == snapshot.nonprofit_ids
    position = {donor: i for i, donor in enumerate(snapshot.donor_ids)}
    chosen = np.array([position[d] for d in sample.donor_ids])
    assert np.all(np.diff(chosen) > 0)  # renumbered in order
    # Exactly the full graph's pairs of the chosen donors, renumbered, still sorted.
    expected = {(int(np.searchsorted(chosen, d)), int(n))
                for d, n in zip(pairs.donor, pairs.nonprofit, strict=True) if d in set(chosen)}
    got = list(zip(sampled_pairs.donor.tolist(), sampled_pairs.nonprofit.tolist(), strict=True))
    assert set(got) == expected and got == sorted(got)
    np.testing.assert_array_equal(sample.donor_region, snapshot.donor_region[chosen])
    full_causes = {(int(np.searchsorted(chosen, d)), int(c))
                   for d, c in snapshot.donor_causes if d in set(chosen)}
    assert set(map(tuple, sample.donor_causes.tolist())) == full_causes
    assert sample.donations.donor.max() < 100
    # No more donors than asked for: nothing changes.
    same, same_pairs = sample_donors(snapshot, pairs, len(snapshot.donor_ids), seed=3)
    assert same is snapshot and same_pairs is pairs


def test_a_sample_trained_model_embeds_every_donor(trained: Path, snapshot_dir: Path) -> None:
    snapshot = read_snapshot(snapshot_dir)
    artifact = load_artifact(trained)
    assert artifact.donor_embeddings.shape[0] == len(snapshot.donor_ids) == GRAPH.donors
    metrics = json.loads((trained / "metrics.json").read_text())
    # Trained on half the donors, it still ranks better than popularity on the holdout.
    assert metrics["model"]["recall@20"] > metrics["popularity"]["recall@20"], metrics
    # The SavedModel embeds the whole graph with the degree at its full scale (1), giving the
    # served embeddings: a scale left at its training value would change every nonprofit's.
    reloaded = tf.saved_model.load(str(trained / "saved_model")).model
    scales = [v for v in reloaded.variables if "degree_scale" in v.name]
    assert [float(v.numpy()) for v in scales] == [1.0]
    split = temporal_split(snapshot.donations, len(snapshot.nonprofit_ids), 0.2)
    embeddings = reloaded(build_graph_tensor(snapshot, split.train_pairs), training=False)
    np.testing.assert_allclose(
        embeddings[schema.NONPROFIT].numpy(), artifact.nonprofit_embeddings, rtol=1e-4,
        atol=1e-5,
    )


def test_every_phase_is_recorded(trained: Path) -> None:
    recorded = json.loads((trained / PHASES).read_text())
    names = [row["name"] for row in recorded["phases"]]
    for name in ("read snapshot", "split", "sample donors", "graph tensor", "embed",
                 "calibrate model", "write artifact"):
        assert name in names, names
    assert names.count("train step") == CONFIG.steps
    for row in recorded["phases"]:
        assert row["seconds"] >= 0 and row["cpu_s"] >= 0
        assert 0 < row["rss_gb"] <= row["peak_rss_gb"]
    assert recorded["totals"]["train step"] == pytest.approx(
        sum(r["seconds"] for r in recorded["phases"] if r["name"] == "train step"), abs=0.01
    )
