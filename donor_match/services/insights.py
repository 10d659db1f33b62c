"""Aggregate, privacy-safe insight for a nonprofit into who supports causes like its own.

Only counts and sums leave this service, and only for groups of at least `min_group` donors:
smaller groups could single people out, so they are suppressed and merely counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from donor_match.repositories.ports import InsightsRepository
from donor_match.services.auth import Principal, Role, require_principal
from donor_match.services.catalog import CatalogService


@dataclass(frozen=True)
class InsightGroup:
    label: str
    donors: int
    total_amount: float | None  # rounded to whole currency units


@dataclass(frozen=True)
class NonprofitInsights:
    supporter_regions: list[InsightGroup]
    supporter_interests: list[InsightGroup]
    suppressed_groups: int
    min_group_size: int


class InsightsService:
    def __init__(
        self, repository: InsightsRepository, catalog: CatalogService, min_group: int
    ) -> None:
        self._repository = repository
        self._catalog = catalog
        self._min_group = min_group

    def for_nonprofit(self, principal: Principal | None, nonprofit_id: str) -> NonprofitInsights:
        require_principal(principal).require_self_or(nonprofit_id, Role.NONPROFIT, Role.ADMIN)
        self._catalog.nonprofit(nonprofit_id)  # NOT_FOUND
        suppressed = 0
        kept: dict[str, list[InsightGroup]] = {}
        for kind, read in (
            ("regions", self._repository.supporters_by_region),
            ("interests", self._repository.supporters_by_interest),
        ):
            groups = [
                InsightGroup(
                    group.label,
                    group.donors,
                    round(group.amount) if group.amount is not None else None,
                )
                for group in read(nonprofit_id)
            ]
            kept[kind] = sorted(
                (g for g in groups if g.donors >= self._min_group),
                key=lambda g: (-g.donors, g.label),
            )
            suppressed += len(groups) - len(kept[kind])
        return NonprofitInsights(kept["regions"], kept["interests"], suppressed, self._min_group)
