"""The embedded FalkorDB server the project starts itself."""

from __future__ import annotations

from pathlib import Path

import redis
from conftest import free_port

from graph_store import StoreSettings, open_store, statement
from graph_store.embedded import EmbeddedFalkorDB


def test_server_binds_loopback_persists_and_restarts(tmp_path: Path) -> None:
    server = EmbeddedFalkorDB(tmp_path / "falkordb", free_port())
    settings = StoreSettings(falkordb_port=server.port, graph_name="persist", timeout_s=5)
    server.start()
    try:
        assert server.status().running
        config = redis.Redis(host="127.0.0.1", port=server.port)
        assert config.config_get("bind")["bind"] == "127.0.0.1"
        assert config.config_get("appendonly")["appendonly"] == "yes"
        config.close()
        store = open_store(settings)
        store.write(
            statement("etl/merge_causes"),
            {"rows": [{"id": "c1", "name": "Health", "parent_id": None}], "load_id": "test"},
        )
        store.close()
    finally:
        server.stop()
    assert not server.status().running

    server.start()  # the append-only file brings the graph back
    try:
        assert server.start().running  # starting a running server is a no-op
        store = open_store(settings)
        assert store.read(statement("api/causes")) == [{"id": "c1", "name": "Health"}]
        store.close()
    finally:
        server.stop()
    log = (tmp_path / "falkordb" / "falkordb.log").read_text().lower()
    assert "bolt" not in log  # the experimental Bolt listener stays off
