"""Reading donors, nonprofits and causes from the graph."""

from __future__ import annotations

from collections.abc import Sequence

from donor_match.domain import Cause, Donor, Nonprofit, Region
from donor_match.errors import NotFoundError
from donor_match.services.auth import Principal, Role, require_principal
from graph_store import GraphStore, Row, statement


class CatalogService:
    def __init__(self, store: GraphStore) -> None:
        self._store = store

    def donor(self, donor_id: str) -> Donor:
        rows = self._store.read(statement("api/donors_by_ids"), {"ids": [donor_id]})
        if not rows:
            raise NotFoundError(f"donor {donor_id!r} not found")
        row = rows[0]
        return Donor(row["id"], row["name"], _region(row), _causes(row))

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
        by_id = {row["id"]: Nonprofit(row["id"], row["name"], _region(row), _causes(row))
                 for row in rows}
        return [by_id[i] for i in nonprofit_ids if i in by_id]

    def causes(self) -> list[Cause]:
        return [Cause(row["id"], row["name"]) for row in self._store.read(statement("api/causes"))]


def _region(row: Row) -> Region | None:
    return Region(row["region_id"], row["region_name"]) if row["region_id"] is not None else None


def _causes(row: Row) -> tuple[Cause, ...]:
    return tuple(sorted((Cause(c["id"], c["name"]) for c in row["causes"]), key=lambda c: c.id))
