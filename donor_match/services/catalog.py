"""Reading donors, nonprofits and causes from the graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from donor_match.domain import Cause, Donor, Initiative, Nonprofit, Region
from donor_match.errors import InvalidInputError, NotFoundError
from donor_match.services.auth import Principal, Role, require_principal
from graph_store import GraphStore, Row, statement


@dataclass(frozen=True)
class NonprofitQuery:
    """Filters on nonprofits; None matches everything."""

    cause_ids: tuple[str, ...] | None = None
    region_ids: tuple[str, ...] | None = None
    text: str | None = None

    def params(self, *, text: bool = True) -> dict[str, object]:
        params: dict[str, object] = {
            "cause_ids": list(self.cause_ids) if self.cause_ids is not None else None,
            "region_ids": list(self.region_ids) if self.region_ids is not None else None,
        }
        if text:
            params["text"] = self.text.strip() if self.text and self.text.strip() else None
        return params


class CatalogService:
    def __init__(self, store: GraphStore, max_page: int = 100) -> None:
        self._store = store
        self._max_page = max_page

    def donor(self, donor_id: str) -> Donor:
        rows = self._store.read(statement("api/donors_by_ids"), {"ids": [donor_id]})
        if not rows:
            raise NotFoundError(f"donor {donor_id!r} not found")
        row = rows[0]
        return Donor(row["id"], row["name"], _region(row), _causes(row), row["budget"])

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
        rows = self._store.read(statement("api/nonprofits_by_ids"), {"ids": list(nonprofit_ids)})
        by_id = {
            row["id"]: Nonprofit(
                row["id"], row["name"], _region(row), _causes(row),
                row["description"], row["funding_need"],
            )
            for row in rows
        }
        return [by_id[i] for i in nonprofit_ids if i in by_id]

    def nonprofit_page(
        self, query: NonprofitQuery, first: int, after: str | None
    ) -> tuple[list[str], bool]:
        """Ids of the next `first` nonprofits after the id `after`, and whether more follow."""
        if not 1 <= first <= self._max_page:
            raise InvalidInputError(f"first must be between 1 and {self._max_page}, got {first}")
        rows = self._store.read(
            statement("api/nonprofits_page"),
            {**query.params(), "after": after or "", "limit": first + 1},
        )
        ids = [row["id"] for row in rows]
        return ids[:first], len(ids) > first

    def nonprofit_ids(self, query: NonprofitQuery) -> set[str]:
        """Every nonprofit id passing the cause and region filters."""
        rows = self._store.read(statement("api/nonprofit_ids_filtered"), query.params(text=False))
        return {row["id"] for row in rows}

    def regions(self) -> list[Region]:
        rows = self._store.read(statement("api/regions"))
        return [Region(row["id"], row["name"]) for row in rows]

    def causes(self) -> list[Cause]:
        return [Cause(row["id"], row["name"]) for row in self._store.read(statement("api/causes"))]

    def cause(self, cause_id: str) -> Cause:
        found = [c for c in self.causes() if c.id == cause_id]  # a few dozen causes at most
        if not found:
            raise NotFoundError(f"cause {cause_id!r} not found")
        return found[0]

    def initiatives(self, nonprofit_ids: Sequence[str]) -> dict[str, list[Initiative]]:
        """Each nonprofit's initiatives by id (empty for unknown ids), in one round trip."""
        rows = self._store.read(
            statement("api/initiatives_by_nonprofits"), {"ids": list(dict.fromkeys(nonprofit_ids))}
        )
        found: dict[str, list[Initiative]] = {i: [] for i in nonprofit_ids}
        for row in rows:
            found[row["nonprofit_id"]].append(
                Initiative(
                    row["id"], row["nonprofit_id"], row["title"], _causes(row),
                    row["description"], row["funding_goal"], row["funding_need"],
                    row["posted_ts"],
                )
            )
        return found


def _region(row: Row) -> Region | None:
    return Region(row["region_id"], row["region_name"]) if row["region_id"] is not None else None


def _causes(row: Row) -> tuple[Cause, ...]:
    return tuple(sorted((Cause(c["id"], c["name"]) for c in row["causes"]), key=lambda c: c.id))
