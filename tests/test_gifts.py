"""The supporters index behind the API's similar-donor reasons, against the offline explanation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from donor_match.reasons import Home
from graph_model.gifts import Supporters
from graph_model.ranking import explain


def test_supporters_are_the_distinct_donors_of_each_nonprofit() -> None:
    donors = np.array([3, 1, 3, 0, 2])
    nonprofits = np.array([1, 1, 1, 0, 1])  # donor 3 gave to nonprofit 1 twice
    supporters = Supporters(donors, nonprofits, num_nonprofits=3)
    assert supporters.of(0).tolist() == [0]
    assert supporters.of(1).tolist() == [1, 2, 3]
    assert supporters.of(2).tolist() == []


gifts = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 5)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(
    gifts=gifts,
    donor=st.one_of(st.none(), st.integers(0, 9)),
    supported=st.frozensets(st.integers(0, 5), max_size=4),
    candidates=st.lists(st.integers(0, 5), min_size=1, max_size=6),
)
def test_similar_donors_match_the_offline_explanation(
    gifts: list[tuple[int, int]],
    donor: int | None,
    supported: frozenset[int],
    candidates: list[int],
) -> None:
    donors = np.array([d for d, _ in gifts], dtype=np.int64)
    nonprofits = np.array([n for _, n in gifts], dtype=np.int64)
    counts = Supporters(donors, nonprofits, num_nonprofits=6).similar_donors(
        supported, candidates, donor
    )
    supporters_of: dict[str, list[str]] = {}
    for d, n in gifts:
        supporters_of.setdefault(str(n), []).append(str(d))
    expected = [
        explain(
            donor_causes=[],
            nonprofit_causes=[],
            donor_nonprofits=[str(n) for n in supported],
            supporters_of=supporters_of,
            nonprofit=str(candidate),
            donor=None if donor is None else str(donor),
            donor_home=Home(None),
            nonprofit_home=Home(None),
        ).similar_donors
        for candidate in candidates
    ]
    assert counts == expected
