"""GraphQL object types, built from the services' domain values."""

from __future__ import annotations

from enum import Enum
from typing import cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from donor_match import domain, reasons
from donor_match.services import insights, matching
from donor_match.services.catalog import NonprofitQuery
from donor_match.services.profiles import InitiativeDraft, NonprofitProfile
from graphql_api.context import Context


@strawberry.type
class Cause:
    id: strawberry.ID
    name: str

    @classmethod
    def of(cls, cause: domain.Cause) -> Cause:
        return cls(id=strawberry.ID(cause.id), name=cause.name)


@strawberry.type
class Region:
    id: strawberry.ID
    name: str

    @classmethod
    def of(cls, region: domain.Region | None) -> Region | None:
        return cls(id=strawberry.ID(region.id), name=region.name) if region else None


@strawberry.type
class Donor:
    id: strawberry.ID
    name: str
    region: Region | None
    causes: list[Cause] = strawberry.field(description="Causes the donor says they care about.")
    budget: float | None = strawberry.field(description="What the donor plans to give.")

    @classmethod
    def of(cls, donor: domain.Donor) -> Donor:
        return cls(
            id=strawberry.ID(donor.id),
            name=donor.name,
            region=Region.of(donor.region),
            causes=[Cause.of(c) for c in donor.causes],
            budget=donor.budget,
        )


@strawberry.type(description="A nonprofit's campaign or project and what it still needs.")
class Initiative:
    id: strawberry.ID
    nonprofit_id: strawberry.ID
    title: str | None
    description: str | None
    causes: list[Cause]
    funding_goal: float | None = strawberry.field(description="What the initiative raises in all.")
    funding_need: float | None = strawberry.field(description="The unmet part of the goal.")
    posted_at: int | None = strawberry.field(description="Seconds since the Unix epoch, UTC.")

    @classmethod
    def of(cls, initiative: domain.Initiative) -> Initiative:
        return cls(
            id=strawberry.ID(initiative.id),
            nonprofit_id=strawberry.ID(initiative.nonprofit_id),
            title=initiative.title,
            description=initiative.description,
            causes=[Cause.of(c) for c in initiative.causes],
            funding_goal=initiative.funding_goal,
            funding_need=initiative.funding_need,
            posted_at=initiative.posted_ts,
        )


@strawberry.type
class Nonprofit:
    id: strawberry.ID
    name: str
    region: Region | None
    causes: list[Cause]
    description: str | None
    funding_need: float | None = strawberry.field(description="Unmet funding it asks for.")

    @strawberry.field(description="Its initiatives by id (batched across nonprofits).")
    async def initiatives(self, info: Info[Context, None]) -> list[Initiative]:
        found = await info.context.initiative_loader.load(self.id)
        return [Initiative.of(i) for i in found]

    @classmethod
    def of(cls, nonprofit: domain.Nonprofit) -> Nonprofit:
        return cls(
            id=strawberry.ID(nonprofit.id),
            name=nonprofit.name,
            region=Region.of(nonprofit.region),
            causes=[Cause.of(c) for c in nonprofit.causes],
            description=nonprofit.description,
            funding_need=nonprofit.funding_need,
        )


@strawberry.type(description="Why a nonprofit was matched to the donor.")
class MatchReasons:
    shared_causes: list[Cause] = strawberry.field(
        description="The donor's stated or given-to causes that the nonprofit works on."
    )
    similar_donors: int = strawberry.field(
        description="Other donors who gave where this donor gave and also gave here."
    )
    distance_km: float | None = strawberry.field(
        description="From the donor's region to the nonprofit's; null when either is unknown."
    )
    same_region: bool

    @strawberry.field(description="The reasons as short sentences.")
    def summary(self) -> list[str]:
        # Written only when asked for: most pages show the structured reasons alone. `self` is
        # the service's own donor_match.reasons.MatchReasons (see `Match`).
        return cast(reasons.MatchReasons, self).summary()


# Served as the matching service's own domain.Match, with the domain's Nonprofit, MatchReasons
# and Causes inside it: the field names are the same, and copying every page into these classes
# was ~0.1 ms of a request's CPU (bench/api_load.py; docs/api-performance.md).
@strawberry.type
class Match:
    id: strawberry.ID = strawberry.field(description="Names this match in `matchFeedback`.")
    rank: int = strawberry.field(description="1 for the best match on this page.")
    score: float = strawberry.field(
        description="What matches are ranked by: the model's score rescaled to [0, 1] for this "
        "donor, adjusted by impact (higher first)."
    )
    probability: float = strawberry.field(
        description="The calibrated probability that the donor gives here for the first time "
        "within the model's holdout period (Platt scaling fitted on the holdout), in [0, 1]."
    )
    impact: float = strawberry.field(
        description="The nonprofit's impact from its unmet funding need, in [0, 1]; "
        "score = rescaled model score * ((1 - impactWeight) + impactWeight * impact)."
    )
    cursor: str = strawberry.field(description="Pass as `after` for the matches after this one.")
    nonprofit: Nonprofit
    reasons: MatchReasons

    @staticmethod
    def served(found: list[domain.Match]) -> list[Match]:
        """The service's matches as this type serves them: as they are (see the class)."""
        return cast(list[Match], found)


