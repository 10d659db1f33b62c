"""Recording donations: validate, write idempotently by donation id, announce."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict

from anyio import to_thread

from donor_match.domain import Donation
from donor_match.errors import InvalidInputError
from donor_match.services.auth import Principal, Role, require_principal
from donor_match.services.catalog import CatalogService
from donor_match.services.events import EventBus, donation_topic, matches_topic
from donor_match.services.ids import check_id
from graph_store import GraphStore, StoreError, statement

MAX_AMOUNT = 1e9
API_WRITER = "api"  # recorded as the donation's load_id, beside the ETL loads' ids


class DonationService:
    def __init__(
        self, store: GraphStore, catalog: CatalogService, events: EventBus
    ) -> None:
        self._store = store
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
        """Record a gift; replaying the same `donation_id` updates rather than duplicates.

        Donors record their own gifts; integrating platforms and admins record anyone's.
        """
        require_principal(principal).require_self_or(
            donor_id, Role.DONOR, Role.INTEGRATOR, Role.ADMIN
        )
        if not (math.isfinite(amount) and 0 < amount <= MAX_AMOUNT):
            raise InvalidInputError(f"amount must be a number in (0, {MAX_AMOUNT:g}], got {amount}")
        donation_id = check_id("id", donation_id) if donation_id is not None else (
            f"donation-{uuid.uuid4()}"
        )
        amount = round(float(amount), 2)
        params = {
            "id": donation_id,
            "donor_id": donor_id,
            "nonprofit_id": nonprofit_id,
            "amount": amount,
            "ts": ts,
            "now": int(time.time()),
            "load_id": API_WRITER,
        }
        try:
            rows = self._store.write(statement("api/record_donation"), params)
        except StoreError as exc:
            if "already exists" in str(exc) or "ConstraintValidation" in str(exc):
                raise InvalidInputError(
                    f"donation id {donation_id!r} is already used by another donor or nonprofit"
                ) from exc
            raise
        if not rows or rows[0]["written"] == 0:
            # Nothing matched: name which side is unknown.
            self._catalog.donor(donor_id)
            self._catalog.nonprofit(nonprofit_id)
        donation = Donation(
            donation_id, donor_id, nonprofit_id, amount, int(rows[0]["ts"])
        )
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
