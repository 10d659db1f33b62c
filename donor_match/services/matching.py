"""Personal matches: top-K nonprofits for a donor from the served model's embeddings."""

from __future__ import annotations

from donor_match.domain import Match
from donor_match.errors import InvalidInputError, UnavailableError
from donor_match.services.auth import Principal, Role, require_principal
from donor_match.services.catalog import CatalogService, NonprofitQuery
from graph_model.artifacts import ModelArtifact
from graph_store import GraphStore, statement


class MatchService:
    def __init__(
        self,
        store: GraphStore,
        catalog: CatalogService,
        model: ModelArtifact | None,
        max_first: int,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._model = model
        self._max_first = max_first

    @property
    def model(self) -> ModelArtifact | None:
        return self._model

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
        if self._model is None:
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
            excluded |= set(self._model.nonprofit_ids) - self._catalog.nonprofit_ids(only)
        ranked = self._model.recommend(donor_id, first, exclude=excluded)
        nonprofits = {n.id: n for n in self._catalog.nonprofits([i for i, _ in ranked])}
        present = [(nonprofits[i], score) for i, score in ranked if i in nonprofits]
        return [
            Match(rank=rank, score=score, nonprofit=nonprofit)
            for rank, (nonprofit, score) in enumerate(present, start=1)
        ]
