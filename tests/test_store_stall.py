"""A store that stops answering (SIGSTOP: connections stay open, nothing comes back)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import LOOPBACK, TEST_AUTH, ServedGraph, error_codes, free_port, graphql
from starlette.testclient import TestClient

from entrypoints.asgi import create_app
from graph_store import StoreSettings, StoreUnavailableError, open_store, statement
from graph_store.embedded import EmbeddedFalkorDB


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedFalkorDB]:
    # Its own server: freezing the session's would stall every other test's store.
    server = EmbeddedFalkorDB(tmp_path_factory.mktemp("stalled"), free_port())
    server.start()
    yield server
    server.stop()


@contextmanager
def frozen(server: EmbeddedFalkorDB) -> Iterator[None]:
    pid = server.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def settings_for(server: EmbeddedFalkorDB, tmp_path: Path) -> StoreSettings:
    return StoreSettings(backend="falkordb", falkordb_port=server.port,
                         falkordb_password=server.password, graph_name="stalled",
                         analyst_graph_name="stalled_analyst", data_dir=tmp_path, timeout_s=1.0)


def test_a_stalled_store_is_unavailable_not_an_error(
    own_server: EmbeddedFalkorDB, tmp_path: Path
) -> None:
    store = open_store(settings_for(own_server, tmp_path))
    try:
        store.apply_schema()
        with frozen(own_server), pytest.raises(StoreUnavailableError):
            store.read(statement("api/causes"))
        assert store.read(statement("api/causes")) == []  # and back once it answers
    finally:
        store.close()


def test_the_api_answers_unavailable_without_the_uri_and_is_not_ready(
    own_server: EmbeddedFalkorDB, served_graph: ServedGraph, tmp_path: Path
) -> None:
    app = create_app(served_graph.app_settings, settings_for(own_server, tmp_path), TEST_AUTH)
    with TestClient(app, client=LOOPBACK) as client:
        assert "errors" not in graphql(client, "{ causes { id } }")
        assert client.get("/readyz").status_code == 200
        with frozen(own_server):
            body = graphql(client, "{ causes { id } }")
            started = time.monotonic()
            ready = client.get("/readyz")
            waited = time.monotonic() - started
        assert error_codes(body) == ["UNAVAILABLE"]
        assert "falkordb://" not in str(body) and str(own_server.port) not in str(body)
        assert ready.status_code == 503 and ready.json()["store"] is False
        # Within the probe's own bound (1 s), not the store client's (timeout + 1 s).
        assert waited < 1.9, waited