@strawberry.type
class Donation:
    id: strawberry.ID
    donor_id: strawberry.ID
    nonprofit_id: strawberry.ID
    amount: float
    timestamp: int = strawberry.field(description="Seconds since the Unix epoch, UTC.")

    @strawberry.field(description="The nonprofit given to (batched across donations).")
    async def nonprofit(self, info: Info[Context, None]) -> Nonprofit | None:
        return await info.context.nonprofit_loader.load(self.nonprofit_id)

    @classmethod
    def of(cls, donation: domain.Donation) -> Donation:
        return cls(
            id=strawberry.ID(donation.id),
            donor_id=strawberry.ID(donation.donor_id),
            nonprofit_id=strawberry.ID(donation.nonprofit_id),
            amount=donation.amount,
            timestamp=donation.ts,
        )



@strawberry.input
class RecordDonationInput:
    donor_id: strawberry.ID
    nonprofit_id: strawberry.ID
    amount: float = strawberry.field(description="Positive amount in the platform's currency.")
    id: strawberry.ID | None = strawberry.field(
        default=None, description="Idempotency key: replaying the same id records one donation."
    )
    timestamp: int | None = strawberry.field(
        default=None, description="Seconds since the Unix epoch; defaults to now."
    )


@strawberry.enum
class KeyRole(Enum):
    INTEGRATOR = "integrator"
    ANALYST = "analyst"


@strawberry.type
class ApiKey:
    id: strawberry.ID
    key: str = strawberry.field(description="The secret; shown only in this response.")


@strawberry.input(description="Nonprofits matching all given filters; omitted filters match all.")
class NonprofitFilter:
    cause_ids: list[strawberry.ID] | None = None
    region_ids: list[strawberry.ID] | None = None
    text: str | None = strawberry.field(default=None, description="Part of the name.")

    def query(self) -> NonprofitQuery:
        return NonprofitQuery(
            tuple(self.cause_ids) if self.cause_ids is not None else None,
            tuple(self.region_ids) if self.region_ids is not None else None,
            self.text,
        )


@strawberry.input
class MatchFilter:
    causes: list[strawberry.ID] | None = None
    regions: list[strawberry.ID] | None = None
    exclude_supported: bool = strawberry.field(
        default=True, description="Leave out nonprofits the donor already gives to."
    )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class NonprofitEdge:
    cursor: str
    node: Nonprofit


@strawberry.type
class NonprofitConnection:
    edges: list[NonprofitEdge]
    page_info: PageInfo


@strawberry.input
class DonorPreferencesInput:
    cause_ids: list[strawberry.ID] = strawberry.field(description="Replaces the stated causes.")
    region_id: strawberry.ID | None = None
    budget: float | None = None


@strawberry.input
class NonprofitProfileInput:
    id: strawberry.ID
    name: str
    region_id: strawberry.ID
    cause_ids: list[strawberry.ID]
    description: str | None = None
    funding_need: float | None = None

    def profile(self) -> NonprofitProfile:
        return NonprofitProfile(
            self.id, self.name, self.region_id, tuple(self.cause_ids), self.description,
            self.funding_need,
        )


@strawberry.input(description="An initiative as its nonprofit writes it; no id creates one.")
class InitiativeInput:
    nonprofit_id: strawberry.ID
    title: str
    cause_ids: list[strawberry.ID]
    id: strawberry.ID | None = strawberry.field(
        default=None, description="The initiative to replace; omitted: a new one."
    )
    description: str | None = None
    funding_goal: float | None = None
    funding_need: float | None = strawberry.field(
        default=None, description="The unmet part of the goal; counts toward match impact."
    )

    def draft(self) -> InitiativeDraft:
        return InitiativeDraft(
            self.nonprofit_id, self.title, tuple(self.cause_ids), self.id, self.description,
            self.funding_goal, self.funding_need,
        )


# The service's enum, registered as a GraphQL enum in place, and named here for the schema.
strawberry.enum(matching.FeedbackAction)
FeedbackAction = matching.FeedbackAction


@strawberry.type
class AnalyticsResult:
    columns: list[str]
    rows: list[JSON] = strawberry.field(description="One list of values per row, by column.")
    truncated: bool = strawberry.field(description="More rows matched than the row cap.")


@strawberry.type
class InsightGroup:
    label: str
    donors: int
    total_amount: float | None


@strawberry.type(description="Aggregates only; groups smaller than minGroupSize are suppressed.")
class NonprofitInsights:
    supporter_regions: list[InsightGroup]
    supporter_interests: list[InsightGroup]
    suppressed_groups: int
    min_group_size: int

    @classmethod
    def of(cls, found: insights.NonprofitInsights) -> NonprofitInsights:
        def groups(items: list[insights.InsightGroup]) -> list[InsightGroup]:
            return [InsightGroup(label=g.label, donors=g.donors, total_amount=g.total_amount)
                    for g in items]

        return cls(
            supporter_regions=groups(found.supporter_regions),
            supporter_interests=groups(found.supporter_interests),
            suppressed_groups=found.suppressed_groups,
            min_group_size=found.min_group_size,
        )


@strawberry.type(description="The model version served after a promotion.")
class ModelPromotion:
    version: str
    previous: str | None = strawberry.field(description="What was served before, if anything.")
    changed: bool = strawberry.field(description="False when the version was already served.")
