"""Contract tests of the store port, run against every backend that is reachable.

FalkorDB always runs here (a real embedded server). Neo4j runs where `NEO4J_URI` points at a
server (CI outside this machine, with a Neo4j 5 service container).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from neo4j.graph import Graph, Node
from neo4j.time import Date, DateTime, Duration

from graph_store import (
    GraphStore,
    Statement,
    StoreError,
    StoreForbiddenError,
    StoreSettings,
    StoreTimeoutError,
    StoreUnavailableError,
    open_analytics_store,
    open_store,
    statement,
)
from graph_store.cypher import CYPHER_ROOT, script
from graph_store.falkordb_store import FalkorDBStore
from graph_store.neo4j_store import _plain


def merge(store: GraphStore, name: str, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return store.write(statement(f"etl/merge_{name}"), {"rows": rows, "load_id": "contract"})


def test_write_then_read_round_trips_values(store: GraphStore) -> None:
    suffix = uuid.uuid4().hex
    region = {"id": f"r-{suffix}", "name": "North", "lat": 47.5, "lon": -122.25}
    merge(store, "regions", [region])
    written = merge(
        store, "donors", [{"id": f"d-{suffix}", "name": "Ada", "region_id": region["id"]}]
    )
    assert written == [{"written": 1, "changed": 1}]
    rows = store.read(statement("api/donors_by_ids"), {"ids": [f"d-{suffix}"]})
    assert rows == [
        {
            "id": f"d-{suffix}",
            "name": "Ada",
            "budget": None,
            "region_id": region["id"],
            "region_name": "North",
            "causes": [],
        }
    ]


def test_reading_a_property_no_node_has_logs_nothing(
    store: GraphStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Neo4j notes a read of a property key it has never stored; the driver logged a warning
    for every such query (a nonprofit page reads `description`, which loads may not set)."""
    suffix = uuid.uuid4().hex
    merge(store, "nonprofits", [{"id": f"n-{suffix}", "name": "Shelter"}])
    with caplog.at_level("INFO"):
        rows = store.read(statement("api/nonprofits_by_ids"), {"ids": [f"n-{suffix}"]})
    assert rows[0]["description"] is None
    assert [r.getMessage() for r in caplog.records if r.name.startswith("neo4j")] == []


def test_apply_schema_is_idempotent_and_enforces_unique_donation_ids(
    store: GraphStore,
) -> None:
    store.apply_schema()  # a second time: no error
    suffix = uuid.uuid4().hex
    merge(store, "regions", [{"id": f"r-{suffix}", "name": "R", "lat": 0.0, "lon": 0.0}])
    merge(
        store,
        "donors",
        [{"id": f"{who}-{suffix}", "name": who, "region_id": f"r-{suffix}"} for who in "ab"],
    )
    merge(
        store,
        "nonprofits",
        [{"id": f"n-{suffix}", "name": "N", "region_id": f"r-{suffix}"}],
    )
    gift = {"id": f"g-{suffix}", "nonprofit_id": f"n-{suffix}", "amount": 5.0, "ts": 1}
    merge(store, "donations", [{**gift, "donor_id": f"a-{suffix}"}])
    # The same donation id from another donor would be a second relationship: refused.
    with pytest.raises(StoreError):
        merge(store, "donations", [{**gift, "donor_id": f"b-{suffix}"}])


def test_moving_a_donor_replaces_its_region(store: GraphStore) -> None:
    suffix = uuid.uuid4().hex
    merge(
        store,
        "regions",
        [{"id": f"{r}-{suffix}", "name": r, "lat": 0.0, "lon": 0.0} for r in "xy"],
    )
    donor = {"id": f"d-{suffix}", "name": "D", "region_id": f"x-{suffix}"}
    merge(store, "donors", [donor])
    merge(store, "donors", [{**donor, "region_id": f"y-{suffix}"}])
    rows = store.read(statement("api/donors_by_ids"), {"ids": [donor["id"]]})
    assert [row["region_id"] for row in rows] == [f"y-{suffix}"]


def test_failed_statement_raises_store_error_without_driver_types(store: GraphStore) -> None:
    bad = statement("etl/merge_donors")
    with pytest.raises(StoreError) as raised:
        store.write(bad, {"rows": "not a list"})
    assert bad.name in str(raised.value)


def test_a_statement_past_the_timeout_raises_the_timeout_type(
    store: GraphStore, store_settings: StoreSettings
) -> None:
    """Each adapter maps the server's own timeout (a code, or FalkorDB's fixed message) onto one
    type, and its `detail` holds the server's words without the store's address."""
    store.write(Statement("test/probes", "UNWIND range(1, 1000) AS i CREATE (:Probe {i: i})"))
    hurried = open_store(store_settings.model_copy(update={"timeout_s": 0.05}))
    # A billion rows, each filtered: both servers check their timeout while scanning. (Without
    # the filter Neo4j may answer count(*) of the product from its count store at once.)
    slow = Statement("test/slow", "MATCH (a:Probe), (b:Probe), (c:Probe) "
                     "WHERE a.i + b.i + c.i < 0 RETURN count(*) AS n")
    try:
        with pytest.raises(StoreTimeoutError) as raised:
            hurried.read(slow)
    finally:
        hurried.close()
    assert "test/slow" in str(raised.value)
    assert raised.value.detail and hurried.uri not in raised.value.detail


@pytest.mark.backends("falkordb")  # Neo4j's: test_a_neo4j_that_is_down_is_unavailable_...
def test_unreachable_store_fails_fast_with_an_actionable_message(
    store_settings: StoreSettings,
) -> None:
    from conftest import free_port

    down = open_store(store_settings.model_copy(update={"falkordb_port": free_port()}))
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        down.read(statement("api/causes"))
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert "falkordb://127.0.0.1:" in message
    assert "donor-match store start" in message


