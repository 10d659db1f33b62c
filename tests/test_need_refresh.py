"""The funding-need refresh stays off the request path: the background refresh computes the
impact requests rank with, a re-read that changes nothing rebuilds nothing, and the app reads
the needs at start-up rather than on its first page. Changes are found by the store's clock,
whatever the writing or reading process's clock says, and a bulk update is re-read only for
as long as a write can take to commit (the store timeout), not for a minute."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from conftest import TEST_AUTH, ServedGraph, wait_for
from starlette.testclient import TestClient

from donor_match.repositories.ports import MatchRepository
from donor_match.repositories.store import StoreMatches
from donor_match.services import matching
from donor_match.services.matching import _NeedIndex
from donor_match.services.served_model import ServedModel
from entrypoints.asgi import create_app
from graph_model.artifacts import ModelArtifact
from graph_store import GraphStore, Statement, open_store, statement

TIMEOUT_S = 10.0  # the store timeout the index derives its overlap from (the default)


@pytest.fixture
def served_store(served_graph: ServedGraph) -> Iterator[GraphStore]:
    store = open_store(served_graph.store_settings)
    yield store
    store.close()


@pytest.fixture
def model(served_graph: ServedGraph) -> ModelArtifact:
    found = ServedModel(served_graph.app_settings.models_dir).current()
    assert found is not None
    return found


def settled(index: _NeedIndex) -> bool:
    with index._lock:
        return not index._refreshing


def test_the_background_refresh_computes_the_impact_requests_rank_with(
    served_store: GraphStore, model: ModelArtifact
) -> None:
    positions = {n: i for i, n in enumerate(model.nonprofit_ids)}
    nonprofit = model.nonprofit_ids[-3]
    index = _NeedIndex(StoreMatches(served_store), refresh_s=0.05, store_timeout_s=TIMEOUT_S)
    first = index.impact(model, positions)
    first.multiplier(0.5)  # a weight requests ranked with
    set_need = statement("api/set_funding_need")
    served_store.write(set_need, {"id": nonprofit, "funding_need": 4e9})
    try:
        time.sleep(0.06)
        assert index.impact(model, positions) is first  # served from the last copy meanwhile

        def refreshed() -> bool:
            with index._lock:
                latest = index._impact
            return latest is not None and latest.needs.get(nonprofit) == 4e9

        wait_for(refreshed)  # with no request in between: the refresh computed it
        ready = index.impact(model, positions)
        assert ready.needs.get(nonprofit) == 4e9
        assert ready.values[positions[nonprofit]] == 1.0  # the neediest by far
        assert ready.weights() == [0.5]  # the weight requests used is ready too
    finally:
        served_store.write(set_need, {"id": nonprofit, "funding_need": None})


def test_requests_keep_the_last_impact_while_the_refresh_computes_the_next(
    served_store: GraphStore, model: ModelArtifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    positions = {n: i for i, n in enumerate(model.nonprofit_ids)}
    nonprofit = model.nonprofit_ids[-5]
    index = _NeedIndex(StoreMatches(served_store), refresh_s=0.05, store_timeout_s=TIMEOUT_S)
    first = index.impact(model, positions)
    real, gate = matching.impact_of, threading.Event()
    computed_by: list[str] = []

    def held(unmet: Any) -> Any:
        computed_by.append(threading.current_thread().name)
        if threading.current_thread() is not threading.main_thread():
            gate.wait(10)  # the background refresh's computation, held
        return real(unmet)

    monkeypatch.setattr(matching, "impact_of", held)
    set_need = statement("api/set_funding_need")
    served_store.write(set_need, {"id": nonprofit, "funding_need": 4e9})
    try:
        time.sleep(0.06)
        index.impact(model, positions)  # starts the refresh
        wait_for(lambda: bool(computed_by))
        # The refresh has read the change and is computing its impact: requests meanwhile are
        # served the last impact, and none computes one of its own.
        for _ in range(3):
            assert index.impact(model, positions) is first
        assert threading.main_thread().name not in computed_by
        gate.set()
        wait_for(lambda: settled(index))
        assert index.impact(model, positions).needs.get(nonprofit) == 4e9
        assert computed_by.count(threading.main_thread().name) == 0
    finally:
        gate.set()
        served_store.write(set_need, {"id": nonprofit, "funding_need": None})


def test_a_refresh_that_changes_nothing_keeps_the_impact(
    served_store: GraphStore, model: ModelArtifact
) -> None:
    positions = {n: i for i, n in enumerate(model.nonprofit_ids)}
    nonprofit = model.nonprofit_ids[-4]
    set_need = statement("api/set_funding_need")
    # A change within the overlap window: every refresh for the next seconds reads it again.
    served_store.write(set_need, {"id": nonprofit, "funding_need": 123.0})
    try:
        index = _NeedIndex(StoreMatches(served_store), refresh_s=0.05, store_timeout_s=TIMEOUT_S)
        first = index.impact(model, positions)
        assert first.needs.get(nonprofit) == 123.0
        for _ in range(3):
            time.sleep(0.06)
            index.impact(model, positions)  # starts a refresh that re-reads the change
            wait_for(lambda: settled(index))
            assert index.impact(model, positions) is first
    finally:
        served_store.write(set_need, {"id": nonprofit, "funding_need": None})


def test_the_app_reads_needs_and_impact_at_start_up(served_graph: ServedGraph) -> None:
    app = create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    index = app.state.services.matches._needs
    assert index._impact is None
    with TestClient(app):
        assert index._needs is not None
        assert index._impact is not None and index._impact.model is not None


# -- the refresh's clock and overlap, on both stores --------------------------------------------

NONPROFITS = Statement("test/nonprofits", "UNWIND $ids AS id CREATE (:Nonprofit {id: id})")


class Shifted:
    """A repository whose clock reads `shift_ms` ahead of the store's, as the read that began
    at that later time would; it counts the rows its change reads return, and runs `after_read`
    once a change read has returned (a write committing after that read)."""

    def __init__(self, inner: MatchRepository) -> None:
        self.inner = inner
        self.shift_ms = 0
        self.rows = 0
        self.after_read: list[Any] = []

    def needs(self) -> dict[str, float]:
        return self.inner.needs()

    def clock(self) -> int:
        return self.inner.clock() + self.shift_ms

    def needs_changed(self, since: int) -> dict[str, float]:
        found = self.inner.needs_changed(since)
        self.rows += len(found)
        while self.after_read:
            self.after_read.pop(0)()
        return found


@pytest.fixture
def nonprofits(store: GraphStore) -> list[str]:
    ids = [f"nonprofit-{i:03d}" for i in range(100)]
    store.write(NONPROFITS, {"ids": ids})
    return ids


def test_a_write_from_a_process_whose_clock_runs_behind_is_found_by_the_next_refresh(
    store: GraphStore, nonprofits: list[str]
) -> None:
    index = _NeedIndex(StoreMatches(store), refresh_s=5.0, store_timeout_s=TIMEOUT_S)
    assert index._read_changes() == {}
    # A writer an hour behind, passing its clock as writers used to (the statement ignores it).
    behind = int(time.time()) - 3600
    store.write(statement("api/set_funding_need"),
                {"id": nonprofits[0], "funding_need": 10.0, "now": behind})
    assert index._read_changes() == {nonprofits[0]: 10.0}


@pytest.mark.parametrize("stamped_before_s", [0.0, TIMEOUT_S])
def test_a_change_committed_after_a_read_began_is_found_by_the_next_refresh(
    store: GraphStore, nonprofits: list[str], monkeypatch: pytest.MonkeyPatch,
    stamped_before_s: float,
) -> None:
    """A write stamped up to the store timeout before a read began, committed after that read
    returned, is found by the next: whatever the API process's own clock says (two minutes
    ahead of the store's here)."""
    real = time.time
    monkeypatch.setattr(matching, "time", SimpleNamespace(
        time=lambda: real() + 120, monotonic=time.monotonic
    ))
    repository = Shifted(StoreMatches(store))
    index = _NeedIndex(cast(MatchRepository, repository), refresh_s=5.0,
                       store_timeout_s=TIMEOUT_S)
    index._read_changes()
    set_need = statement("api/set_funding_need")
    # The read below begins (by its clock) `stamped_before_s` after the write's stamp.
    repository.shift_ms = int(stamped_before_s * 1000)
    repository.after_read.append(
        lambda: store.write(set_need, {"id": nonprofits[1], "funding_need": 7.0})
    )
    assert nonprofits[1] not in index._read_changes()  # committed after this read
    assert index._read_changes().get(nonprofits[1]) == 7.0


