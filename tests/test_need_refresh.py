"""The funding-need refresh stays off the request path: the background refresh computes the
impact requests rank with, a re-read that changes nothing rebuilds nothing, and the app reads
the needs at start-up rather than on its first page."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TEST_AUTH, ServedGraph, wait_for
from starlette.testclient import TestClient

from donor_match.repositories.store import StoreMatches
from donor_match.services import matching
from donor_match.services.matching import _NeedIndex
from donor_match.services.served_model import ServedModel
from entrypoints.asgi import create_app
from graph_model.artifacts import ModelArtifact
from graph_store import GraphStore, open_store, statement


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
    index = _NeedIndex(StoreMatches(served_store), refresh_s=0.05)
    first = index.impact(model, positions)
    first.multiplier(0.5)  # a weight requests ranked with
    set_need = statement("api/set_funding_need")
    served_store.write(set_need, {"id": nonprofit, "funding_need": 4e9, "now": int(time.time())})
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
        served_store.write(
            set_need, {"id": nonprofit, "funding_need": None, "now": int(time.time())}
        )


def test_requests_keep_the_last_impact_while_the_refresh_computes_the_next(
    served_store: GraphStore, model: ModelArtifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    positions = {n: i for i, n in enumerate(model.nonprofit_ids)}
    nonprofit = model.nonprofit_ids[-5]
    index = _NeedIndex(StoreMatches(served_store), refresh_s=0.05)
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
    served_store.write(set_need, {"id": nonprofit, "funding_need": 4e9, "now": int(time.time())})
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
        served_store.write(
            set_need, {"id": nonprofit, "funding_need": None, "now": int(time.time())}
        )


def test_a_refresh_that_changes_nothing_keeps_the_impact(
    served_store: GraphStore, model: ModelArtifact
) -> None:
    positions = {n: i for i, n in enumerate(model.nonprofit_ids)}
    nonprofit = model.nonprofit_ids[-4]
    set_need = statement("api/set_funding_need")
    # A change within the overlap window: every refresh for the next minute reads it again.
    served_store.write(set_need, {"id": nonprofit, "funding_need": 123.0, "now": int(time.time())})
    try:
        index = _NeedIndex(StoreMatches(served_store), refresh_s=0.05)
        first = index.impact(model, positions)
        assert first.needs.get(nonprofit) == 123.0
        for _ in range(3):
            time.sleep(0.06)
            index.impact(model, positions)  # starts a refresh that re-reads the change
            wait_for(lambda: settled(index))
            assert index.impact(model, positions) is first
    finally:
        served_store.write(
            set_need, {"id": nonprofit, "funding_need": None, "now": int(time.time())}
        )


def test_the_app_reads_needs_and_impact_at_start_up(served_graph: ServedGraph) -> None:
    app = create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    index = app.state.services.matches._needs
    assert index._impact is None
    with TestClient(app):
        assert index._needs is not None
        assert index._impact is not None and index._impact.model is not None
