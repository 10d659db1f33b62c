"""Profiles people edit themselves: donors' preferences, nonprofits' own pages and needs."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace

from anyio import to_thread

from donor_match.domain import Donor, Initiative, InitiativeDraft, Nonprofit
from donor_match.errors import InvalidInputError, NotFoundError
from donor_match.repositories.ports import ProfileRepository
from donor_match.services.auth import Principal, Role, require_principal
from donor_match.services.catalog import CatalogService
from donor_match.services.events import EventBus, matches_topic, nonprofit_topic
from donor_match.services.ids import API_WRITER, check_id

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
    def __init__(
        self,
        repository: ProfileRepository,
        catalog: CatalogService,
        events: EventBus,
        nonprofit_changed: Callable[[str], None] = lambda _nonprofit_id: None,
    ) -> None:
        self._repository = repository
        self._catalog = catalog
        self._events = events
        # Matching ranks by unmet need and shows the profile: tell it what changed.
        self._nonprofit_changed = nonprofit_changed

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
        self._repository.set_donor_preferences(donor_id, cause_ids, budget)
        if region_id is not None:
            self._repository.set_donor_region(donor_id, region_id)
        self._events.publish(matches_topic(donor_id), {"donor_id": donor_id})
        return self._catalog.donor(donor_id)

    def upsert_nonprofit(self, principal: Principal | None, profile: NonprofitProfile) -> Nonprofit:
        """Create or replace a nonprofit's profile: the nonprofit itself, or an admin."""
        require_principal(principal).require_self_or(profile.id, Role.NONPROFIT, Role.ADMIN)
        check_id("id", profile.id)
        name = self._check_page("name", profile.name, profile.description, profile.cause_ids)
        self._check_region(profile.region_id)
        _check_amount("fundingNeed", profile.funding_need)
        self._repository.upsert_nonprofit(
            profile.id, name, profile.description, profile.funding_need, profile.region_id,
            profile.cause_ids,
        )
        self._catalog.forget_pages()
        self._changed(profile.id)
        return self._catalog.nonprofit(profile.id)

    def set_funding_need(
        self, principal: Principal | None, nonprofit_id: str, funding_need: float | None
    ) -> Nonprofit:
        """A nonprofit's current unmet need (None: none stated): the nonprofit or an admin."""
        require_principal(principal).require_self_or(nonprofit_id, Role.NONPROFIT, Role.ADMIN)
        _check_amount("fundingNeed", funding_need)
        if not self._repository.set_funding_need(nonprofit_id, funding_need):
            raise NotFoundError(f"nonprofit {nonprofit_id!r} not found")
        self._changed(nonprofit_id)
        return self._catalog.nonprofit(nonprofit_id)

    def upsert_initiative(self, principal: Principal | None, draft: InitiativeDraft) -> Initiative:
        """Create or replace one of a nonprofit's initiatives: the nonprofit itself, or an admin.

        An existing initiative stays with the nonprofit it belongs to: only its owner (or an
        admin) may change it, and it cannot be moved to another nonprofit.
        """
        caller = require_principal(principal)
        caller.require_self_or(draft.nonprofit_id, Role.NONPROFIT, Role.ADMIN)
        if draft.id is not None:
            check_id("id", draft.id)
            self._check_owner(caller, draft.id, self._owner(draft.id), draft.nonprofit_id)
        title = self._check_page("title", draft.title, draft.description, draft.cause_ids)
        _check_amount("fundingGoal", draft.funding_goal)
        _check_amount("fundingNeed", draft.funding_need)
        if (draft.funding_goal is not None and draft.funding_need is not None
                and draft.funding_need > draft.funding_goal):
            raise InvalidInputError(
                f"fundingNeed ({draft.funding_need}) must not exceed fundingGoal "
                f"({draft.funding_goal})"
            )
        self._catalog.nonprofit(draft.nonprofit_id)  # NOT_FOUND
        initiative_id = draft.id or f"initiative-{uuid.uuid4()}"
        written = self._repository.upsert_initiative(
            replace(draft, id=initiative_id, title=title), API_WRITER, int(time.time())
        )
        if not written:
            # Another nonprofit took the id since the check above: the write refused it.
            self._check_owner(caller, initiative_id, self._owner(initiative_id),
                              draft.nonprofit_id)
        self._changed(draft.nonprofit_id)
        (stored,) = [
            i for i in self._catalog.initiatives([draft.nonprofit_id])[draft.nonprofit_id]
            if i.id == initiative_id
        ]
        return stored

    def delete_initiative(self, principal: Principal | None, initiative_id: str) -> None:
        """Remove an initiative: its nonprofit or an admin."""
        caller = require_principal(principal)
        caller.require(Role.NONPROFIT, Role.ADMIN)
        owner = self._owner(initiative_id)
        if owner is None:
            raise NotFoundError(f"initiative {initiative_id!r} not found")
        caller.require_self_or(owner, Role.NONPROFIT, Role.ADMIN)
        self._repository.delete_initiative(initiative_id)
        self._changed(owner)

    @staticmethod
    def _check_owner(
        caller: Principal, initiative_id: str, owner: str | None, nonprofit_id: str
    ) -> None:
        """An existing initiative stays its owner's: FORBIDDEN for others, BAD_USER_INPUT for a
        move."""
        if owner is None:
            return
        caller.require_self_or(owner, Role.NONPROFIT, Role.ADMIN)
        if owner != nonprofit_id:
            raise InvalidInputError(
                f"initiative {initiative_id!r} belongs to nonprofit {owner!r}; it cannot move"
            )

    def _owner(self, initiative_id: str) -> str | None:
        return self._repository.initiative_owner(initiative_id)

    def _changed(self, nonprofit_id: str) -> None:
        """A nonprofit's profile, need or initiatives changed: tell matching and subscribers."""
        self._nonprofit_changed(nonprofit_id)
        self._events.publish(nonprofit_topic(nonprofit_id), {"nonprofit_id": nonprofit_id})

    async def nonprofit_updates(self, nonprofit_id: str) -> AsyncIterator[Nonprofit]:
        """The nonprofit's (public) profile each time it changes."""
        await to_thread.run_sync(self._catalog.nonprofit, nonprofit_id)  # NOT_FOUND
        async for _ in self._events.subscribe(nonprofit_topic(nonprofit_id)):
            yield await to_thread.run_sync(self._catalog.nonprofit, nonprofit_id)

    def _check_page(
        self, field: str, heading: str, description: str | None, cause_ids: Sequence[str]
    ) -> str:
        """What a nonprofit's or an initiative's page must have; returns the stripped heading."""
        heading = heading.strip()
        if not heading or len(heading) > MAX_NAME:
            raise InvalidInputError(f"{field} must be 1 to {MAX_NAME} characters")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise InvalidInputError(f"description must be at most {MAX_DESCRIPTION} characters")
        if not cause_ids:
            raise InvalidInputError("causeIds must name at least one cause")
        self._check_causes(cause_ids)
        return heading

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
