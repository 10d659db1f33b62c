"""Runtime instruments over real HTTP (uvicorn): event-loop lag, GC pauses, requests per worker
process, and slow requests' phases (metrics and the Server-Timing header)."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Iterator

import httpx
import pytest
from browser.server import serve
from conftest import TEST_AUTH, ServedGraph
from prometheus_client import CollectorRegistry

from donor_match.services.auth import Role
from entrypoints.asgi import create_app
from graphql_api import observability
from graphql_api.observability import RuntimeMetrics

QUERY = """query Page($d: ID!) { matches(donorId: $d, first: 5) {
  id score nonprofit { id name } reasons { sharedCauses { id } } } }"""


def metric(text: str, name: str) -> float:
    """The sum of the samples whose line starts with `name` (0 where none is exported)."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


@pytest.fixture(scope="module")
def live(served_graph: ServedGraph) -> Iterator[str]:
    settings = served_graph.app_settings.model_copy(update={"server_timing": True})
    with serve(create_app(settings, served_graph.store_settings, TEST_AUTH)) as url:
        yield url


@pytest.fixture
def http(live: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live, timeout=30) as client:
        yield client


def page(http: httpx.Client, served_graph: ServedGraph) -> httpx.Response:
    donor_id = served_graph.tables["donations"].column("donor_id")[0].as_py()
    response = http.post(
        "/graphql",
        json={"query": QUERY, "variables": {"d": donor_id}},
        headers=served_graph.token(Role.ADMIN, "ops"),
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    return response


def test_requests_per_worker_process_move(
    http: httpx.Client, served_graph: ServedGraph
) -> None:
    name = f'donor_match_worker_requests_total{{worker="{os.getpid()}"}}'
    before = metric(http.get("/metrics").text, name)
    for _ in range(3):
        page(http, served_graph)
    # The three pages and the first scrape, counted by the process that served them.
    assert metric(http.get("/metrics").text, name) - before == 4
    assert metric(http.get("/metrics").text, "donor_match_worker_requests_in_flight") == 1


def test_slow_requests_keep_their_phases(
    http: httpx.Client, served_graph: ServedGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observability, "SLOW_REQUEST_S", 0.0)  # every request counts as slow
    text = http.get("/metrics").text
    slow_before = metric(text, "donor_match_slow_requests_total")
    phase = 'donor_match_slow_request_phase_seconds_count{phase="%s"}'
    phases = ("resolver:Query.matches", "store", "parse_validate", "execution", "serialization",
              "queueing", "other")
    before = {p: metric(text, phase % p) for p in phases}
    page(http, served_graph)
    text = http.get("/metrics").text
    assert metric(text, "donor_match_slow_requests_total") - slow_before >= 1
    for p in phases:
        assert metric(text, phase % p) - before[p] >= 1, f"phase {p} not observed"


def test_server_timing_phases_add_up_to_the_total(
    http: httpx.Client, served_graph: ServedGraph
) -> None:
    header = page(http, served_graph).headers["server-timing"]
    timings = {
        entry.split(";dur=")[0].strip(): float(entry.split(";dur=")[1])
        for entry in header.split(",")
    }
    total = timings.pop("total")
    assert {"resolver.Query.matches", "store", "parse_validate", "serialization"} <= set(timings)
    assert timings["store"] > 0
    # The phases partition the request's time in the app (each rounded to a microsecond).
    assert sum(timings.values()) == pytest.approx(total, abs=0.01)


def test_server_timing_is_off_by_default(client: httpx.Client) -> None:
    assert "server-timing" not in client.get("/healthz").headers


def test_gc_pauses_are_exported(http: httpx.Client) -> None:
    name = 'donor_match_gc_pause_seconds_count{generation="2"}'
    before = metric(http.get("/metrics").text, name)
    gc.collect()  # the server runs in this process: its callback sees the collection
    assert metric(http.get("/metrics").text, name) - before >= 1


def test_event_loop_lag_is_sampled_over_http(http: httpx.Client) -> None:
    name = "donor_match_event_loop_lag_seconds_count"
    before = metric(http.get("/metrics").text, name)
    time.sleep(1.0)  # ten samples on an idle loop; at least two even on a loaded host
    assert metric(http.get("/metrics").text, name) - before >= 2


def test_event_loop_lag_measures_a_blocked_loop() -> None:
    runtime = RuntimeMetrics(CollectorRegistry())

    async def block_the_loop() -> None:
        watcher = asyncio.get_running_loop().create_task(runtime.watch_loop(interval_s=0.02))
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # what a long synchronous step on the loop does
        await asyncio.sleep(0.05)
        watcher.cancel()

    asyncio.run(block_the_loop())
    (sample,) = [s for m in runtime.loop_lag_max.collect() for s in m.samples]
    assert sample.value >= 0.25
    buckets = {s.labels["le"]: s.value for m in runtime.loop_lag.collect() for s in m.samples
               if s.name.endswith("_bucket")}
    assert buckets["0.25"] < buckets["+Inf"]  # the blocked wake-up counted as over 0.25 s
