"""Personal matches: top-K nonprofits for a donor from the served model's embeddings."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from enum import StrEnum

from anyio import to_thread

from donor_match.domain import Match
from donor_match.errors import InvalidInputError, UnavailableError
from donor_match.services.auth import Principal, Role, require_principal
from donor_match.services.catalog import CatalogService, NonprofitQuery
from donor_match.services.events import EventBus, matches_topic
from donor_match.services.served_model import ServedModel
from graph_model.artifacts import ModelArtifact
from graph_store import GraphStore, statement


class FeedbackAction(StrEnum):
    CLICKED = "CLICKED"
    DISMISSED = "DISMISSED"
    DONATED = "DONATED"


def match_id(donor_id: str, nonprofit_id: str) -> str:
    """An opaque id for a (donor, nonprofit) match, so feedback can name what it is about."""
    return base64.urlsafe_b64encode(json.dumps([donor_id, nonprofit_id]).encode()).decode()


def parse_match_id(value: str) -> tuple[str, str]:
    try:
        donor_id, nonprofit_id = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidInputError(f"matchId {value!r} is not a match id from this API") from exc
    if not (isinstance(donor_id, str) and isinstance(nonprofit_id, str)):
        raise InvalidInputError(f"matchId {value!r} is not a match id from this API")
    return donor_id, nonprofit_id


class MatchService:
    def __init__(
        self,
        store: GraphStore,
        catalog: CatalogService,
        model: ServedModel,
        max_first: int,
        events: EventBus,
    ) -> None:
        self._events = events
        self._store = store
        self._catalog = catalog
        self._model = model
        self._max_first = max_first

    @property
    def model(self) -> ModelArtifact | None:
        return self._model.current()

    def matches(
        self,
        principal: Principal | None,
        donor_id: str,
        first: int,
        only: NonprofitQuery | None = None,
        exclude_supported: bool = True,
    ) -> list[Match]:
        """The donor's best `first` nonprofits among those `only` admits, by default excluding
        those the donor already gives to."""
        require_principal(principal).require_self_or(donor_id, Role.DONOR, Role.ADMIN)
        if not 1 <= first <= self._max_first:
            raise InvalidInputError(f"first must be between 1 and {self._max_first}, got {first}")
        self._catalog.donor(donor_id)  # NOT_FOUND for unknown donors
        model = self._model.current()
        if model is None:
            raise UnavailableError("no trained model is served yet; run `donor-match train`")
        excluded: set[str] = set()
        if exclude_supported:
            # From the live graph, so gifts made after training count.
            excluded |= {
                row["id"]
                for row in self._store.read(
                    statement("api/supported_nonprofit_ids"), {"donor_id": donor_id}
                )
            }
        if only is not None and (only.cause_ids is not None or only.region_ids is not None):
            excluded |= set(model.nonprofit_ids) - self._catalog.nonprofit_ids(only)
        ranked = model.recommend(donor_id, first, exclude=excluded)
        nonprofits = {n.id: n for n in self._catalog.nonprofits([i for i, _ in ranked])}
        present = [(nonprofits[i], score) for i, score in ranked if i in nonprofits]
        return [
            Match(match_id(donor_id, n.id), rank, score, n)
            for rank, (n, score) in enumerate(present, start=1)
        ]

    async def updates(
        self, principal: Principal | None, donor_id: str, first: int
    ) -> AsyncIterator[list[Match]]:
        """The donor's matches again after each change to them (preferences, gifts)."""
        require_principal(principal).require_self_or(donor_id, Role.DONOR, Role.ADMIN)
        await to_thread.run_sync(self._catalog.donor, donor_id)  # NOT_FOUND before waiting
        async for _ in self._events.subscribe(matches_topic(donor_id)):
            yield await to_thread.run_sync(self.matches, principal, donor_id, first)

    def record_feedback(
        self, principal: Principal | None, match: str, action: FeedbackAction
    ) -> None:
        """Store what the donor did with a match; it becomes training signal."""
        donor_id, nonprofit_id = parse_match_id(match)
        require_principal(principal).require_self_or(donor_id, Role.DONOR, Role.ADMIN)
        rows = self._store.write(
            statement("api/record_feedback"),
            {"donor_id": donor_id, "nonprofit_id": nonprofit_id, "action": str(action),
             "ts": int(time.time()), "model_version": self.model.version if self.model else None},
        )
        if not rows or rows[0]["written"] == 0:
            self._catalog.donor(donor_id)
            self._catalog.nonprofit(nonprofit_id)
