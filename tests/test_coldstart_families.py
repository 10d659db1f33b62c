"""Cold-start signatures for every candidate family the harness can serve (graph_model.candidates):
the embeddings are in the served family's space and the scores are products with the served
nonprofit embeddings, whichever family won the holdout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_gnn  # noqa: F401  (registers the GraphTensor types the SavedModel holds)

from etl.snapshot import write_snapshot
from etl.synth import SynthConfig, generate
from graph_model.candidates import INCUMBENT, Candidate, all_candidates
from graph_model.coldstart import EMBED_DONORS, EMBED_NONPROFITS, ColdStart
from graph_model.config import TrainConfig
from graph_model.graph_tensor import node_counts, training_edges
from graph_model.snapshot import Snapshot, read_snapshot
from graph_model.split import Split, temporal_split
from graph_model.train import fit

GRAPH = SynthConfig(donors=300, nonprofits=80, causes=8, regions=6, donations=4000, seed=0)
CONFIG = TrainConfig(seed=0, steps=10, eval_every=10, gf_cf_rank=8, mf_epochs=2)
FAMILIES = ("gnn", "gf_cf", "gnn+gf_cf", "bpr_mf", "popularity")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("families")
    write_snapshot(generate(GRAPH), directory)
    snapshot = read_snapshot(directory)
    split = temporal_split(snapshot.donations, len(snapshot.nonprofit_ids), 0.2)
    trained = fit(snapshot, split, CONFIG)
    gnn = Candidate(INCUMBENT, trained.donor_embeddings, trained.nonprofit_embeddings, 0.0)
    candidates = all_candidates(
        gnn, split, len(snapshot.donor_ids), len(snapshot.nonprofit_ids), CONFIG
    )
    assert [c.name for c in candidates] == list(FAMILIES)
    return {"snapshot": snapshot, "split": split, "model": trained.model,
            "candidates": {c.name: c for c in candidates}}


def _cold_start(world: dict, served: Candidate) -> ColdStart:
    snapshot: Snapshot = world["snapshot"]
    split: Split = world["split"]
    return ColdStart(
        world["model"],
        edges=training_edges(snapshot, split.train_pairs),
        sizes=node_counts(snapshot),
        cause_ids=snapshot.cause_ids,
        region_ids=snapshot.region_ids,
        nonprofit_ids=snapshot.nonprofit_ids,
        nonprofit_embeddings=served.nonprofits,
        segments=served.cold_start(),
    )


def _donor_like(world: dict, donor: int) -> dict[str, tf.Tensor]:
    """Signature inputs (in the signature's order) of a new donor with training donor `donor`'s
    region, causes and gifts."""
    snapshot: Snapshot = world["snapshot"]
    pairs = world["split"].train_pairs
    causes = snapshot.donor_causes[snapshot.donor_causes[:, 0] == donor, 1]
    gifts = pairs.nonprofit[pairs.donor == donor]
    return {
        "region_ids": tf.constant([snapshot.region_ids[snapshot.donor_region[donor]]]),
        "cause_ids": tf.constant([snapshot.cause_ids[c] for c in causes], tf.string),
        "cause_owner": tf.zeros(len(causes), tf.int64),
        "gift_nonprofit_ids": tf.constant([snapshot.nonprofit_ids[n] for n in gifts], tf.string),
        "gift_owner": tf.zeros(len(gifts), tf.int64),
    }


def _a_giver(world: dict) -> int:
    pairs = world["split"].train_pairs
    return int(np.bincount(pairs.donor).argmax())  # the donor with the most training gifts


@pytest.mark.parametrize("family", FAMILIES)
def test_new_donor_in_the_served_space(world: dict, family: str) -> None:
    served = world["candidates"][family]
    donor = _a_giver(world)
    # Held in a name: a tf.function method keeps only a weak reference to its module.
    module = _cold_start(world, served)
    out = module.embed_donors(*_donor_like(world, donor).values())
    embeddings, scores = out["embeddings"].numpy(), out["scores"].numpy()
    assert embeddings.shape == (1, served.donors.shape[1])
    assert scores.shape == (1, len(world["snapshot"].nonprofit_ids))
    np.testing.assert_allclose(scores, embeddings @ served.nonprofits.T, rtol=1e-4, atol=1e-5)
    gnn_module = _cold_start(world, world["candidates"]["gnn"])
    gnn_only = gnn_module.embed_donors(*_donor_like(world, donor).values())["embeddings"].numpy()
    if family == "gf_cf":
        # The filter of the donor's gifts: exactly what the training donor with them gets.
        np.testing.assert_allclose(embeddings[0], served.donors[donor], rtol=1e-4, atol=1e-5)
    elif family == "gnn+gf_cf":
        width = gnn_only.shape[1]
        gf_cf = world["candidates"]["gf_cf"]
        # Each half scaled as the served mix scales it (same ratio as the training donor's).
        ratio_gnn = served.donors[donor, :width] / world["candidates"]["gnn"].donors[donor]
        np.testing.assert_allclose(embeddings[0, :width], gnn_only[0] * np.median(ratio_gnn),
                                   rtol=1e-3, atol=1e-5)
        ratio_gf = served.donors[donor, width:] / gf_cf.donors[donor]
        np.testing.assert_allclose(embeddings[0, width:], served.donors[donor, width:],
                                   rtol=1e-4, atol=1e-5)
        assert np.allclose(ratio_gf[np.isfinite(ratio_gf)], np.nanmedian(ratio_gf), rtol=1e-3)
    elif family == "bpr_mf":
        # An untrained donor: a zero vector against the item bias (the learned popularity).
        expected = np.zeros(served.donors.shape[1], np.float32)
        expected[-1] = 1.0
        np.testing.assert_array_equal(embeddings[0], expected)
        np.testing.assert_allclose(scores[0], served.nonprofits[:, -1], rtol=1e-5)
    elif family == "popularity":
        np.testing.assert_array_equal(embeddings, [[1.0]])
        np.testing.assert_allclose(scores[0], served.nonprofits[:, 0])
    else:
        np.testing.assert_allclose(embeddings, gnn_only)


@pytest.mark.parametrize("family", FAMILIES)
def test_new_nonprofit_in_the_served_space(world: dict, family: str) -> None:
    served = world["candidates"][family]
    snapshot: Snapshot = world["snapshot"]
    module = _cold_start(world, served)
    out = module.embed_nonprofits(
        tf.constant([snapshot.region_ids[0], snapshot.region_ids[1]]),
        tf.constant([snapshot.cause_ids[0]]),
        tf.constant([1], tf.int64),
    )["embeddings"].numpy()
    assert out.shape == (2, served.nonprofits.shape[1])
    gnn_width = world["candidates"]["gnn"].nonprofits.shape[1] if "gnn" in family else 0
    # No donations yet: every column outside the GNN's is zero, as for a nonprofit without
    # training donations in these families.
    np.testing.assert_array_equal(out[:, gnn_width:], 0.0)
    if gnn_width:
        assert np.abs(out[:, :gnn_width]).sum() > 0


def test_a_saved_non_gnn_family_serves_its_signatures(world: dict, tmp_path: Path) -> None:
    served = world["candidates"]["gf_cf"]
    module = _cold_start(world, served)
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures=module.signatures())
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    donor = _a_giver(world)
    out = loaded.signatures[EMBED_DONORS](**_donor_like(world, donor))
    np.testing.assert_allclose(out["embeddings"].numpy()[0], served.donors[donor], rtol=1e-4,
                               atol=1e-5)
    nonprofit = loaded.signatures[EMBED_NONPROFITS](
        region_ids=tf.constant([world["snapshot"].region_ids[0]]),
        cause_ids=tf.constant([], tf.string), cause_owner=tf.constant([], tf.int64),
    )["embeddings"].numpy()
    assert nonprofit.shape == (1, served.nonprofits.shape[1])
