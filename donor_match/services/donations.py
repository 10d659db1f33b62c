"""Recording donations: validate, write once by donation id, announce."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict

from anyio import to_thread

from donor_match.domain import Donation
from donor_match.errors import ConflictError, InvalidInputError
from donor_match.repositories.ports import DonationDraft, DonationOutcome, DonationRepository
from donor_match.services.auth import Principal, Role, require_principal
from donor_match.services.catalog import CatalogService
from donor_match.services.events import EventBus, donation_topic, matches_topic
from donor_match.services.ids import API_WRITER, check_id

MAX_AMOUNT = 1e9
MIN_AMOUNT = 0.01  # the smallest unit: amounts are kept to the cent, and less would round to 0
# A gift's time may run a day ahead of ours (clocks, time zones), not more.
MAX_FUTURE_S = 86_400


class DonationService:
    def __init__(
        self, repository: DonationRepository, catalog: CatalogService, events: EventBus
    ) -> None:
        self._repository = repository
        self._catalog = catalog
        self._events = events

    def record(
        self,
        principal: Principal | None,
        donor_id: str,
        nonprofit_id: str,
        amount: float,
        donation_id: str | None = None,
        ts: int | None = None,
    ) -> Donation:
        """Record a gift once per `donation_id`.

        Donors record their own gifts; integrating platforms and admins record anyone's. Replaying
        one's own gift with the same content changes nothing and announces nothing; with other
        content it is a CONFLICT. An id held by an imported gift or another principal's is a
        CONFLICT too, which says nothing about that gift.
        """
        caller = require_principal(principal)
        caller.require_self_or(donor_id, Role.DONOR, Role.INTEGRATOR, Role.ADMIN)
        if not (math.isfinite(amount) and MIN_AMOUNT <= amount <= MAX_AMOUNT):
            raise InvalidInputError(
                f"amount must be a number in [{MIN_AMOUNT}, {MAX_AMOUNT:g}], got {amount}"
            )
        now = int(time.time())
        if ts is not None and not 0 < ts <= now + MAX_FUTURE_S:
            raise InvalidInputError(
                f"timestamp must be seconds since the Unix epoch, after 0 and at most a day "
                f"from now ({now}), got {ts}"
            )
        donation_id = check_id("id", donation_id) if donation_id is not None else (
            f"donation-{uuid.uuid4()}"
        )
        amount = round(float(amount), 2)
        recorded = self._repository.record(
            DonationDraft(
                donation_id, donor_id, nonprofit_id, amount, ts, now, API_WRITER,
                f"{caller.role}:{caller.subject}",
            )
        )
        outcome = recorded.outcome
        if outcome is DonationOutcome.UNKNOWN:
            # Nothing matched: name which side is unknown.
            self._catalog.donor(donor_id)
            self._catalog.nonprofit(nonprofit_id)
        if outcome is DonationOutcome.DIFFERS:
            raise ConflictError(
                f"donation {donation_id!r} is already recorded with another donor, nonprofit, "
                "amount or timestamp; a gift is never rewritten: record a new gift instead"
            )
        if outcome not in {DonationOutcome.NEW, DonationOutcome.REPLAY} or recorded.ts is None:
            raise _taken(donation_id)
        donation = Donation(donation_id, donor_id, nonprofit_id, amount, recorded.ts)
        if outcome is DonationOutcome.NEW:
            self._events.publish(donation_topic(nonprofit_id), asdict(donation))
            self._events.publish(matches_topic(donor_id), {"donor_id": donor_id})
        return donation

    async def feed(self, principal: Principal | None, nonprofit_id: str) -> AsyncIterator[Donation]:
        """Donations to a nonprofit as they are recorded: for the nonprofit, integrators, admins."""
        require_principal(principal).require_self_or(
            nonprofit_id, Role.NONPROFIT, Role.INTEGRATOR, Role.ADMIN
        )
        await to_thread.run_sync(self._catalog.nonprofit, nonprofit_id)  # NOT_FOUND
        async for event in self._events.subscribe(donation_topic(nonprofit_id)):
            yield Donation(**event)


def _taken(donation_id: str) -> ConflictError:
    # The same words whoever holds the id and whatever it holds: no gift's details leak.
    return ConflictError(
        f"donation id {donation_id!r} cannot be used; omit the id to get a new one"
    )
