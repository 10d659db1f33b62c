"""In-memory repositories: the services' unit tests run on these, in milliseconds, with no store.

`InMemoryGraph` keeps donors, nonprofits, initiatives, gifts and the rest in dicts and answers
every repository Protocol of `ports` as the statements of `neo4j/api/` answer on a store; the
contract tests (tests/test_repository_contract.py) run one set of tests on this and on both
stores, so the two cannot drift apart. Seed it with the `add_*` methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass
class _Region:
    name: str
    lat: float | None = None
    lon: float | None = None


@dataclass
class _Donor:
    name: str
    region_id: str | None = None
    budget: float | None = None
    causes: set[str] = field(default_factory=set)


@dataclass
class _Nonprofit:
    name: str
    region_id: str | None = None
    description: str | None = None
    funding_need: float | None = None
    need_changed_at: int | None = None
    causes: set[str] = field(default_factory=set)


@dataclass
class _Initiative:
    nonprofit_id: str | None
    title: str | None = None
    description: str | None = None
    funding_goal: float | None = None
    funding_need: float | None = None
    posted_ts: int | None = None
    writer: str | None = None
    causes: set[str] = field(default_factory=set)


@dataclass
class _Gift:
    donor_id: str
    nonprofit_id: str
    amount: float
    ts: int
    writer: str | None = None
    recorded_by: str | None = None


@dataclass(frozen=True)
class Feedback:
    donor_id: str
    nonprofit_id: str
    action: str
    ts: int
    model_version: str | None


class InMemoryGraph:
    """Every repository at once, over one set of dicts (so a profile written through
    `ProfileRepository` is read back through `CatalogRepository`, as on a store). `clock` is
    the store's clock (epoch ms) that need changes are stamped with; tests may set it."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self._clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.region_rows: dict[str, _Region] = {}
        self.cause_names: dict[str, str] = {}
        self.donor_rows: dict[str, _Donor] = {}
        self.nonprofit_rows: dict[str, _Nonprofit] = {}
        self.initiative_rows: dict[str, _Initiative] = {}
        self.gifts: dict[str, _Gift] = {}
        self.feedback: list[Feedback] = []
        self.served: dict[tuple[int, str], int] = {}
        self.api_keys: dict[str, StoredApiKey] = {}

    def repositories(self) -> Repositories:
        return Repositories(
            catalog=self, matches=self, profiles=self, donations=self, insights=self,
            api_keys=self,
        )

    # -- seeding (what the ETL loads into a store) -----------------------------------------

    def add_region(
        self, region_id: str, name: str, lat: float | None = None, lon: float | None = None
    ) -> None:
        self.region_rows[region_id] = _Region(name, lat, lon)

    def add_cause(self, cause_id: str, name: str) -> None:
        self.cause_names[cause_id] = name

    def add_donor(
        self, donor_id: str, name: str, region_id: str | None = None,
        cause_ids: Iterable[str] = (),
    ) -> None:
        self.donor_rows[donor_id] = _Donor(name, region_id, causes=set(cause_ids))

    def add_nonprofit(
        self, nonprofit_id: str, name: str, region_id: str | None = None,
        cause_ids: Iterable[str] = (),
    ) -> None:
        self.nonprofit_rows[nonprofit_id] = _Nonprofit(name, region_id, causes=set(cause_ids))

    def add_gift(
        self, gift_id: str, donor_id: str, nonprofit_id: str, amount: float, ts: int,
        writer: str = "etl",
    ) -> None:
        self.gifts[gift_id] = _Gift(donor_id, nonprofit_id, amount, ts, writer)

    # -- CatalogRepository -------------------------------------------------------------------

    def donors(self, ids: Sequence[str]) -> list[Donor]:
        return [
            Donor(i, d.name, self._region(d.region_id), self._causes(d.causes), d.budget)
            for i in dict.fromkeys(ids) if (d := self.donor_rows.get(i)) is not None
        ]

    def nonprofits(self, ids: Sequence[str]) -> list[Nonprofit]:
        return [self._nonprofit(i) for i in dict.fromkeys(ids) if i in self.nonprofit_rows]

    def nonprofit_page(self, query: NonprofitQuery, after: str, limit: int) -> list[str]:
        text = query.name_contains
        found = sorted(
            i for i in self.nonprofit_ids(query)
            if i > after and (text is None or text.lower() in self.nonprofit_rows[i].name.lower())
        )
        return found[:limit]

    def nonprofit_ids(self, query: NonprofitQuery) -> set[str]:
        return {
            i for i, n in self.nonprofit_rows.items()
            if (query.cause_ids is None or n.causes & set(query.cause_ids))
            and (query.region_ids is None or n.region_id in set(query.region_ids))
        }

    def regions(self) -> list[Region]:
        return sorted(
            (Region(i, r.name) for i, r in self.region_rows.items()), key=lambda r: (r.name, r.id)
        )

    def causes(self) -> list[Cause]:
        return sorted(
            (Cause(i, name) for i, name in self.cause_names.items()), key=lambda c: (c.name, c.id)
        )

    def initiatives(self, nonprofit_ids: Sequence[str]) -> list[Initiative]:
        wanted = set(nonprofit_ids)
        return sorted(
            (
                Initiative(
                    i, r.nonprofit_id, r.title, self._causes(r.causes), r.description,
                    r.funding_goal, r.funding_need, r.posted_ts,
                )
                for i, r in self.initiative_rows.items()
                if r.nonprofit_id is not None and r.nonprofit_id in wanted
            ),
            key=lambda i: (i.nonprofit_id, i.id),
        )

    # -- MatchRepository ---------------------------------------------------------------------

    def donor_context(self, donor_id: str) -> DonorContext | None:
        donor = self.donor_rows.get(donor_id)
        if donor is None:
            return None
        supported = {g.nonprofit_id for g in self.gifts.values() if g.donor_id == donor_id}
        given = {c for n in supported for c in self.nonprofit_rows[n].causes}
        region = self.region_rows.get(donor.region_id) if donor.region_id else None
        return DonorContext(
            region_id=donor.region_id if region is not None else None,
            location=_location(region),
            causes=frozenset(donor.causes | given),
            supported=frozenset(supported),
        )

    def needs(self) -> dict[str, float]:
        needs: dict[str, float] = {}
        for i, n in self.nonprofit_rows.items():
            if n.funding_need is not None and n.funding_need > 0:
                needs[i] = needs.get(i, 0.0) + n.funding_need
        for r in self.initiative_rows.values():
            if r.nonprofit_id is not None and r.funding_need is not None and r.funding_need > 0:
                needs[r.nonprofit_id] = needs.get(r.nonprofit_id, 0.0) + r.funding_need
        return needs

    def needs_changed(self, since: int) -> dict[str, float]:
        changed: dict[str, float] = {}
        for i, n in self.nonprofit_rows.items():
            if n.need_changed_at is None or n.need_changed_at < since:
                continue
            own = n.funding_need if n.funding_need is not None and n.funding_need > 0 else 0.0
            changed[i] = own + sum(
                r.funding_need for r in self.initiative_rows.values()
                if r.nonprofit_id == i and r.funding_need is not None and r.funding_need > 0
            )
        return changed

    def clock(self) -> int:
        return self._clock()

    def shown(self, ids: Sequence[str]) -> list[ShownNonprofit]:
        return [
            ShownNonprofit(self._nonprofit(i), _location(self._region_row(n.region_id)))
            for i in dict.fromkeys(ids) if (n := self.nonprofit_rows.get(i)) is not None
        ]

    def record_feedback(
        self, donor_id: str, nonprofit_id: str, action: str, ts: int, model_version: str | None
    ) -> bool:
        if donor_id not in self.donor_rows or nonprofit_id not in self.nonprofit_rows:
            return False
        self.feedback.append(Feedback(donor_id, nonprofit_id, action, ts, model_version))
        return True

    def count_served(self, hour: int, model_version: str, count: int) -> None:
        self.served[(hour, model_version)] = self.served.get((hour, model_version), 0) + count

    # -- ProfileRepository -------------------------------------------------------------------

    def set_donor_preferences(
        self, donor_id: str, cause_ids: Sequence[str], budget: float | None
    ) -> None:
        if (donor := self.donor_rows.get(donor_id)) is not None:
            donor.budget = budget
            donor.causes = {c for c in cause_ids if c in self.cause_names}

    def set_donor_region(self, donor_id: str, region_id: str) -> None:
        if donor_id in self.donor_rows and region_id in self.region_rows:
            self.donor_rows[donor_id].region_id = region_id

    def upsert_nonprofit(
        self,
        nonprofit_id: str,
        name: str,
        description: str | None,
        funding_need: float | None,
        region_id: str,
        cause_ids: Sequence[str],
    ) -> None:
        row = self.nonprofit_rows.setdefault(nonprofit_id, _Nonprofit(name))
        row.name, row.description, row.funding_need = name, description, funding_need
        row.need_changed_at = self._clock()
        row.region_id = region_id if region_id in self.region_rows else None
        row.causes = {c for c in cause_ids if c in self.cause_names}

    def set_funding_need(self, nonprofit_id: str, funding_need: float | None) -> bool:
        row = self.nonprofit_rows.get(nonprofit_id)
        if row is None:
            return False
        row.funding_need, row.need_changed_at = funding_need, self._clock()
        return True

    def upsert_initiative(self, draft: InitiativeDraft, writer: str, now: int) -> bool:
        owner = self.nonprofit_rows.get(draft.nonprofit_id)
        if owner is None or draft.id is None:
            return False
        row = self.initiative_rows.setdefault(draft.id, _Initiative(None))
        if row.nonprofit_id not in (None, draft.nonprofit_id):
            return False
        owner.need_changed_at = self._clock()
        row.nonprofit_id = draft.nonprofit_id
        row.title, row.description = draft.title, draft.description
        row.funding_goal, row.funding_need = draft.funding_goal, draft.funding_need
        row.posted_ts = row.posted_ts if row.posted_ts is not None else now
        row.writer = writer
        row.causes = {c for c in draft.cause_ids if c in self.cause_names}
        # The statement counts what it linked: with no known cause it reports nothing written.
        return bool(row.causes)

    def initiative_owner(self, initiative_id: str) -> str | None:
        row = self.initiative_rows.get(initiative_id)
        return row.nonprofit_id if row is not None else None

    def delete_initiative(self, initiative_id: str) -> None:
        row = self.initiative_rows.get(initiative_id)
        if row is None or row.nonprofit_id is None:
            return
        self.nonprofit_rows[row.nonprofit_id].need_changed_at = self._clock()
        del self.initiative_rows[initiative_id]

    # -- DonationRepository ------------------------------------------------------------------

    def record(self, draft: DonationDraft) -> RecordedDonation:
        old = self.gifts.get(draft.id)
        if draft.donor_id not in self.donor_rows or draft.nonprofit_id not in self.nonprofit_rows:
            return RecordedDonation(DonationOutcome.UNKNOWN, None)
        if old is None:
            ts = draft.ts if draft.ts is not None else draft.now
            self.gifts[draft.id] = _Gift(
                draft.donor_id, draft.nonprofit_id, draft.amount, ts, draft.writer,
                draft.recorded_by,
            )
            return RecordedDonation(DonationOutcome.NEW, ts)
        if (old.writer or "") != draft.writer or (
            old.recorded_by or f"donor:{old.donor_id}"
        ) != draft.recorded_by:
            return RecordedDonation(DonationOutcome.TAKEN, None)
        same = (old.donor_id, old.nonprofit_id, old.amount) == (
            draft.donor_id, draft.nonprofit_id, draft.amount
        ) and old.ts == (draft.ts if draft.ts is not None else old.ts)
        if same:
            return RecordedDonation(DonationOutcome.REPLAY, old.ts)
        return RecordedDonation(DonationOutcome.DIFFERS, None)

    # -- InsightsRepository ------------------------------------------------------------------

    def supporters_by_region(self, nonprofit_id: str) -> list[SupporterGroup]:
        donors: dict[str, set[str]] = {}
        amounts: dict[str, float] = {}
        for gift in self._peer_gifts(nonprofit_id):
            region = self._region_row(self.donor_rows[gift.donor_id].region_id)
            label = region.name if region is not None else "Unknown"
            donors.setdefault(label, set()).add(gift.donor_id)
            amounts[label] = amounts.get(label, 0.0) + gift.amount
        return [SupporterGroup(label, len(d), amounts[label]) for label, d in donors.items()]

    def supporters_by_interest(self, nonprofit_id: str) -> list[SupporterGroup]:
        donors: dict[str, set[str]] = {}
        for donor_id in {g.donor_id for g in self._peer_gifts(nonprofit_id)}:
            for cause in self.donor_rows[donor_id].causes:
                donors.setdefault(self.cause_names[cause], set()).add(donor_id)
        return [SupporterGroup(label, len(d), None) for label, d in donors.items()]

    def _peer_gifts(self, nonprofit_id: str) -> list[_Gift]:
        """Gifts to the nonprofits working on one of this one's causes, itself included."""
        own = self.nonprofit_rows.get(nonprofit_id)
        if own is None:
            return []
        peers = {i for i, n in self.nonprofit_rows.items() if n.causes & own.causes}
        return [g for g in self.gifts.values() if g.nonprofit_id in peers]

    # -- ApiKeyRepository --------------------------------------------------------------------

    def create(self, key_id: str, digest: str, subject: str, role: str, created_at: int) -> None:
        self.api_keys[key_id] = StoredApiKey(digest, subject, role, None)

    def revoke(self, key_id: str, revoked_at: int) -> bool:
        key = self.api_keys.get(key_id)
        if key is None:
            return False
        if key.revoked_at is None:
            self.api_keys[key_id] = StoredApiKey(key.digest, key.subject, key.role, revoked_at)
        return True

    def get(self, key_id: str) -> StoredApiKey | None:
        return self.api_keys.get(key_id)

    # -- helpers -----------------------------------------------------------------------------

    def _region_row(self, region_id: str | None) -> _Region | None:
        return self.region_rows.get(region_id) if region_id is not None else None

    def _region(self, region_id: str | None) -> Region | None:
        row = self._region_row(region_id)
        return Region(region_id, row.name) if row is not None and region_id is not None else None

    def _causes(self, ids: Iterable[str]) -> tuple[Cause, ...]:
        return tuple(Cause(i, self.cause_names[i]) for i in sorted(ids))

    def _nonprofit(self, nonprofit_id: str) -> Nonprofit:
        row = self.nonprofit_rows[nonprofit_id]
        return Nonprofit(
            nonprofit_id, row.name, self._region(row.region_id), self._causes(row.causes),
            row.description, row.funding_need,
        )


class InMemoryAnalystGraph:
    """An analyst graph that answers the queries it was given answers for, refuses those it was
    told to refuse, and fails every other with the diagnosis a store would give."""

    def __init__(
        self,
        answers: Mapping[str, list[dict[str, Any]]] | None = None,
        refused: Iterable[str] = (),
        *,
        present: bool = True,
        slow: Iterable[str] = (),
    ) -> None:
        self.answers = dict(answers or {})
        self.refused = set(refused)
        self.slow = set(slow)
        self.is_present = present
        self.ran: list[tuple[str, dict[str, Any]]] = []

    def run(self, cypher: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.ran.append((cypher, dict(params)))
        if cypher in self.refused:
            raise AnalystQueryRefusedError("write queries are not allowed in read-only mode")
        if cypher in self.slow:
            raise AnalystQueryTimeoutError("Query timed out")
        if cypher not in self.answers:
            raise AnalystQueryFailedError(f"Invalid input: no answer for {cypher!r}")
        return [dict(row) for row in self.answers[cypher]]

    def present(self) -> bool:
        return self.is_present


def _location(region: _Region | None) -> tuple[float, float] | None:
    if region is None or region.lat is None or region.lon is None:
        return None
    return region.lat, region.lon
