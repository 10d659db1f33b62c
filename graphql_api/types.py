"""GraphQL object types, built from the services' domain values."""

from __future__ import annotations

from enum import Enum

import strawberry

from donor_match import domain


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

    @classmethod
    def of(cls, donor: domain.Donor) -> Donor:
        return cls(
            id=strawberry.ID(donor.id),
            name=donor.name,
            region=Region.of(donor.region),
            causes=[Cause.of(c) for c in donor.causes],
        )


@strawberry.type
class Nonprofit:
    id: strawberry.ID
    name: str
    region: Region | None
    causes: list[Cause]

    @classmethod
    def of(cls, nonprofit: domain.Nonprofit) -> Nonprofit:
        return cls(
            id=strawberry.ID(nonprofit.id),
            name=nonprofit.name,
            region=Region.of(nonprofit.region),
            causes=[Cause.of(c) for c in nonprofit.causes],
        )


@strawberry.type
class Match:
    rank: int = strawberry.field(description="1 for the best match.")
    score: float = strawberry.field(description="Model score; higher is a better match.")
    nonprofit: Nonprofit

    @classmethod
    def of(cls, match: domain.Match) -> Match:
        return cls(rank=match.rank, score=match.score, nonprofit=Nonprofit.of(match.nonprofit))


@strawberry.type
class Donation:
    id: strawberry.ID
    donor_id: strawberry.ID
    nonprofit_id: strawberry.ID
    amount: float
    timestamp: int = strawberry.field(description="Seconds since the Unix epoch, UTC.")

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
