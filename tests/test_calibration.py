"""Calibrated match probabilities: Platt scaling fitted on the holdout and its ECE."""

from __future__ import annotations

import numpy as np
import pytest

from graph_model.calibration import Platt, calibrate, expected_calibration_error, fit_platt
from graph_model.evaluate import embedding_scorer


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def test_platt_recovers_a_known_sigmoid_also_from_weighted_negatives() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200_000)
    y = rng.random(len(x)) < _sigmoid(2.0 * x - 3.0)
    fitted = fit_platt(x, y)
    assert fitted.slope == pytest.approx(2.0, abs=0.05)
    assert fitted.intercept == pytest.approx(-3.0, abs=0.05)
    # Keep every positive and a tenth of the negatives, each standing for ten: the same fit.
    keep = y | (rng.random(len(x)) < 0.1)
    weight = np.where(y, 1.0, 10.0)[keep]
    subsampled = fit_platt(x[keep], y[keep], weight)
    assert subsampled.slope == pytest.approx(2.0, abs=0.1)
    assert subsampled.intercept == pytest.approx(-3.0, abs=0.1)
    assert Platt.from_json(fitted.to_json()) == fitted
    counts = Platt(0.5, -2.0, "log1p")
    assert counts(np.array([0.0, np.e - 1])) == pytest.approx(_sigmoid(np.array([-2.0, -1.5])))


def test_ece_is_small_for_calibrated_and_large_for_rescaled_predictions() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(1, 20, 100_000)
    y = rng.random(len(p)) < p
    assert expected_calibration_error(p, y) < 0.005
    assert expected_calibration_error(np.minimum(1.0, 5 * p), y) > 0.1
    assert expected_calibration_error(np.zeros(0), np.zeros(0)) == 0.0


def test_calibrate_on_a_holdout_drawn_from_a_known_model() -> None:
    """Test pairs drawn with P(pair) = sigmoid(score - 6): the fit finds that link, its ECE on
    the other half of the donors is small, and the min-max rescaling's is large."""
    rng = np.random.default_rng(2)
    donors, nonprofits = rng.normal(size=(1500, 6)), rng.normal(size=(120, 6))
    scores = donors @ nonprofits.T
    exclude = np.argwhere(rng.random(scores.shape) < 0.05)
    is_excluded = np.zeros(scores.shape, bool)
    is_excluded[exclude[:, 0], exclude[:, 1]] = True
    drawn = (rng.random(scores.shape) < _sigmoid(scores - 6.0)) & ~is_excluded
    relevant = np.argwhere(drawn)
    platt, report = calibrate(
        embedding_scorer(donors, nonprofits), relevant, exclude, 120, donors=600, k=10
    )
    assert platt.slope == pytest.approx(1.0, abs=0.15)
    assert platt.intercept == pytest.approx(-6.0, abs=0.5)
    assert report["fit_donors"] == report["check_donors"] == 600
    assert report["ece@10"] < 0.03 and report["ece"] < 0.01
    assert report["ece@10_minmax"] > 0.3
    assert report["mean_probability@10"] == pytest.approx(report["hit_rate@10"], abs=0.03)
    probabilities = platt(np.sort(scores[0])[::-1])
    assert 0.0 < probabilities.min() <= probabilities.max() < 1.0
    assert np.all(np.diff(probabilities) <= 0)  # monotone: never disagrees with the ranking
