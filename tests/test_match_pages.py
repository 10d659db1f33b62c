"""A page of matches is the best scores after the cursor, best first, ties by position."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from donor_match.services.matching import _page

# Few distinct values, so ties are common; -inf marks excluded nonprofits.
score = st.sampled_from([-np.inf, 0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1)


def expected(scores: list[float], first: int, after: tuple[float, int] | None) -> list[int]:
    ranked = sorted(
        (p for p, s in enumerate(scores) if np.isfinite(s)), key=lambda p: (-scores[p], p)
    )
    if after is not None:
        ranked = [p for p in ranked if (-scores[p], p) > (-after[0], after[1])]
    return ranked[:first]


@settings(max_examples=300, deadline=None)
@given(
    # Up to 5,000 scores: past the ~2,000 where the page is found from a sample's bound.
    scores=arrays(np.float64, st.integers(1, 5_000), elements=score),
    first=st.integers(1, 30),
    cursor_at=st.none() | st.integers(0, 4_999),
)
def test_a_page_is_the_best_scores_after_the_cursor(
    scores: np.ndarray, first: int, cursor_at: int | None
) -> None:
    after = None
    if cursor_at is not None and cursor_at < len(scores) and np.isfinite(scores[cursor_at]):
        after = (float(scores[cursor_at]), cursor_at)
    assert _page(scores, first, after) == expected(scores.tolist(), first, after)
