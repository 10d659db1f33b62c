"""Shared fixtures: real stores, one fresh graph per test, on both backends.

A test that uses `store` or `store_settings` runs on the embedded FalkorDB and on a real Neo4j
server; one that uses `served_graph` (the API on a trained model) runs on FalkorDB unless its
module or function is marked `@pytest.mark.backends("falkordb", "neo4j")`. `--backends falkordb`
narrows a run to one. The Neo4j servers start in the background as soon as collection shows a
test needs them, once per session.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from donor_match.services.auth import Role, TokenService
from donor_match.settings import AppSettings, AuthSettings
from entrypoints.asgi import create_app
from etl.loader import load_tables
from etl.snapshot import export_snapshot
from etl.synth import SynthConfig, generate
from etl.tables import Tables
from graph_model.config import TrainConfig
from graph_model.train import train
from graph_store import GraphStore, Statement, StoreSettings, open_store
from graph_store.embedded import EmbeddedFalkorDB
from graph_store.local_neo4j import LocalNeo4j


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BACKENDS = ("falkordb", "neo4j")
# Test-only passwords; local and production servers take theirs from the environment.
NEO4J_TEST_PASSWORDS = {
    "neo4j_password": "app-test-secret", "neo4j_analyst_password": "analyst-test-secret",
}
WIPE = Statement("test/wipe", "MATCH (n) DETACH DELETE n")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backends", default=",".join(BACKENDS),
                     help="comma-separated store backends to run store tests on")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names): the store backends a served-graph test runs on"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None:
        names = marker.args
    elif "served_graph" in metafunc.fixturenames:
        names = ("falkordb",)  # the API suite on Neo4j is opted into where it matters
    else:
        names = BACKENDS
    enabled = metafunc.config.getoption("--backends").split(",")
    metafunc.parametrize("backend", [n for n in names if n in enabled], indirect=True,
                         scope="session")


class Neo4jServers:
    """A local Neo4j pair (the product's server and the analysts'), started in a thread so the
    JVMs boot while the FalkorDB tests run."""

    def __init__(self, name: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"donor-match-neo4j-{name}-"))
        self.settings = StoreSettings(
            # A cold JVM on a busy 2-core machine can take seconds over its first handshake.
            backend="neo4j", data_dir=self.root, timeout_s=20, connect_timeout_s=10,
            neo4j_uri=f"neo4j://127.0.0.1:{free_port()}",
            neo4j_analyst_uri=f"neo4j://127.0.0.1:{free_port()}",
            neo4j_heap="512m", neo4j_pagecache="64m", **NEO4J_TEST_PASSWORDS,
        )
        self.local = LocalNeo4j(self.settings)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self.local.start()
        except BaseException as exc:  # surfaced by ready(), in the test that needs the server
            self._error = exc

    def ready(self) -> StoreSettings:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.settings

    def wipe(self) -> None:
        for analyst in (False, True):
            store = open_store(self.settings, analyst=analyst)
            try:
                wipe(store)
            finally:
                store.close()

    def stop(self) -> None:
        self._thread.join()
        self.local.stop()
        if self._error is None:  # else its logs stay for the reader of the error
            shutil.rmtree(self.root, ignore_errors=True)


_neo4j: dict[str, Neo4jServers] = {}


def neo4j_servers(name: str) -> Neo4jServers:
    if name not in _neo4j:
        _neo4j[name] = Neo4jServers(name)
    return _neo4j[name]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Boot the Neo4j servers that collected tests will need, before the first test runs."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "neo4j":
            neo4j_servers("served" if "served_graph" in item.fixturenames else "scratch")


def pytest_sessionfinish() -> None:
    for servers in _neo4j.values():
        servers.stop()


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# Both test servers' password, made up per session (URL-safe, so it can sit in a redis:// URL).
FALKORDB_PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedFalkorDB]:
    server = EmbeddedFalkorDB(tmp_path_factory.mktemp("falkordb"), free_port(),
                              password=FALKORDB_PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def falkordb_analyst_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmbeddedFalkorDB]:
    server = EmbeddedFalkorDB(tmp_path_factory.mktemp("falkordb-analyst"), free_port(),
                              analyst=True, password=FALKORDB_PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store_settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    return fresh_store_settings(backend, request, tmp_path / "var")


def fresh_store_settings(
    backend: str, request: pytest.FixtureRequest, data_dir: Path
) -> StoreSettings:
    """A fresh, empty graph: a new FalkorDB graph, or the scratch Neo4j servers wiped."""
    if backend == "neo4j":
        servers = neo4j_servers("scratch")
        servers.ready()
        servers.wipe()
        return servers.settings.model_copy(update={"data_dir": data_dir})
    return StoreSettings(
        backend="falkordb",
        falkordb_port=request.getfixturevalue("falkordb_server").port,
        falkordb_analyst_port=request.getfixturevalue("falkordb_analyst_server").port,
        falkordb_password=SecretStr(FALKORDB_PASSWORD),
        graph_name=f"test_{uuid.uuid4().hex[:12]}",
        analyst_graph_name=f"test_{uuid.uuid4().hex[:12]}_analyst",
        data_dir=data_dir,
        timeout_s=10.0,
    )


def wipe(store: GraphStore) -> None:
    store.write(WIPE)


def store_env(settings: StoreSettings) -> dict[str, str]:
    """The environment that makes the CLI (a subprocess) use these store settings."""
    env = {**os.environ, "DONOR_MATCH_STORE": settings.backend,
           "DONOR_MATCH_DATA_DIR": str(settings.data_dir),
           "DONOR_MATCH_STORE_TIMEOUT_S": str(settings.timeout_s)}
    if settings.backend == "neo4j":
        return env | {
            "NEO4J_URI": settings.neo4j_uri, "NEO4J_ANALYST_URI": settings.neo4j_analyst_uri,
            "NEO4J_PASSWORD": settings.neo4j_password.get_secret_value(),
            "NEO4J_ANALYST_PASSWORD": settings.neo4j_analyst_password.get_secret_value(),
        }
    return env | {"DONOR_MATCH_FALKORDB_PORT": str(settings.falkordb_port),
                  "DONOR_MATCH_FALKORDB_PASSWORD": settings.falkordb_secret(),
                  "DONOR_MATCH_FALKORDB_ANALYST_PORT": str(settings.falkordb_analyst_port),
                  "DONOR_MATCH_GRAPH": settings.graph_name,
                  "DONOR_MATCH_ANALYST_GRAPH": settings.analyst_graph_name}


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[GraphStore]:
    opened = open_store(store_settings)
    opened.apply_schema()
    yield opened
    opened.close()


# A tiny graph with the planted structure, loaded once and served by a model trained on it.
TINY_GRAPH = SynthConfig(donors=300, nonprofits=60, causes=8, regions=6, donations=4_000, seed=3)
TINY_TRAINING = TrainConfig(steps=60, seed=0)


# Test clients call from loopback, as an operator or a sidecar would: /metrics answers only
# loopback callers (or a bearer token), and TestClient's default address is not an IP.
LOOPBACK = ("127.0.0.1", 50000)

# Test-only signing key; real deployments take theirs from the environment.
TEST_AUTH = AuthSettings(jwt_secret=SecretStr("test-signing-key-" + "x" * 32))


@dataclass(frozen=True)
class ServedGraph:
    store_settings: StoreSettings
    app_settings: AppSettings
    tables: Tables

    def token(self, role: Role, subject: str) -> dict[str, str]:
        """Headers that authenticate as `subject` in `role`."""
        return {"Authorization": f"Bearer {TokenService(TEST_AUTH).issue(subject, role)}"}


@pytest.fixture(scope="session")
def served_graph(backend: str, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> ServedGraph:
    """Synthetic graph → store → snapshot → trained TF-GNN model, as `make demo` does it."""
    root = tmp_path_factory.mktemp(f"served-{backend}")
    events_url = None
    if backend == "neo4j":
        store_settings = neo4j_servers("served").ready()
        # Neo4j carries no events: API processes share them through a Redis, as deployed; here
        # the embedded FalkorDB server's.
        events_url = (f"redis://:{FALKORDB_PASSWORD}@127.0.0.1:"
                      f"{request.getfixturevalue('falkordb_server').port}/0")
    else:
        store_settings = StoreSettings(
            backend="falkordb",
            falkordb_port=request.getfixturevalue("falkordb_server").port,
            falkordb_analyst_port=request.getfixturevalue("falkordb_analyst_server").port,
            falkordb_password=SecretStr(FALKORDB_PASSWORD),
            graph_name="served",
            analyst_graph_name="served_analyst",
            timeout_s=10,
        )
    app_settings = AppSettings(models_dir=root / "models", snapshots_dir=root / "snapshots",
                               redis_url=events_url)
    tables = generate(TINY_GRAPH)
    store = open_store(store_settings)
    try:
        store.apply_schema()
        load_tables(store, tables)
        snapshot_dir = export_snapshot(store, app_settings.snapshots_dir)
    finally:
        store.close()
    train(snapshot_dir, app_settings.models_dir, TINY_TRAINING)
    return ServedGraph(store_settings, app_settings, tables)


@pytest.fixture(scope="module")
def client(served_graph: ServedGraph) -> Iterator[TestClient]:
    """The API on the served graph, one app per test module (modules with other settings
    define their own)."""
    app = create_app(served_graph.app_settings, served_graph.store_settings, TEST_AUTH)
    with TestClient(app, client=LOOPBACK) as test_client:
        yield test_client


def graphql(client: TestClient, query: str, headers: dict[str, str] | None = None,
            **variables: Any) -> dict[str, Any]:
    """POST one operation; GraphQL answers 200 even for errors, which the body carries."""
    response = client.post("/graphql", json={"query": query, "variables": variables},
                           headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
