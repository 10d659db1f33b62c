"""Personal matches: a donor's best nonprofits from the served model's embeddings, re-ranked by
impact and explained, one page at a time.

A page costs one store read whatever its size, the donor's context (region, causes, gifts), and
a second for those of its nonprofits this process has not shown lately (`_ShownNonprofits`). Ranking
runs over every nonprofit in numpy; the similar donors behind each match come from the served
model's training graph (graph_model.gifts), not from a store walk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from enum import StrEnum

import numpy as np
from anyio import to_thread
from cachetools import LRUCache, TTLCache

from donor_match.domain import Match
from donor_match.errors import InvalidInputError, NotFoundError, UnavailableError
from donor_match.reasons import Home, MatchReasons, explain
from donor_match.repositories.ports import DonorContext, MatchRepository, ShownNonprofit
from donor_match.services.auth import Principal, Role, require_principal
from donor_match.services.catalog import CatalogService, NonprofitQuery
from donor_match.services.events import EventBus, matches_topic
from donor_match.services.ids import (
    decode_match_cursor,
    encode_match_cursor,
    match_id,
    parse_match_id,
)
from donor_match.services.served_model import ModelSource
from graph_model.artifacts import ModelArtifact
from graph_model.ranking import (
    check_weight,
    impact_multiplier,
    impact_of,
    rank_donor,
    top_k,
)
from graph_store.errors import StoreError

log = logging.getLogger(__name__)


class FeedbackAction(StrEnum):
    CLICKED = "CLICKED"
    DISMISSED = "DISMISSED"
    DONATED = "DONATED"


class _Impact:
    """Impact per nonprofit of a model's index (`values`) from a copy of the stated needs, and
    the ranking multipliers of the impact weights asked for with it, each computed once."""

    MAX_WEIGHTS = 8

    def __init__(self, needs: dict[str, float], model: ModelArtifact, values: np.ndarray) -> None:
        self.needs = needs
        self.model = model
        self.values = values
        self._multipliers: LRUCache[float, np.ndarray] = LRUCache(self.MAX_WEIGHTS)
        self._lock = threading.Lock()

    def weights(self) -> list[float]:
        with self._lock:
            return list(self._multipliers)

    def multiplier(self, weight: float) -> np.ndarray:
        with self._lock:
            found = self._multipliers.get(weight)
        if found is None:
            found = impact_multiplier(self.values, weight)
            with self._lock:
                self._multipliers[weight] = found
        return found


class _NeedIndex:
    """Unmet funding need per nonprofit, as impact aligned with a model's nonprofit index.

    Read whole once; after that, every `refresh_s` a background thread reads only the nonprofits
    whose need changed since the last read (by the stamp every need write sets, index-backed),
    so a refresh costs what changed rather than every nonprofit stating a need (100k of them:
    ~0.5 s of CPU per process). Requests keep being served from the last copy meanwhile, and
    the background thread also computes the impact the next requests rank with: after a bulk
    update of needs, rebuilding it on the first request after each refresh held that request
    (and, through the GIL, the process) for tens of milliseconds (docs/api-performance.md). A
    re-read that changes nothing (the overlap below) keeps the same copy, so nothing is rebuilt.
    A change made through this process is read before the next ranking (`invalidate`).
    """

    # Neo4j stops a transaction past its timeout at its next check: every 2 s by default
    # (db.transaction.monitor.check.interval).
    TIMEOUT_CHECK_S = 2.0

    def __init__(
        self, repository: MatchRepository, refresh_s: float, store_timeout_s: float
    ) -> None:
        self._repository = repository
        self._refresh_s = refresh_s
        # Changes are re-read from this long before the last read began. Stamps and the start of
        # a read both come from the store's clock, so no process's clock skews them; what is
        # left is a write stamped before our read began that commits after it, and no write
        # commits later than the store timeout (every product process's, one setting) after
        # its stamp. A minute's overlap re-read a bulk update ~12 times in every process.
        self._overlap_ms = int((store_timeout_s + self.TIMEOUT_CHECK_S) * 1000)
        self._lock = threading.Lock()
        self._needs: dict[str, float] | None = None
        self._since = 0  # the store's clock (ms) when the read that made `_needs` began
        self._read_at = float("-inf")  # monotonic, for the refresh interval
        self._changed_here = False
        self._refreshing = False
        self._impact: _Impact | None = None  # the last computed
        self._basis: tuple[ModelArtifact, dict[str, int]] | None = None  # what it was for

    def invalidate(self) -> None:
        with self._lock:
            self._changed_here = True

    def impact(self, model: ModelArtifact, positions: dict[str, int]) -> _Impact:
        needs = self._current()
        with self._lock:
            cached, latest = self._impact, self._needs
            self._basis = (model, positions)
        # The background refresh may have computed it from a newer copy than `needs` meanwhile.
        if (
            cached is not None
            and cached.model is model
            and (cached.needs is needs or cached.needs is latest)
        ):
            return cached
        return self._compute(needs, model, positions, cached)

    def warm(self, model: ModelArtifact | None, positions: dict[str, int] | None) -> None:
        """Read the needs (and, for a served model, compute its impact) before requests do."""
        needs = self._current()
        if model is not None and positions is not None:
            with self._lock:
                self._basis = (model, positions)
            self._compute(needs, model, positions, None)

    def _compute(
        self,
        needs: dict[str, float],
        model: ModelArtifact,
        positions: dict[str, int],
        previous: _Impact | None,
    ) -> _Impact:
        impact = _impact_of(needs, model, positions, previous)
        with self._lock:
            self._impact = impact
        return impact

    def _current(self) -> dict[str, float]:
        with self._lock:
            needs, changed_here = self._needs, self._changed_here
            due = time.monotonic() - self._read_at >= self._refresh_s
            start_refresh = needs is not None and due and not self._refreshing
            if start_refresh:
                self._refreshing = True
        if needs is None:
            return self._read_all()
        if changed_here:
            return self._read_changes()
        if start_refresh:
            threading.Thread(target=self._background_read, daemon=True).start()
        return needs

    def _background_read(self) -> None:
        try:
            needs, began = self._changes()
            with self._lock:
                cached, basis = self._impact, self._basis
            impact = None
            if basis is not None and (cached is None or cached.needs is not needs):
                impact = _impact_of(needs, *basis, cached)
            # The needs and their impact together: requests that saw the new needs before their
            # impact was ready each computed it themselves, all at once after a bulk update.
            self._keep(needs, began, impact)
        except StoreError as exc:  # keep serving the last needs; the next refresh retries
            log.warning("could not refresh funding needs: %s", exc)
        finally:
            with self._lock:
                self._refreshing = False

    def _read_all(self) -> dict[str, float]:
        began = self._repository.clock()
        return self._keep(self._repository.needs(), began)

    def _read_changes(self) -> dict[str, float]:
        return self._keep(*self._changes())

    def _changes(self) -> tuple[dict[str, float], int]:
        """The needs with the changes since the last read applied (the same copy when nothing
        changed), and when this read began."""
        with self._lock:
            base, since = self._needs or {}, self._since
            self._changed_here = False  # a change from now on is read by the next call
        began = self._repository.clock()
        latest = self._repository.needs_changed(since - self._overlap_ms)
        changed: dict[str, float] = {}
        for nonprofit_id, need in latest.items():
            if need > 0 and base.get(nonprofit_id) != need:
                changed[nonprofit_id] = need
            elif need <= 0 and nonprofit_id in base:
                changed[nonprofit_id] = 0.0
        needs = base
        if changed:  # else the same copy: the impact computed from it stays current
            needs = dict(base)
            for nonprofit_id, need in changed.items():
                if need > 0:
                    needs[nonprofit_id] = need
                else:
                    needs.pop(nonprofit_id, None)
        return needs, began

    def _keep(
        self, needs: dict[str, float], began: int, impact: _Impact | None = None
    ) -> dict[str, float]:
        with self._lock:
            # Of two reads racing, the one begun first may finish last: `since` then moves back,
            # and the next read catches up what it missed.
            self._needs, self._since, self._read_at = needs, began, time.monotonic()
            if impact is not None:
                self._impact = impact
        return needs


def _impact_of(
    needs: dict[str, float],
    model: ModelArtifact,
    positions: dict[str, int],
    previous: _Impact | None,
) -> _Impact:
    """The impact of `needs` over `model`'s nonprofits, with the multipliers for the weights
    requests ranked with under `previous` ready too."""
    unmet = np.zeros(len(model.nonprofit_ids))
    for nonprofit_id, need in needs.items():
        if (position := positions.get(nonprofit_id)) is not None:
            unmet[position] = need
    impact = _Impact(needs, model, impact_of(unmet))
    if previous is not None:
        for weight in previous.weights():
            impact.multiplier(weight)
    return impact


class _ShownNonprofits:
    """What a page of matches shows of its nonprofits (name, region, causes, stated need),
    kept per process for `ttl_s`.

    Pages for different donors draw on far fewer nonprofits than there are (1,000 random donors'
    pages of 20 named 593 distinct ones among 100k in the load benchmark), and reading them was
    a store round trip per page (~1 ms of API and store CPU). A change made through this process
    is shown at once (`forget`); one made through another process or a load, within `ttl_s`.
    """

    MAX_ROWS = 100_000

    def __init__(self, repository: MatchRepository, ttl_s: float) -> None:
        self._repository = repository
        self._kept: TTLCache[str, ShownNonprofit] = TTLCache(self.MAX_ROWS, ttl_s)
        self._lock = threading.Lock()
        self._generation = 0  # bumped by `forget`: a read begun before it is not kept

    def of(self, ids: list[str]) -> dict[str, ShownNonprofit]:
        """Those of `ids` that exist, by id."""
        with self._lock:
            found = {i: shown for i in ids if (shown := self._kept.get(i)) is not None}
            generation = self._generation
        missing = [i for i in ids if i not in found]
        if missing:
            read = {shown.nonprofit.id: shown for shown in self._repository.shown(missing)}
            with self._lock:
                if generation == self._generation:
                    self._kept.update(read)
            found.update(read)
        return found

    def forget(self, nonprofit_id: str) -> None:
        with self._lock:
            self._kept.pop(nonprofit_id, None)
            self._generation += 1


class MatchService:
    def __init__(
        self,
        repository: MatchRepository,
        catalog: CatalogService,
        model: ModelSource,
        max_first: int,
        events: EventBus,
        impact_weight: float = 0.0,
        needs_refresh_s: float = 5.0,
        page_rows_ttl_s: float = 30.0,
        *,
        store_timeout_s: float,
    ) -> None:
        _check_weight(impact_weight)
        self._events = events
        self._repository = repository
        self._catalog = catalog
        self._model = model
        self._max_first = max_first
        self._impact_weight = impact_weight
        self._needs = _NeedIndex(repository, needs_refresh_s, store_timeout_s)
        self._shown = _ShownNonprofits(repository, page_rows_ttl_s)
        self._positions: tuple[ModelArtifact, dict[str, int]] | None = None

    @property
    def model(self) -> ModelArtifact | None:
        return self._model.current()

    def warm(self) -> None:
        """Read what the first page would otherwise read on its way (the funding needs and the
        served model's impact), so that start-up costs no request its latency."""
        model = self._model.current()
        self._needs.warm(model, self._positions_of(model) if model is not None else None)

    def nonprofit_changed(self, nonprofit_id: str) -> None:
        """A nonprofit's profile, need or initiatives changed: rank and show the new ones now."""
        self._needs.invalidate()
        self._shown.forget(nonprofit_id)

    def matches(
        self,
        principal: Principal | None,
        donor_id: str,
        first: int,
        only: NonprofitQuery | None = None,
        exclude_supported: bool = True,
        after: str | None = None,
        impact_weight: float | None = None,
    ) -> list[Match]:
        """The donor's next `first` nonprofits (after the cursor `after`) among those `only`
        admits, ranked by the model's relative score adjusted by impact with weight
        `impact_weight` (default: the configured one), by default excluding the nonprofits the
        donor already gives to."""
        require_principal(principal).require_self_or(donor_id, Role.DONOR, Role.ADMIN)
        if not 1 <= first <= self._max_first:
            raise InvalidInputError(f"first must be between 1 and {self._max_first}, got {first}")
        weight = self._impact_weight if impact_weight is None else impact_weight
        _check_weight(weight)
        cursor = decode_match_cursor(after) if after is not None else None
        context = self._context(donor_id)  # NOT_FOUND for unknown donors
        model = self._model.current()
        if model is None:
            raise UnavailableError("no trained model is served yet; run `donor-match train`")
        positions = self._positions_of(model)

        raw = model.scores(donor_id)
        # Exclusions are -inf before normalising, so they neither rank nor stretch the scale.
        supported = {positions[i] for i in context.supported if i in positions}
        excluded = np.fromiter(supported if exclude_supported else (), dtype=np.intp)
        if only is not None and (only.cause_ids is not None or only.region_ids is not None):
            admitted = np.zeros(len(raw), dtype=bool)
            wanted = self._catalog.nonprofit_ids(only)
            admitted[[positions[i] for i in wanted if i in positions]] = True
            excluded = np.union1d(excluded, np.flatnonzero(~admitted))
        impact = self._needs.impact(model, positions)
        multiplier = None if weight == 0 else impact.multiplier(weight)
        relative, scores = rank_donor(raw, excluded, multiplier)
        page = _page(scores, first, cursor)

        by_id = self._shown.of([model.nonprofit_ids[p] for p in page])
        similar = model.supporters.similar_donors(supported, page, model.donor_position(donor_id))
        # Calibrated on the training holdout; a version from before calibration has none and
        # shows the relative value as it always did.
        calibrated = model.probabilities(donor_id, page)
        found: list[Match] = []
        for i, (p, peers) in enumerate(zip(page, similar, strict=True)):
            shown = by_id.get(model.nonprofit_ids[p])
            if shown is None:  # in the model, since deleted from the graph
                continue
            nonprofit = shown.nonprofit
            found.append(
                Match(
                    id=match_id(donor_id, nonprofit.id),
                    rank=len(found) + 1,
                    score=float(scores[p]),
                    nonprofit=nonprofit,
                    probability=float(relative[p] if calibrated is None else calibrated[i]),
                    impact=float(impact.values[p]),
                    reasons=_reasons(context, shown, peers),
                    cursor=encode_match_cursor(float(scores[p]), int(p)),
                )
            )
        return found

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
        written = self._repository.record_feedback(
            donor_id, nonprofit_id, str(action), int(time.time()),
            self.model.version if self.model else None,
        )
        if not written:
            self._catalog.donor(donor_id)
            self._catalog.nonprofit(nonprofit_id)

    def _context(self, donor_id: str) -> DonorContext:
        context = self._repository.donor_context(donor_id)
        if context is None:
            raise NotFoundError(f"donor {donor_id!r} not found")
        return context

    def _positions_of(self, model: ModelArtifact) -> dict[str, int]:
        cached = self._positions
        if cached is None or cached[0] is not model:
            cached = (model, {n: i for i, n in enumerate(model.nonprofit_ids)})
            self._positions = cached
        return cached[1]


def _check_weight(weight: float) -> None:
    try:
        check_weight(weight, "impactWeight")
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc


def _page(scores: np.ndarray, first: int, cursor: tuple[float, int] | None) -> list[int]:
    """Positions of the `first` best scores after `cursor`, best first; ties by position."""
    if cursor is not None:
        score, position = cursor
        index = np.arange(len(scores))
        scores = np.where(
            (scores > score) | ((scores == score) & (index <= position)), -np.inf, scores
        )
    return [int(p) for p in top_k(scores, first)[0] if p >= 0]


def _reasons(context: DonorContext, shown: ShownNonprofit, similar_donors: int) -> MatchReasons:
    nonprofit = shown.nonprofit
    return explain(
        donor_causes=context.causes,
        nonprofit_causes=nonprofit.causes,
        similar_donors=similar_donors,
        donor_home=Home(context.region_id, context.location),
        nonprofit_home=Home(nonprofit.region.id if nonprofit.region else None, shown.location),
    )
