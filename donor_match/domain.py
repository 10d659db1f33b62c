"""What the services hand to their callers: plain values, no store or GraphQL types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # its home is donor_match.reasons, which builds on the values here
    from donor_match.reasons import MatchReasons


@dataclass(frozen=True)
class NonprofitQuery:
    """Filters on nonprofits; None matches everything."""

    cause_ids: tuple[str, ...] | None = None
    region_ids: tuple[str, ...] | None = None
    text: str | None = None

    @property
    def filters_causes_or_regions(self) -> bool:
        return self.cause_ids is not None or self.region_ids is not None

    @property
    def name_contains(self) -> str | None:
        """The text filter as it applies: stripped, None when blank."""
        return self.text.strip() if self.text and self.text.strip() else None


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
class InitiativeDraft:
    """An initiative as its nonprofit writes it; no id creates a new one."""

    nonprofit_id: str
    title: str
    cause_ids: tuple[str, ...]
    id: str | None = None
    description: str | None = None
    funding_goal: float | None = None
    funding_need: float | None = None  # the unmet part of the goal


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
