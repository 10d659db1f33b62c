"""What the services may ask of stored data, in domain terms: the repositories' Protocols.

Each has two implementations that the contract tests (tests/test_repository_contract.py) hold
to one behaviour: `store` runs the statements of `neo4j/api/` on a `GraphStore` (FalkorDB or
Neo4j), `memory` keeps everything in dicts for the services' unit tests. Row keys, statement
names and written-counts stay behind these methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from donor_match.domain import (
    Cause,
    Donor,
    Initiative,
    InitiativeDraft,
    Nonprofit,
    NonprofitQuery,
    Region,
)


class CatalogRepository(Protocol):
    """Reading donors, nonprofits, their initiatives, causes and regions."""

    def donors(self, ids: Sequence[str]) -> list[Donor]:
        """Those of `ids` that exist, in no particular order."""
        ...

    def nonprofits(self, ids: Sequence[str]) -> list[Nonprofit]:
        """Those of `ids` that exist, in no particular order."""
        ...

    def nonprofit_page(self, query: NonprofitQuery, after: str, limit: int) -> list[str]:
        """Ids above `after` that pass every filter of `query`, ascending, at most `limit`."""
        ...

    def nonprofit_ids(self, query: NonprofitQuery) -> set[str]:
        """Ids passing the cause and region filters of `query` (its text is not applied)."""
        ...

    def regions(self) -> list[Region]:
        """Every region, by name then id."""
        ...

    def causes(self) -> list[Cause]:
        """Every cause, by name then id."""
        ...

    def initiatives(self, nonprofit_ids: Sequence[str]) -> list[Initiative]:
        """The initiatives of those nonprofits, by nonprofit id then initiative id."""
        ...


@dataclass(frozen=True)
class DonorContext:
    """What matching needs to know of a donor: where they live and what they care about."""

    region_id: str | None
    location: tuple[float, float] | None  # (lat, lon) of the donor's region
    causes: frozenset[str]  # stated interests and causes of the nonprofits given to
    supported: frozenset[str]  # nonprofits given to


@dataclass(frozen=True)
class ShownNonprofit:
    """What a page of matches shows of a nonprofit, and its home region's coordinates."""

    nonprofit: Nonprofit
    location: tuple[float, float] | None


class ServedMatchCounts(Protocol):
    def count_served(self, hour: int, model_version: str, count: int) -> None:
        """Add `count` matches served by `model_version` in the hour starting at `hour`."""
        ...


class MatchRepository(ServedMatchCounts, Protocol):
    """What ranking and explaining a donor's matches read, and the feedback on them."""

    def donor_context(self, donor_id: str) -> DonorContext | None:
        """None for an unknown donor."""
        ...

    def needs(self) -> dict[str, float]:
        """Unmet funding need of every nonprofit that states one: its own need plus its
        initiatives' (positive values only)."""
        ...

    def needs_changed(self, since: int) -> dict[str, float]:
        """The total need (0.0 for none) of every nonprofit whose need changed at or after
        `since` (by `clock`: the writes of `ProfileRepository` stamp need changes with it)."""
        ...

    def clock(self) -> int:
        """The store's own clock, epoch milliseconds: what need changes are stamped with, so
        that readers and writers in different processes agree on it whatever their clocks
        (0 from a store holding no graph yet, which holds no change either)."""
        ...

    def shown(self, ids: Sequence[str]) -> list[ShownNonprofit]:
        """Those of `ids` that exist, in no particular order."""
        ...

    def record_feedback(
        self, donor_id: str, nonprofit_id: str, action: str, ts: int, model_version: str | None
    ) -> bool:
        """Store a donor's action on a match; False when the donor or nonprofit is unknown."""
        ...


