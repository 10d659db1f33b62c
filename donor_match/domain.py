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
class Match:
    id: str
    rank: int
    score: float
    nonprofit: Nonprofit
