"""The local Neo4j servers: what the analysts' server refuses, and one clear error for each way
they cannot start."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from conftest import NEO4J_TEST_PASSWORDS, free_port, neo4j_servers

from graph_store import (
    Statement,
    StoreError,
    StoreForbiddenError,
    StoreSettings,
    open_analytics_store,
    open_store,
)
from graph_store.local_neo4j import (
    LocalNeo4j,
    Neo4jSetupError,
    find_java,
    passwords,
    resolve_classpath,
)

pytestmark = pytest.mark.backends("neo4j")


@pytest.fixture
def analyst(store_settings: StoreSettings):
    store = open_analytics_store(store_settings)
    yield store
    store.close()


def refused(store, cypher: str) -> StoreError:
    with pytest.raises(StoreError) as raised:
        store.read(Statement("analyst", cypher))
    return raised.value


def test_the_analysts_server_refuses_writes(analyst) -> None:
    assert isinstance(refused(analyst, "CREATE (:Probe) RETURN 1"), StoreForbiddenError)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://127.0.0.1:9/data.csv"])
def test_the_analysts_server_refuses_load_csv_from_files_and_addresses(analyst, url: str) -> None:
    error = refused(analyst, f"LOAD CSV FROM '{url}' AS line RETURN line LIMIT 1")
    assert "ExternalResourceFailed" in str(error)


def test_the_main_graph_cannot_be_reached_from_the_analysts_connection(
    store_settings: StoreSettings, analyst
) -> None:
    main = open_store(store_settings)
    try:
        main.write(Statement("probe", "CREATE (:Donor {id: 'main-only', name: 'Ada Lovelace'})"))
    finally:
        main.close()
    assert analyst.read(Statement("analyst", "MATCH (d:Donor) RETURN d.id AS id")) == []
    # The analysts' server knows no other database to switch to.
    refused(analyst, "USE system SHOW USERS")


def test_the_analysts_server_caps_a_query_s_memory(analyst) -> None:
    error = refused(analyst, "UNWIND range(1, 100000000) AS x RETURN collect(x) AS xs")
    assert "db.memory.transaction.max" in str(error)


def test_passwords_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path, neo4j_password="", neo4j_analyst_password="")
    first = passwords(settings)
    assert passwords(settings) == first
    for user, password in first.items():
        path = settings.neo4j_secrets_dir / user
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(password) >= 24
    assert settings.neo4j_credentials() == ("neo4j", first["neo4j"])


def test_a_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(Neo4jSetupError, match=r"Java 21 or newer; found no Java.*JAVA_HOME"):
        find_java(jvm_root=tmp_path)


def test_a_missing_maven_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(Neo4jSetupError, match=r"apt-get install maven"):
        resolve_classpath()


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = StoreSettings(
            data_dir=tmp_path, neo4j_uri=f"neo4j://127.0.0.1:{port}",
            neo4j_analyst_uri=f"neo4j://127.0.0.1:{free_port()}", **NEO4J_TEST_PASSWORDS,
        )
        with pytest.raises(Neo4jSetupError, match=rf"port {port} .* in use.*NEO4J_URI"):
            LocalNeo4j(settings).start()


def test_a_remote_uri_is_not_started_here(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path, neo4j_uri="neo4j://graph.example:7687")
    with pytest.raises(Neo4jSetupError, match="not this machine"):
        LocalNeo4j(settings)


def test_a_corrupt_data_directory_is_named(tmp_path: Path) -> None:
    """A store file overwritten with garbage: the server exits and says which directory."""
    neo4j_servers("scratch").ready()  # Maven's class path is resolved; the JVMs boot meanwhile
    settings = StoreSettings(
        data_dir=tmp_path, neo4j_uri=f"neo4j://127.0.0.1:{free_port()}",
        neo4j_analyst_uri=f"neo4j://127.0.0.1:{free_port()}", neo4j_heap="256m",
        neo4j_pagecache="16m", **NEO4J_TEST_PASSWORDS,
    )
    local = LocalNeo4j(settings)
    store = local.main.home / "data" / "databases" / "neo4j"
    store.mkdir(parents=True)
    (store / "neostore").write_bytes(b"not a neo4j store" * 64)
    try:
        with pytest.raises(Neo4jSetupError,
                           match=r"could not open its data directory .*store version"):
            local.start()
    finally:
        local.stop()
