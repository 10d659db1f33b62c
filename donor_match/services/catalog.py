"""Reading donors, nonprofits and causes from the graph."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cachetools import TTLCache

from donor_match.domain import Cause, Donor, Initiative, Nonprofit, NonprofitQuery, Region
from donor_match.errors import InvalidInputError, NotFoundError
from donor_match.repositories.ports import CatalogRepository
from donor_match.services.auth import Principal, Role, require_principal

__all__ = ["CatalogService", "NonprofitQuery"]


class CatalogService:
    def __init__(
        self, repository: CatalogRepository, max_page: int = 100, page_cache_s: float = 0.0
    ) -> None:
        self._repository = repository
        self._max_page = max_page
        # A catalog page is the same for every caller, and a store without index-ordered scans
        # (FalkorDB) sorts every nonprofit to answer one; so pages are kept briefly.
        self._pages: TTLCache[tuple[object, ...], list[str]] | None = (
            TTLCache(maxsize=1024, ttl=page_cache_s) if page_cache_s > 0 else None
        )
        self._pages_lock = threading.Lock()

    def donor(self, donor_id: str) -> Donor:
        found = self._repository.donors([donor_id])
        if not found:
            raise NotFoundError(f"donor {donor_id!r} not found")
        return found[0]

    def donor_profile(self, principal: Principal | None, donor_id: str) -> Donor:
        """A donor's profile is private: the donor itself and admins may read it."""
        require_principal(principal).require_self_or(donor_id, Role.DONOR, Role.ADMIN)
        return self.donor(donor_id)

    def nonprofit(self, nonprofit_id: str) -> Nonprofit:
        found = self.nonprofits([nonprofit_id])
        if not found:
            raise NotFoundError(f"nonprofit {nonprofit_id!r} not found")
        return found[0]

    def nonprofits(self, nonprofit_ids: Sequence[str]) -> list[Nonprofit]:
        """The nonprofits that exist, in the order asked for, in one round trip."""
        by_id = {n.id: n for n in self._repository.nonprofits(nonprofit_ids)}
        return [by_id[i] for i in nonprofit_ids if i in by_id]

    def nonprofit_page(
        self, query: NonprofitQuery, first: int, after: str | None
    ) -> tuple[list[str], bool]:
        """Ids of the next `first` nonprofits after the id `after`, and whether more follow."""
        if not 1 <= first <= self._max_page:
            raise InvalidInputError(f"first must be between 1 and {self._max_page}, got {first}")
        key = (query, after or "", first)
        with self._pages_lock:
            ids = self._pages.get(key) if self._pages is not None else None
        if ids is None:
            ids = self._repository.nonprofit_page(query, after or "", first + 1)
            if self._pages is not None:
                with self._pages_lock:
                    self._pages[key] = ids
        return ids[:first], len(ids) > first

    def forget_pages(self) -> None:
        """A nonprofit changed through this process: its next pages are read afresh."""
        if self._pages is not None:
            with self._pages_lock:
                self._pages.clear()

    def nonprofit_ids(self, query: NonprofitQuery) -> set[str]:
        """Every nonprofit id passing the cause and region filters."""
        return self._repository.nonprofit_ids(query)

    def regions(self) -> list[Region]:
        return self._repository.regions()

    def causes(self) -> list[Cause]:
        return self._repository.causes()

    def cause(self, cause_id: str) -> Cause:
        found = [c for c in self.causes() if c.id == cause_id]  # a few dozen causes at most
        if not found:
            raise NotFoundError(f"cause {cause_id!r} not found")
        return found[0]

    def initiatives(self, nonprofit_ids: Sequence[str]) -> dict[str, list[Initiative]]:
        """Each nonprofit's initiatives by id (empty for unknown ids), in one round trip."""
        found: dict[str, list[Initiative]] = {i: [] for i in nonprofit_ids}
        for initiative in self._repository.initiatives(nonprofit_ids):
            found[initiative.nonprofit_id].append(initiative)
        return found
