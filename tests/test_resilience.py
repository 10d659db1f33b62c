"""A store that goes away: fast UNAVAILABLE errors, and recovery without a restart."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import TEST_AUTH, ServedGraph, free_port
from starlette.testclient import TestClient

from entrypoints.asgi import create_app
from graph_store import StoreSettings
from graph_store.embedded import EmbeddedFalkorDB

QUERY = {"query": '{ nonprofit(id: "nonprofit-00001") { id name } }'}


def assert_unavailable_within_a_second(client: TestClient, backend: str) -> None:
    started = time.monotonic()
    body = client.post("/graphql", json=QUERY).json()
    assert time.monotonic() - started < 1.0
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAVAILABLE"]
    assert backend not in body["errors"][0]["message"]  # no internals leak
    assert client.get("/readyz").status_code == 503


def test_store_down_is_unavailable_within_a_second_and_recovers(
    served_graph: ServedGraph, tmp_path: Path
) -> None:
    port = free_port()
    settings = served_graph.store_settings.model_copy(update={"falkordb_port": port})
    app_settings = served_graph.app_settings.model_copy(update={"redis_url": None})
    with TestClient(create_app(app_settings, settings, TEST_AUTH)) as client:
        assert_unavailable_within_a_second(client, "falkordb")

        server = EmbeddedFalkorDB(tmp_path / "falkordb", port,
                                  password=settings.falkordb_secret())
        server.start()
        try:
            # Same process, same app: the next request simply works (an empty graph here).
            body = client.post("/graphql", json=QUERY).json()
            assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
            assert client.get("/readyz").json()["store"] is True
        finally:
            server.stop()


def test_a_neo4j_that_is_down_is_unavailable_within_a_second(served_graph: ServedGraph) -> None:
    """Production's store: the driver would otherwise retry for many seconds first."""
    settings = StoreSettings(backend="neo4j", neo4j_uri=f"neo4j://127.0.0.1:{free_port()}")
    app_settings = served_graph.app_settings.model_copy(update={"redis_url": None})
    with TestClient(create_app(app_settings, settings, TEST_AUTH)) as client:
        assert_unavailable_within_a_second(client, "neo4j")