def test_every_statement_comes_from_a_cypher_file() -> None:
    names = sorted(
        p.relative_to(CYPHER_ROOT).with_suffix("").as_posix() for p in CYPHER_ROOT.rglob("*.cypher")
    )
    assert "schema" in names
    for name in names:
        assert script(name), f"{name}.cypher holds no statement"


@pytest.mark.backends("falkordb")
def test_falkordb_adapter_translates_every_schema_statement(
    store_settings: StoreSettings,
) -> None:
    store = open_store(store_settings)
    assert isinstance(store, FalkorDBStore)
    store.apply_schema()  # raises StoreError on any statement it cannot translate
    store.close()


def test_reading_a_graph_nothing_has_written_yet_is_empty(store_settings: StoreSettings) -> None:
    fresh = open_store(store_settings)
    assert fresh.read(statement("api/causes")) == []
    fresh.close()


def test_nodes_and_relationships_read_alike_on_every_backend(store: GraphStore) -> None:
    """What an analyst's `RETURN n` shows must not depend on the store behind the API."""
    suffix = uuid.uuid4().hex
    merge(store, "regions", [{"id": f"r-{suffix}", "name": "North"}])
    merge(
        store, "donors", [{"id": f"d-{suffix}", "name": "Ada", "region_id": f"r-{suffix}"}]
    )
    rows = store.read(
        Statement("contract", "MATCH (d:Donor {id: $id})-[l:LIVES_IN]->(r:Region) RETURN d, l"),
        {"id": f"d-{suffix}"},
    )
    assert len(rows) == 1
    donor, lives_in = rows[0]["d"], rows[0]["l"]
    assert donor["labels"] == ["Donor"]
    assert {"id": f"d-{suffix}", "name": "Ada"}.items() <= donor["properties"].items()
    assert lives_in["type"] == "LIVES_IN"
    assert isinstance(lives_in["properties"], dict)


def test_a_write_through_the_read_path_is_refused_as_forbidden(
    store: GraphStore,
) -> None:
    with pytest.raises(StoreForbiddenError):
        store.read(Statement("contract", "CREATE (p:Probe) RETURN p"))


def test_analysts_queries_run_as_their_own_neo4j_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not as the application's user, which may write: as the analysts' user, on the analysts'
    own server. (The driver connects lazily: no server needed.)"""
    for name, value in {
        "DONOR_MATCH_STORE": "neo4j", "NEO4J_URI": "neo4j://graph.example:7687",
        "NEO4J_ANALYST_URI": "neo4j://analysts.example:7687",
        "NEO4J_USER": "donor_match_app", "NEO4J_PASSWORD": "app-secret",
        "NEO4J_ANALYST_USER": "analyst", "NEO4J_ANALYST_PASSWORD": "reader-secret",
    }.items():
        monkeypatch.setenv(name, value)
    settings = StoreSettings()
    assert settings.neo4j_credentials(analysts=True) == ("analyst", "reader-secret")
    stores = [open_analytics_store(settings), open_store(settings, analyst=True)]
    try:
        assert [s.uri for s in stores] == [
            "neo4j://analyst@analysts.example:7687/neo4j",  # the API's analyticsQuery
            "neo4j://donor_match_app@analysts.example:7687/neo4j",  # the anonymize job, writing
        ]
    finally:
        for store in stores:
            store.close()


def test_neo4j_values_become_plain_json_values() -> None:
    """The driver's own value types, as an analyst's query returns them, made plain for the API's
    JSON (built here without a server: they are the driver's value classes)."""
    donor = Node(Graph(), "element-1", 1, ["Donor"], {"id": "d-1", "since": Date(2024, 1, 2)})
    row = {"d": donor, "at": [DateTime(2024, 1, 2, 3, 4, 5)], "gap": Duration(days=1)}
    assert _plain(row) == {
        "d": {"labels": ["Donor"], "properties": {"id": "d-1", "since": "2024-01-02"}},
        "at": ["2024-01-02T03:04:05.000000000"],
        "gap": "P1D",
    }


@contextmanager
def neo4j_that_is(state: str) -> Iterator[StoreSettings]:
    """Settings for a Neo4j that is down: nothing listening on its port ("refusing"), or a
    process that accepts connections and never answers ("silent")."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if state == "refusing":
            listener.close()
        else:
            listener.listen()
        yield StoreSettings(backend="neo4j", neo4j_uri=f"neo4j://127.0.0.1:{port}")


@pytest.mark.parametrize("state", ["refusing", "silent"])
def test_a_neo4j_that_is_down_is_unavailable_within_the_connect_timeout(state: str) -> None:
    """Not after the driver's retries (15-20 s when they ran for the statement timeout): the API
    answers UNAVAILABLE within a second. No server is needed to see it."""
    with neo4j_that_is(state) as settings:
        store = open_store(settings)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as raised:
            store.read(statement("api/causes"))
        elapsed = time.monotonic() - started
        store.close()
    assert elapsed < settings.connect_timeout_s + 0.3
    assert "neo4j://neo4j@127.0.0.1:" in str(raised.value)


def test_batch_jobs_can_have_neo4j_retry_transient_failures() -> None:
    with neo4j_that_is("refusing") as settings:
        store = open_store(settings.model_copy(update={"retry_s": 0.5}))
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            store.read(statement("api/causes"))
        store.close()
    assert time.monotonic() - started > 0.7  # the driver waits ~1 s before its one retry