class ProfileRepository(Protocol):
    """Writing what people edit themselves. Every write that changes a nonprofit's need stamps
    it with the store's clock (see `MatchRepository.needs_changed`), not the caller's."""

    def set_donor_preferences(
        self, donor_id: str, cause_ids: Sequence[str], budget: float | None
    ) -> None:
        """Replace the donor's stated causes (unknown ids are skipped) and budget."""
        ...

    def set_donor_region(self, donor_id: str, region_id: str) -> None: ...

    def upsert_nonprofit(
        self,
        nonprofit_id: str,
        name: str,
        description: str | None,
        funding_need: float | None,
        region_id: str,
        cause_ids: Sequence[str],
    ) -> None:
        """Create or replace a nonprofit's page, region and causes."""
        ...

    def set_funding_need(self, nonprofit_id: str, funding_need: float | None) -> bool:
        """False when the nonprofit is unknown."""
        ...

    def upsert_initiative(self, draft: InitiativeDraft, writer: str, now: int) -> bool:
        """Create or replace the initiative `draft.id` (not None) of `draft.nonprofit_id`, its
        causes those of `draft.cause_ids` that exist, its `posted_ts` kept or set to `now`
        (epoch seconds).
        False, writing nothing, when the nonprofit is unknown or another nonprofit owns that
        initiative id (and, as the statement counts what it links, when no cause exists)."""
        ...

    def initiative_owner(self, initiative_id: str) -> str | None: ...

    def delete_initiative(self, initiative_id: str) -> None: ...


class DonationOutcome(StrEnum):
    NEW = "new"  # recorded now
    REPLAY = "replay"  # the same gift was recorded before by the same writer
    DIFFERS = "differs"  # the writer recorded another gift under this id
    TAKEN = "taken"  # the id belongs to an imported gift or another writer's
    UNKNOWN = "unknown"  # the donor or nonprofit does not exist


@dataclass(frozen=True)
class RecordedDonation:
    outcome: DonationOutcome
    ts: int | None  # the stored gift's time, for NEW and REPLAY


@dataclass(frozen=True)
class DonationDraft:
    id: str
    donor_id: str
    nonprofit_id: str
    amount: float
    ts: int | None  # None: `now`
    now: int
    writer: str  # the load id a gift written through the API carries
    recorded_by: str  # "<role>:<subject>" of the caller


class DonationRepository(Protocol):
    def record(self, draft: DonationDraft) -> RecordedDonation:
        """Write the gift once per id, classifying a second write of the id (a concurrent first
        write included) against what is stored."""
        ...


@dataclass(frozen=True)
class SupporterGroup:
    label: str
    donors: int
    amount: float | None


class InsightsRepository(Protocol):
    def supporters_by_region(self, nonprofit_id: str) -> list[SupporterGroup]:
        """Donors to nonprofits sharing a cause with this one (itself included), by home
        region's name ("Unknown" without one), with the sum of those gifts."""
        ...

    def supporters_by_interest(self, nonprofit_id: str) -> list[SupporterGroup]:
        """The same donors by each of their stated causes' names (no amounts)."""
        ...


@dataclass(frozen=True)
class StoredApiKey:
    digest: str  # SHA-256 of the secret
    subject: str
    role: str
    revoked_at: int | None


class ApiKeyRepository(Protocol):
    def create(
        self, key_id: str, digest: str, subject: str, role: str, created_at: int
    ) -> None: ...

    def revoke(self, key_id: str, revoked_at: int) -> bool:
        """False for an unknown key; revoking twice keeps the first time."""
        ...

    def get(self, key_id: str) -> StoredApiKey | None: ...


class AnalystQueryRefusedError(Exception):
    """The analyst graph refused the query: it writes, or goes beyond the reader's rights."""


class AnalystQueryFailedError(Exception):
    """The query failed in the analyst graph; the message is the server's own diagnosis."""


class AnalystQueryTimeoutError(AnalystQueryFailedError):
    """The query ran past the analyst store's time limit, and the server stopped it."""


class AnalystGraph(Protocol):
    """The anonymized copy of the graph, read with analysts' own Cypher. A store that cannot be
    reached raises `graph_store.errors.StoreUnavailableError` as it is."""

    def run(self, cypher: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Rows keyed by column; raises AnalystQueryRefusedError or AnalystQueryFailedError."""
        ...

    def present(self) -> bool:
        """Whether the graph holds anything; AnalystQueryFailedError when it cannot be read."""
        ...


@dataclass(frozen=True)
class Repositories:
    """One of each, over one store (or one in-memory graph)."""

    catalog: CatalogRepository
    matches: MatchRepository
    profiles: ProfileRepository
    donations: DonationRepository
    insights: InsightsRepository
    api_keys: ApiKeyRepository
