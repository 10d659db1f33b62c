"""What the services hand to their callers: plain values, no store or GraphQL types."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    id: str
    name: str


@dataclass(frozen=True)
class Region:
    id: str
    name: str


@dataclass(frozen=True)
class Donor:
    id: str
    name: str
    region: Region | None
    causes: tuple[Cause, ...]
    budget: float | None = None


@dataclass(frozen=True)
class Nonprofit:
    id: str
    name: str
    region: Region | None
    causes: tuple[Cause, ...]
    description: str | None = None
    funding_need: float | None = None


@dataclass(frozen=True)
class Donation:
    id: str
    donor_id: str
    nonprofit_id: str
    amount: float
    ts: int  # epoch seconds, UTC


@dataclass(frozen=True)
class Initiative:
    """A nonprofit's campaign or project, with what it still needs."""

    id: str
    nonprofit_id: str
    title: str | None
    causes: tuple[Cause, ...]
    description: str | None = None
    funding_goal: float | None = None
    funding_need: float | None = None  # unmet part of the goal
    posted_ts: int | None = None


@dataclass(frozen=True)
class MatchReasons:
    shared_causes: tuple[Cause, ...]  # the donor's stated or given-to causes the nonprofit serves
    similar_donors: int  # others who gave where the donor gave and also gave here
    distance_km: float | None  # donor's region to the nonprofit's region; None when unknown
    same_region: bool


@dataclass(frozen=True)
class Match:
    id: str
    rank: int
    score: float  # the ranking score: the model's per-donor min-max score adjusted for impact
    nonprofit: Nonprofit
    probability: float  # calibrated on the holdout (graph_model.calibration), in [0, 1]
    impact: float  # the nonprofit's impact from its unmet funding need, in [0, 1]
    reasons: MatchReasons
    cursor: str  # `after` this continues with the next match