def test_a_bulk_update_is_re_read_for_the_store_timeout_not_a_minute(
    store: GraphStore, nonprofits: list[str]
) -> None:
    """Refreshes every 5 s for a minute after a bulk update of needs re-read each changed row
    while a write could still be committing (the store timeout plus Neo4j's timeout check, 12
    s by default: 3 refreshes after the first read), not on each of the 12 refreshes a minute's
    overlap made. Time is the store's clock shifted, not slept."""
    refresh_s = 5.0
    repository = Shifted(StoreMatches(store))
    index = _NeedIndex(cast(MatchRepository, repository), refresh_s=refresh_s,
                       store_timeout_s=TIMEOUT_S)
    index._read_all()
    set_need = statement("api/set_funding_need")
    for i, nonprofit in enumerate(nonprofits):
        store.write(set_need, {"id": nonprofit, "funding_need": 1.0 + i})
    reads = []
    for step in range(13):  # the refreshes of the minute after the update
        repository.shift_ms = int(step * refresh_s * 1000)
        before = repository.rows
        needs = index._read_changes()
        reads.append(repository.rows - before)
    assert needs == {n: 1.0 + i for i, n in enumerate(nonprofits)}
    overlap_s = TIMEOUT_S + _NeedIndex.TIMEOUT_CHECK_S
    assert reads[0] == len(nonprofits)
    assert sum(reads) <= len(nonprofits) * (1 + math.ceil(overlap_s / refresh_s))
    assert reads[-1] == 0
