"""The evaluation harness (hand-computed metrics, splits, baselines) and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from etl.snapshot import write_snapshot
from etl.synth import SynthConfig, generate
from graph_model.config import TrainConfig
from graph_model.evaluate import (
    bpr_mf,
    evaluate_scores,
    impact_sweep,
    popular_items,
    popularity_scores,
)
from graph_model.snapshot import Donations
from graph_model.split import cold_start_split


def test_metrics_on_a_hand_computed_example() -> None:
    scores = np.array(
        [
            [0.9, 0.8, 0.7, 0.6, 0.5],
            [0.1, 0.2, 0.3, 0.4, 0.5],
            [0.5, 0.4, 0.3, 0.2, 0.1],
        ]
    )
    relevant = np.array([[0, 2], [0, 4], [1, 4]])
    exclude = np.array([[0, 0], [2, 1]])
    popularity = np.array([9, 1, 1, 1, 1])  # item 0 is the top 1% (at least one item)
    result = evaluate_scores(scores, relevant, exclude, k=2, max_k=4, popularity=popularity)
    # User 0 ranks 1, 2, 3, 4 (0 excluded); relevant {2, 4}: hits at ranks 2 and 4.
    #   Recall@1..4 = 0, 1/2, 1/2, 1; first hit at rank 2 -> RR 1/2; top-2 list {1, 2}.
    # User 1 ranks 4, 3, 2, 1, 0; relevant {4}: hit at rank 1. Recall@1.. = 1; RR 1; list {4, 3}.
    assert result.users == 2
    assert result.recall == pytest.approx([0.5, 0.75, 0.75, 1.0])
    assert result.mrr == pytest.approx(0.75)
    # NDCG@2: user 0 = (1/log2 3) / (1 + 1/log2 3) = 0.386853; user 1 = 1.
    assert result.ndcg == pytest.approx((0.386853 + 1.0) / 2, abs=1e-6)
    # Lists {1, 2} and {4, 3} cover 4 of 5 items; none is the popular item 0.
    assert result.coverage == pytest.approx(0.8)
    assert result.popularity_bias == 0.0
    assert popular_items(popularity).tolist() == [True, False, False, False, False]
    biased = evaluate_scores(
        popularity_scores(popularity, 3),
        relevant,
        np.zeros((0, 2), int),
        k=2,
        popularity=popularity,
    )
    assert biased.popularity_bias == pytest.approx(0.5)  # item 0 is one of two entries per list
    assert biased.coverage == pytest.approx(0.4)  # everybody gets items 0 and 1


def test_metrics_refuse_k_beyond_the_curve() -> None:
    with pytest.raises(ValueError, match="k must be within"):
        evaluate_scores(np.zeros((1, 3)), np.array([[0, 1]]), np.zeros((0, 2), int), k=5, max_k=4)


def test_cold_start_split_holds_out_nodes_whole() -> None:
    # 6 donors x 30 nonprofits, timestamps 0..199; cutoff at the 0.75 quantile.
    rng = np.random.default_rng(0)
    donor = rng.integers(0, 6, 200)
    nonprofit = rng.integers(0, 30, 200)
    donations = Donations(donor, nonprofit, np.arange(200))
    split = cold_start_split(
        donations, 6, 30, holdout_fraction=0.25, cold_donor_fraction=0.34,
        cold_nonprofit_fraction=0.1, seed=0,
    )  # fmt: skip
    held_donors, held_nonprofits = set(split.held_out_donors), set(split.held_out_nonprofits)
    assert len(held_donors) == 2 and len(held_nonprofits) == 3
    assert not held_donors & set(split.train.donor)
    assert not held_nonprofits & set(split.train.nonprofit)
    assert (split.train.ts < split.cutoff_ts).all()
    # Every gift of a held-out donor is a cold-donor pair, whenever it was made.
    for d in held_donors:
        expected = set(nonprofit[donor == d])
        assert {n for dd, n in split.cold_donor_pairs if dd == d} == expected
    assert set(split.cold_nonprofit_pairs[:, 1]) == held_nonprofits
    assert not set(split.cold_nonprofit_pairs[:, 0]) & held_donors
    warm = set(map(tuple, split.test_pairs))
    assert warm and not warm & set(
        zip(split.train_pairs.donor, split.train_pairs.nonprofit, strict=True)
    )
    assert not {d for d, _ in warm} & held_donors
    with pytest.raises(ValueError, match="cold_donor_fraction"):
        cold_start_split(donations, 6, 30, holdout_fraction=0.25, cold_donor_fraction=1.0,
                         cold_nonprofit_fraction=0.0, seed=0)  # fmt: skip


def test_bpr_mf_learns_block_structure() -> None:
    # Two communities: users 0-19 like items 0-9, users 20-39 like items 10-19.
    rng = np.random.default_rng(0)
    users = rng.integers(0, 40, 600)
    items = np.where(users < 20, rng.integers(0, 10, 600), rng.integers(10, 20, 600))
    pairs = np.unique(np.stack([users, items], axis=1), axis=0)
    train = pairs[rng.random(len(pairs)) < 0.7]
    mf = bpr_mf(train, 40, 20, dim=8, epochs=60, seed=0)
    scores = mf.scores()
    in_block = np.where(np.arange(40)[:, None] < 20, np.arange(20) < 10, np.arange(20) >= 10)
    assert scores[in_block].mean() > scores[~in_block].mean() + 1.0


def test_impact_sweep_trades_recall_for_underfunded_share() -> None:
    # One donor, 4 items; the model prefers 0 > 1 > 2 > 3, the relevant item is 0 (popular, no
    # impact), items 2 and 3 are under-funded with full impact.
    scores = np.array([[4.0, 3.0, 2.0, 1.0]])
    impact = np.array([0.0, 0.0, 1.0, 1.0])
    underfunded = np.array([False, False, True, True])
    points = impact_sweep(
        scores, np.array([[0, 0]]), np.zeros((0, 2), int), impact, underfunded,
        weights=(0.0, 1.0), k=2,
    )  # fmt: skip
    assert [p.weight for p in points] == [0.0, 1.0]
    assert (points[0].recall, points[0].underfunded_share) == (1.0, 0.0)  # list {0, 1}
    # Weight 1: r = [1, 2/3, 1/3, 0], r * impact = [0, 0, 1/3, 0]: list {2, 0} (ties to the
    # lower index). Item 3 has full impact but r = 0: the probability gate keeps it out.
    assert points[1].underfunded_share == 0.5
    assert points[1].recall == 1.0
    assert points[1].coverage == 0.5


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_evaluate_report_on_a_tiny_graph(tmp_path: Path) -> None:
    from graph_model.report import FIGURES, EvaluateConfig, run_evaluation

    snapshot_dir = tmp_path / "snapshot"
    graph = SynthConfig(donors=200, nonprofits=60, causes=6, regions=5, donations=2500, seed=1)
    write_snapshot(generate(graph), snapshot_dir)
    config = EvaluateConfig(train=TrainConfig(steps=40, eval_every=20, seed=0), mf_epochs=10)
    results = run_evaluation(snapshot_dir, tmp_path / "report", config)
    out = tmp_path / "report"
    for name in (*FIGURES, "report.html", "results.json", "history.json"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "tensorboard").iterdir())
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["metrics"] == results["metrics"]
    for model in ("gnn", "bpr_mf", "popularity"):
        for name in ("warm", "cold_donors", "cold_nonprofits"):
            summary = results["metrics"][model][name]
            assert summary["users"] > 0, (model, name)
            assert f"{summary['recall@20']:.4f}" in page
            assert len(results["recall_curves"][model][name]) == 50
    # Cold nonprofits are ranked among nonprofits without training donations only.
    candidates = results["split"]["cold_nonprofit_candidates"]
    assert candidates >= 3  # 5% of 60 held out
    for model in ("gnn", "bpr_mf", "popularity"):
        coverage = results["metrics"][model]["cold_nonprofits"]["coverage@20"]
        assert coverage <= candidates / graph.nonprofits
    # The GNN beats popularity on the warm slice even after 40 steps.
    assert (
        results["metrics"]["gnn"]["warm"]["recall@20"]
        > results["metrics"]["popularity"]["warm"]["recall@20"]
    )
    # ECE of each model's calibrated probabilities is reported, and beats the min-max rescaling.
    assert "Calibration" in page
    for model in ("gnn", "bpr_mf", "popularity"):
        report = results["calibration"][model]
        assert 0.0 <= report["ece@20"] < report["ece@20_minmax"], model
        assert f"{report['ece@20']:.4f}" in page
    sweep = results["impact_sweep"]
    assert [p["weight"] for p in sweep] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert sweep[-1]["underfunded_share"] >= sweep[0]["underfunded_share"]
    assert sweep[0]["recall"] == pytest.approx(results["metrics"]["gnn"]["warm"]["recall@20"])
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 40 and [e["step"] for e in history["evaluations"]] == [20, 40]
    assert {e["kind"] for e in results["explanations"]} == {"warm", "cold"}
    assert all(m["reasons"] for e in results["explanations"] for m in e["matches"])
    assert all(len(e["matches"]) == 3 for e in results["explanations"])
