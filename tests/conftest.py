"""Shared fixtures: a real embedded FalkorDB server, one fresh graph per test."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph_store import GraphStore, StoreSettings, open_store
from graph_store.embedded import EmbeddedFalkorDB


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
