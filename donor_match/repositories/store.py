"""The repositories over a `GraphStore`: each method runs statements of `neo4j/api/` and turns
their rows into domain values. The only module of the services' side that knows row keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from donor_match.domain import (
    Cause,
    Donor,
    Initiative,
    InitiativeDraft,
    Nonprofit,
    NonprofitQuery,
    Region,
)
from donor_match.repositories.ports import (
    AnalystQueryFailedError,
    AnalystQueryRefusedError,
    AnalystQueryTimeoutError,
    DonationDraft,
    DonationOutcome,
    DonorContext,
    RecordedDonation,
    Repositories,
    ShownNonprofit,
    StoredApiKey,
    SupporterGroup,
)
from graph_store import (
    GraphStore,
    Row,
    Statement,
    StoreConflictError,
    StoreError,
    StoreForbiddenError,
    StoreTimeoutError,
    StoreUnavailableError,
    statement,
)


def store_repositories(store: GraphStore) -> Repositories:
    return Repositories(
        catalog=StoreCatalog(store),
        matches=StoreMatches(store),
        profiles=StoreProfiles(store),
        donations=StoreDonations(store),
        insights=StoreInsights(store),
        api_keys=StoreApiKeys(store),
    )


def _filters(query: NonprofitQuery) -> dict[str, object]:
    return {
        "cause_ids": list(query.cause_ids) if query.cause_ids is not None else None,
        "region_ids": list(query.region_ids) if query.region_ids is not None else None,
    }


class StoreCatalog:
    def __init__(self, store: GraphStore) -> None:
        self._store = store

    def donors(self, ids: Sequence[str]) -> list[Donor]:
        rows = self._store.read(statement("api/donors_by_ids"), {"ids": list(ids)})
        return [
            Donor(row["id"], row["name"], _region(row), _causes(row), row["budget"]) for row in rows
        ]

    def nonprofits(self, ids: Sequence[str]) -> list[Nonprofit]:
        rows = self._store.read(statement("api/nonprofits_by_ids"), {"ids": list(ids)})
        return [_nonprofit(row) for row in rows]

    def nonprofit_page(self, query: NonprofitQuery, after: str, limit: int) -> list[str]:
        params = {**_filters(query), "text": query.name_contains, "after": after, "limit": limit}
        # Each filter has its own statement, which starts from the nodes it names.
        name = (
            "api/nonprofits_page_by_cause" if query.cause_ids is not None
            else "api/nonprofits_page_by_region" if query.region_ids is not None
            else "api/nonprofits_page"
        )
        return [row["id"] for row in self._store.read(statement(name), params)]

    def nonprofit_ids(self, query: NonprofitQuery) -> set[str]:
        rows = self._store.read(statement("api/nonprofit_ids_filtered"), _filters(query))
        return {row["id"] for row in rows}

    def regions(self) -> list[Region]:
        rows = self._store.read(statement("api/regions"))
        return [Region(row["id"], row["name"]) for row in rows]

    def causes(self) -> list[Cause]:
        return [Cause(row["id"], row["name"]) for row in self._store.read(statement("api/causes"))]

    def initiatives(self, nonprofit_ids: Sequence[str]) -> list[Initiative]:
        rows = self._store.read(
            statement("api/initiatives_by_nonprofits"), {"ids": list(dict.fromkeys(nonprofit_ids))}
        )
        return [
            Initiative(
                row["id"], row["nonprofit_id"], row["title"], _causes(row), row["description"],
                row["funding_goal"], row["funding_need"], row["posted_ts"],
            )
            for row in rows
        ]


class StoreMatches:
    def __init__(self, store: GraphStore) -> None:
        self._store = store

    def donor_context(self, donor_id: str) -> DonorContext | None:
        rows = self._store.read(statement("api/match_context"), {"donor_id": donor_id})
        if not rows:
            return None
        row = rows[0]
        return DonorContext(
            region_id=row["region_id"],
            location=_location(row),
            causes=frozenset(row["interests"]) | frozenset(row["given_causes"]),
            supported=frozenset(row["supported"]),
        )

    def needs(self) -> dict[str, float]:
        needs: dict[str, float] = {}
        for row in self._store.read(statement("api/nonprofit_needs")):
            needs[row["id"]] = needs.get(row["id"], 0.0) + float(row["need"])
        return needs

    def needs_changed(self, since: int) -> dict[str, float]:
        rows = self._store.read(statement("api/nonprofit_needs_changed"), {"since": since})
        return {row["id"]: float(row["need"]) for row in rows}

    def clock(self) -> int:
        rows = self._store.read(statement("api/store_clock"))
        # FalkorDB answers no rows on a graph nothing has written yet: no change is stamped
        # there, and 0 makes the next read take every change made from then on.
        return int(rows[0]["now"]) if rows else 0

    def shown(self, ids: Sequence[str]) -> list[ShownNonprofit]:
        rows = self._store.read(statement("api/match_page"), {"ids": list(ids)})
        return [ShownNonprofit(_nonprofit(row), _location(row)) for row in rows]

    def record_feedback(
        self, donor_id: str, nonprofit_id: str, action: str, ts: int, model_version: str | None
    ) -> bool:
        rows = self._store.write(
            statement("api/record_feedback"),
            {"donor_id": donor_id, "nonprofit_id": nonprofit_id, "action": action, "ts": ts,
             "model_version": model_version},
        )
        return _wrote(rows)

    def count_served(self, hour: int, model_version: str, count: int) -> None:
        self._store.write(
            statement("api/count_matches_served"),
            {"hour": hour, "model_version": model_version, "count": count},
        )


class StoreProfiles:
    def __init__(self, store: GraphStore) -> None:
        self._store = store

    def set_donor_preferences(
        self, donor_id: str, cause_ids: Sequence[str], budget: float | None
    ) -> None:
        self._store.write(
            statement("api/set_donor_preferences"),
            {"donor_id": donor_id, "cause_ids": list(dict.fromkeys(cause_ids)), "budget": budget},
        )

    def set_donor_region(self, donor_id: str, region_id: str) -> None:
        self._store.write(
            statement("api/set_donor_region"), {"donor_id": donor_id, "region_id": region_id}
        )

    def upsert_nonprofit(
        self,
        nonprofit_id: str,
        name: str,
        description: str | None,
        funding_need: float | None,
        region_id: str,
        cause_ids: Sequence[str],
    ) -> None:
        self._store.write(
            statement("api/upsert_nonprofit"),
            {"id": nonprofit_id, "name": name, "description": description,
             "funding_need": funding_need, "region_id": region_id},
        )
        self._store.write(
            statement("api/set_nonprofit_causes"),
            {"id": nonprofit_id, "cause_ids": list(dict.fromkeys(cause_ids))},
        )

    def set_funding_need(self, nonprofit_id: str, funding_need: float | None) -> bool:
        rows = self._store.write(
            statement("api/set_funding_need"), {"id": nonprofit_id, "funding_need": funding_need}
        )
        return _wrote(rows)

    def upsert_initiative(self, draft: InitiativeDraft, writer: str, now: int) -> bool:
        rows = self._store.write(
            statement("api/upsert_initiative"),
            {"id": draft.id, "nonprofit_id": draft.nonprofit_id, "title": draft.title,
             "description": draft.description, "funding_goal": draft.funding_goal,
             "funding_need": draft.funding_need, "cause_ids": list(dict.fromkeys(draft.cause_ids)),
             "now": now, "load_id": writer},
        )
        return _wrote(rows)

    def initiative_owner(self, initiative_id: str) -> str | None:
        rows = self._store.read(statement("api/initiative_owner"), {"id": initiative_id})
        return rows[0]["nonprofit_id"] if rows else None

    def delete_initiative(self, initiative_id: str) -> None:
        self._store.write(statement("api/delete_initiative"), {"id": initiative_id})


class StoreDonations:
    def __init__(self, store: GraphStore) -> None:
        self._store = store

    def record(self, draft: DonationDraft) -> RecordedDonation:
        params = {
            "id": draft.id, "donor_id": draft.donor_id, "nonprofit_id": draft.nonprofit_id,
            "amount": draft.amount, "ts": draft.ts, "now": draft.now, "load_id": draft.writer,
            "recorded_by": draft.recorded_by,
        }
        # Two first writes of one id can both find it free; the store's constraint refuses the
        # second, and running it again classifies it against the winner (replay or conflict).
        try:
            rows = self._store.write(statement("api/record_donation"), params)
        except StoreConflictError:
            try:
                rows = self._store.write(statement("api/record_donation"), params)
            except StoreConflictError:
                return RecordedDonation(DonationOutcome.TAKEN, None)
        row = rows[0]
        ts = int(row["ts"]) if row["ts"] is not None else None
        return RecordedDonation(DonationOutcome(row["outcome"]), ts)


class StoreInsights:
    def __init__(self, store: GraphStore) -> None:
        self._store = store

    def supporters_by_region(self, nonprofit_id: str) -> list[SupporterGroup]:
        return self._groups("api/insights_regions", nonprofit_id)

    def supporters_by_interest(self, nonprofit_id: str) -> list[SupporterGroup]:
        return self._groups("api/insights_interests", nonprofit_id)

    def _groups(self, name: str, nonprofit_id: str) -> list[SupporterGroup]:
        rows = self._store.read(statement(name), {"id": nonprofit_id})
        return [
            SupporterGroup(
                row["label"], int(row["donors"]),
                float(row["amount"]) if row["amount"] is not None else None,
            )
            for row in rows
        ]


class StoreApiKeys:
    def __init__(self, store: GraphStore) -> None:
        self._store = store

    def create(self, key_id: str, digest: str, subject: str, role: str, created_at: int) -> None:
        self._store.write(
            statement("api/api_key_create"),
            {"id": key_id, "hash": digest, "subject": subject, "role": role,
             "created_at": created_at},
        )

    def revoke(self, key_id: str, revoked_at: int) -> bool:
        rows = self._store.write(
            statement("api/api_key_revoke"), {"id": key_id, "revoked_at": revoked_at}
        )
        return bool(rows)

    def get(self, key_id: str) -> StoredApiKey | None:
        rows = self._store.read(statement("api/api_key_by_id"), {"id": key_id})
        if not rows:
            return None
        row = rows[0]
        return StoredApiKey(row["hash"], row["subject"], row["role"], row["revoked_at"])


class StoreAnalystGraph:
    """The analyst store, read on its read-only path with the analyst's own text."""

    def __init__(self, analyst_store: GraphStore) -> None:
        self._store = analyst_store

    def run(self, cypher: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            return self._store.read(Statement("analytics", cypher), params)
        except StoreUnavailableError:
            raise
        except StoreForbiddenError as exc:
            raise AnalystQueryRefusedError(exc.detail) from exc
        except StoreTimeoutError as exc:
            raise AnalystQueryTimeoutError(self._hidden(exc.detail)) from exc
        except StoreError as exc:
            raise AnalystQueryFailedError(self._hidden(exc.detail)) from exc

    def present(self) -> bool:
        try:
            return bool(self._store.read(statement("api/analyst_graph_present")))
        except StoreUnavailableError:
            raise
        except StoreError as exc:
            raise AnalystQueryFailedError(self._hidden(exc.detail)) from exc

    def _hidden(self, detail: str) -> str:
        # The server's own diagnosis (syntax, unknown function) without the store's address.
        return detail.replace(self._store.uri, "the analyst graph")


def _wrote(rows: list[Row]) -> bool:
    """Whether a write statement's `written` count is above zero (no row: nothing matched)."""
    return bool(rows) and rows[0]["written"] > 0


def _region(row: Row) -> Region | None:
    return Region(row["region_id"], row["region_name"]) if row["region_id"] is not None else None


def _causes(row: Row) -> tuple[Cause, ...]:
    return tuple(sorted((Cause(c["id"], c["name"]) for c in row["causes"]), key=lambda c: c.id))


def _nonprofit(row: Row) -> Nonprofit:
    return Nonprofit(
        row["id"], row["name"], _region(row), _causes(row), row["description"],
        row["funding_need"],
    )


def _location(row: Row) -> tuple[float, float] | None:
    if row["lat"] is None or row["lon"] is None:
        return None
    return float(row["lat"]), float(row["lon"])
