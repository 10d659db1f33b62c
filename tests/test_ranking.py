"""graph_model.ranking: impact-adjusted scores, impact normalisation and explanations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from donor_match.domain import Cause
from donor_match.reasons import Home, haversine_km
from graph_model.ranking import (
    explain,
    impact_adjusted,
    impact_multiplier,
    impact_of,
    rank_donor,
    relative_probability,
    top_k,
    weigh_impact,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_relative_probability_is_per_row_min_max() -> None:
    scores = np.array([[2.0, 4.0, 3.0], [-1.0, -1.0, -1.0], [0.0, -np.inf, 10.0]])
    np.testing.assert_allclose(
        relative_probability(scores),
        [[0.0, 1.0, 0.5], [1.0, 1.0, 1.0], [0.0, -np.inf, 1.0]],
    )


def test_weight_zero_is_the_model_order_and_weight_one_is_gated_impact() -> None:
    scores = np.array([5.0, 3.0, 1.0, 4.0, 0.0])  # relative: 1, .6, .2, .8, 0
    impact = np.array([0.0, 0.5, 1.0, 1.0, 1.0])
    pure = impact_adjusted(scores, impact, 0.0)
    np.testing.assert_allclose(pure, [1.0, 0.6, 0.2, 0.8, 0.0])
    assert top_k(pure, 5).tolist() == [[0, 3, 1, 2, 4]]
    full = impact_adjusted(scores, impact, 1.0)
    # r * impact: [0, .3, .2, .8, 0]. The top item with no impact drops to the bottom, and the
    # least likely nonprofit stays last although its impact is maximal (the probability gate).
    np.testing.assert_allclose(full, [0.0, 0.3, 0.2, 0.8, 0.0])
    assert top_k(full, 3).tolist() == [[3, 1, 2]]
    half = impact_adjusted(scores, impact, 0.5)  # r * (0.5 + 0.5 * impact)
    np.testing.assert_allclose(half, [0.5, 0.45, 0.2, 0.8, 0.0])


def test_impact_adjusted_keeps_exclusions_and_broadcasts_over_donors() -> None:
    scores = np.array([[1.0, -np.inf, 3.0], [3.0, 2.0, 1.0]])
    adjusted = impact_adjusted(scores, np.array([1.0, 1.0, 0.0]), 0.75)
    assert adjusted.shape == (2, 3)
    assert adjusted[0, 1] == -np.inf
    # Row 0: r = [0, -, 1]; multipliers [1, 1, 0.25] -> [0, -inf, 0.25].
    np.testing.assert_allclose(adjusted[0, [0, 2]], [0.0, 0.25])
    assert top_k(adjusted, 3)[0].tolist() == [2, 0, -1]  # never an excluded item


@settings(max_examples=300, deadline=None)
@given(
    scores=arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 60)),
        # Few distinct values: many ties, and -inf for excluded items.
        elements=st.sampled_from([-np.inf, 0.0, 1.0, 2.0, 2.5, 7.0]),
    ),
    k=st.integers(1, 70),
    groups=st.integers(1, 30),
)
def test_top_k_is_the_head_of_a_stable_sort(scores: np.ndarray, k: int, groups: int) -> None:
    """The bound from the groups' maxima never loses one of the k best (fails when the bound is
    taken one rank too high, ties at the bound are dropped or the scores past the last whole
    round of groups are left out)."""
    expected = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]
    expected = np.where(np.isfinite(np.take_along_axis(scores, expected, 1)), expected, -1)
    assert top_k(scores, k, groups=groups).tolist() == expected.tolist()


@settings(max_examples=400, deadline=None)
@given(
    scores=arrays(
        np.float64,
        st.integers(1, 40),
        elements=st.one_of(
            st.sampled_from([-np.inf, np.inf, np.nan, 0.0, 1.0]),
            st.floats(-1e300, 1e300),  # a span past the float range is nan in both
        ),
    ),
    data=st.data(),
    weight=st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0)),
)
def test_rank_donor_is_relative_probability_then_weigh_impact_bit_for_bit(
    scores: np.ndarray, data: st.DataObject, weight: float | None
) -> None:
    """The serving shortcut against the composition it replaces, over non-finite scores, flat
    rows, everything excluded and zero multipliers (fails when a bound counts an excluded score
    or an excluded score times a zero multiplier is left nan)."""
    excluded = np.array(
        sorted(data.draw(st.sets(st.integers(0, len(scores) - 1)), label="excluded")),
        dtype=np.intp,
    )
    impact = data.draw(arrays(np.float64, len(scores), elements=st.sampled_from([0.0, 0.3, 1.0])))
    multiplier = None if weight is None else impact_multiplier(impact, weight)
    expected = scores.copy()
    expected[excluded] = -np.inf
    expected_relative = relative_probability(expected)
    relative, ranked = rank_donor(scores.copy(), excluded, multiplier)
    np.testing.assert_array_equal(relative, expected_relative, strict=True)
    if multiplier is None:
        np.testing.assert_array_equal(ranked, expected_relative, strict=True)
    else:
        np.testing.assert_array_equal(
            ranked, weigh_impact(expected_relative, multiplier), strict=True
        )


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan")])
def test_impact_adjusted_refuses_a_weight_outside_zero_one(weight: float) -> None:
    with pytest.raises(ValueError, match="impact weight"):
        impact_adjusted(np.zeros(3), np.zeros(3), weight)


def test_impact_adjusted_refuses_bad_impact() -> None:
    with pytest.raises(ValueError, match="one value per nonprofit"):
        impact_adjusted(np.zeros(3), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="impact_of"):
        impact_adjusted(np.zeros(2), np.array([0.5, 2.0]), 0.5)


def test_impact_of_log_scales_need_into_zero_one() -> None:
    impact = impact_of(np.array([0.0, np.e - 1, np.e**2 - 1, -5.0, np.nan]))
    np.testing.assert_allclose(impact, [0.0, 0.5, 1.0, 0.0, 0.0])
    assert impact_of(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]
    assert impact_of(np.array([])).shape == (0,)


def test_explain_names_shared_causes_similar_donors_and_distance() -> None:
    supporters = {"n1": ["me", "ann", "bob"], "n2": ["ann", "bob", "cy"], "n3": ["cy"]}
    why = explain(
        donor="me",
        donor_causes=["health", "water"],
        nonprofit_causes=[
            Cause("water", "Water"), Cause("arts", "Arts"), Cause("health", "Health")
        ],
        donor_nonprofits=["n1"],
        supporters_of=supporters,
        nonprofit="n2",
        donor_home=Home("r1", (40.0, -74.0)),
        nonprofit_home=Home("r2", (41.0, -74.0)),
    )
    assert [c.id for c in why.shared_causes] == ["health", "water"]
    assert why.similar_donors == 2  # ann and bob gave to n1 (like me) and to n2
    assert why.distance_km == pytest.approx(111.2, abs=0.1)  # one degree of latitude
    assert why.summary() == [
        "shares your causes: Health, Water",
        "2 donors who gave where you gave also gave here",
        "111 km away",
    ]
    cold = explain(
        donor_causes=[],
        nonprofit_causes=[Cause("arts", "Arts")],
        donor_nonprofits=[],
        supporters_of=supporters,
        nonprofit="n3",
        donor_home=Home("r1", (40.0, -74.0)),
        nonprofit_home=Home("r1", (40.0, -74.0)),
    )
    assert (cold.shared_causes, cold.similar_donors, cold.same_region) == ((), 0, True)
    assert cold.summary() == ["in your region"]
    # Same region means the same region, online and offline: not merely the same coordinates,
    # and never for an unknown one.
    twin = explain(
        donor_causes=[], nonprofit_causes=[], donor_nonprofits=[], supporters_of={},
        nonprofit="n3", donor_home=Home("r1", (40.0, -74.0)),
        nonprofit_home=Home("r9", (40.0, -74.0)),
    )
    assert (twin.same_region, twin.distance_km) == (False, 0.0)
    unknown = explain(
        donor_causes=[], nonprofit_causes=[], donor_nonprofits=[], supporters_of={},
        nonprofit="n3", donor_home=Home(None), nonprofit_home=Home(None),
    )
    assert (unknown.same_region, unknown.distance_km, unknown.summary()) == (False, None, [])
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(20015.1, abs=0.1)


def test_ranking_does_not_import_tensorflow() -> None:
    code = "import sys, graph_model.ranking; sys.exit('tensorflow' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
