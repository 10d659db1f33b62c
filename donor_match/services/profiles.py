"""Profiles people edit themselves: donors' preferences, nonprofits' own pages and needs."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from anyio import to_thread

from donor_match.domain import Donor, Nonprofit
from donor_match.errors import InvalidInputError
from donor_match.services.auth import Principal, Role, require_principal
from donor_match.services.catalog import CatalogService
from donor_match.services.events import EventBus, matches_topic, nonprofit_topic
from graph_store import GraphStore, statement

MAX_NAME = 200
MAX_DESCRIPTION = 5_000
MAX_CAUSES = 20


@dataclass(frozen=True)
class NonprofitProfile:
    id: str
    name: str
    region_id: str
    cause_ids: tuple[str, ...]
    description: str | None = None
    funding_need: float | None = None  # unmet funding the nonprofit asks for


class ProfileService:
    def __init__(self, store: GraphStore, catalog: CatalogService, events: EventBus) -> None:
        self._store = store
        self._catalog = catalog
        self._events = events

    def set_donor_preferences(
        self,
        principal: Principal | None,
        donor_id: str,
        cause_ids: Sequence[str],
        region_id: str | None = None,
        budget: float | None = None,
    ) -> Donor:
        """Replace the donor's stated causes (and region and budget, when given)."""
        require_principal(principal).require_self_or(donor_id, Role.DONOR, Role.ADMIN)
        self._check_causes(cause_ids)
        if region_id is not None:
            self._check_region(region_id)
        _check_amount("budget", budget)
        self._catalog.donor(donor_id)  # NOT_FOUND
        self._store.write(
            statement("api/set_donor_preferences"),
            {"donor_id": donor_id, "cause_ids": list(dict.fromkeys(cause_ids)), "budget": budget},
        )
        if region_id is not None:
            self._store.write(
                statement("api/set_donor_region"), {"donor_id": donor_id, "region_id": region_id}
            )
        self._events.publish(matches_topic(donor_id), {"donor_id": donor_id})
        return self._catalog.donor(donor_id)

    def upsert_nonprofit(self, principal: Principal | None, profile: NonprofitProfile) -> Nonprofit:
        """Create or replace a nonprofit's profile: the nonprofit itself, or an admin."""
        require_principal(principal).require_self_or(profile.id, Role.NONPROFIT, Role.ADMIN)
        name = profile.name.strip()
        if not name or len(name) > MAX_NAME:
            raise InvalidInputError(f"name must be 1 to {MAX_NAME} characters")
        if profile.description is not None and len(profile.description) > MAX_DESCRIPTION:
            raise InvalidInputError(f"description must be at most {MAX_DESCRIPTION} characters")
        if not profile.cause_ids:
            raise InvalidInputError("causeIds must name at least one cause")
        self._check_causes(profile.cause_ids)
        self._check_region(profile.region_id)
        _check_amount("fundingNeed", profile.funding_need)
        self._store.write(
            statement("api/upsert_nonprofit"),
            {"id": profile.id, "name": name, "description": profile.description,
             "funding_need": profile.funding_need, "region_id": profile.region_id},
        )
        self._store.write(
            statement("api/set_nonprofit_causes"),
            {"id": profile.id, "cause_ids": list(dict.fromkeys(profile.cause_ids))},
        )
        self._events.publish(nonprofit_topic(profile.id), {"nonprofit_id": profile.id})
        return self._catalog.nonprofit(profile.id)

    async def nonprofit_updates(self, nonprofit_id: str) -> AsyncIterator[Nonprofit]:
        """The nonprofit's (public) profile each time it changes."""
        await to_thread.run_sync(self._catalog.nonprofit, nonprofit_id)  # NOT_FOUND
        async for _ in self._events.subscribe(nonprofit_topic(nonprofit_id)):
            yield await to_thread.run_sync(self._catalog.nonprofit, nonprofit_id)

    def _check_causes(self, cause_ids: Sequence[str]) -> None:
        if len(cause_ids) > MAX_CAUSES:
            raise InvalidInputError(f"at most {MAX_CAUSES} causes, got {len(cause_ids)}")
        unknown = sorted(set(cause_ids) - {c.id for c in self._catalog.causes()})
        if unknown:
            raise InvalidInputError(f"unknown cause ids: {', '.join(unknown)}")

    def _check_region(self, region_id: str) -> None:
        if region_id not in {r.id for r in self._catalog.regions()}:
            raise InvalidInputError(f"unknown region id: {region_id}")


def _check_amount(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0 <= value <= 1e12):
        raise InvalidInputError(f"{name} must be a finite amount of at least 0, got {value}")
