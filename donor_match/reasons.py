"""Why a nonprofit was matched to a donor: one type, one meaning of every field, online and
offline.

The API's matches (donor_match.services.matching) and the evaluation report's examples
(graph_model.ranking.explain) both build their reasons with `explain` below, so "same region"
or "distance" cannot mean one thing in one and another in the other. Plain values only: the
model side imports this without the services.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from donor_match.domain import Cause


@dataclass(frozen=True)
class Home:
    """Where a donor or nonprofit is based: its region, and that region's (lat, lon)."""

    region_id: str | None
    location: tuple[float, float] | None = None


@dataclass(frozen=True)
class MatchReasons:
    # The donor's stated causes and the causes of nonprofits they gave to, that this nonprofit
    # works on; by id.
    shared_causes: tuple[Cause, ...]
    # Other donors who gave to one of the nonprofits the donor gave to (not this one) and also
    # gave here; the donor never counts.
    similar_donors: int
    # Between the donor's and the nonprofit's home regions, to 0.1 km; None when either region
    # or its coordinates are unknown.
    distance_km: float | None
    # Both have a home region, and it is the same region.
    same_region: bool

    def summary(self) -> list[str]:
        """The reasons as short sentences for a donor."""
        out = []
        if self.shared_causes:
            out.append("shares your causes: " + ", ".join(c.name for c in self.shared_causes))
        if self.similar_donors:
            plural = "s" if self.similar_donors != 1 else ""
            out.append(
                f"{self.similar_donors} donor{plural} who gave where you gave also gave here"
            )
        if self.same_region:
            out.append("in your region")
        elif self.distance_km is not None:
            out.append(f"{self.distance_km:.0f} km away")
        return out


def explain(
    *,
    donor_causes: Collection[str],
    nonprofit_causes: Iterable[Cause],
    similar_donors: int,
    donor_home: Home,
    nonprofit_home: Home,
) -> MatchReasons:
    """The reasons for one match. `donor_causes`: ids of the donor's stated causes and of the
    causes of nonprofits they gave to; `nonprofit_causes` are kept in id order."""
    shared = tuple(
        sorted((c for c in nonprofit_causes if c.id in donor_causes), key=lambda c: c.id)
    )
    distance = None
    if donor_home.location is not None and nonprofit_home.location is not None:
        distance = round(haversine_km(*donor_home.location, *nonprofit_home.location), 1)
    same_region = (
        donor_home.region_id is not None and donor_home.region_id == nonprofit_home.region_id
    )
    return MatchReasons(shared, similar_donors, distance, same_region)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres (math, not numpy: on Python floats numpy's per-call
    cost made this several times slower, once per match of every page)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))
