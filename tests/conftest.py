"""Shared fixtures: a real embedded FalkorDB server, one fresh graph per test."""

from __future__ import annotations

import socket
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
from etl.loader import load_tables
from etl.snapshot import export_snapshot
from etl.synth import SynthConfig, generate
from etl.tables import Tables
from graph_model.config import TrainConfig
from graph_model.train import train
from graph_store import GraphStore, StoreSettings, open_store
from graph_store.embedded import EmbeddedFalkorDB
from graphql_api.app import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedFalkorDB]:
    server = EmbeddedFalkorDB(tmp_path_factory.mktemp("falkordb"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store_settings(falkordb_server: EmbeddedFalkorDB, tmp_path: Path) -> StoreSettings:
    return StoreSettings(
        backend="falkordb",
        falkordb_port=falkordb_server.port,
        graph_name=f"test_{uuid.uuid4().hex[:12]}",
        data_dir=tmp_path / "var",
        timeout_s=10.0,
    )


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
def served_graph(
    falkordb_server: EmbeddedFalkorDB, tmp_path_factory: pytest.TempPathFactory
) -> ServedGraph:
    """Synthetic graph → store → snapshot → trained TF-GNN model, as `make demo` does it."""
    root = tmp_path_factory.mktemp("served")
    store_settings = StoreSettings(
        backend="falkordb",
        falkordb_port=falkordb_server.port,
        graph_name="served",
        analyst_graph_name="served_analyst",
        timeout_s=10,
    )
    app_settings = AppSettings(models_dir=root / "models", snapshots_dir=root / "snapshots")
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
