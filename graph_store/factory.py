"""Choose the adapter the configuration names."""

from __future__ import annotations

from graph_store.port import GraphStore
from graph_store.settings import StoreSettings


def open_store(settings: StoreSettings | None = None, *, analyst: bool = False) -> GraphStore:
    """Open the source graph, or with `analyst=True` its anonymized copy for analysts."""
    settings = settings or StoreSettings()
    if settings.backend == "neo4j":
        from graph_store.neo4j_store import Neo4jStore

        return Neo4jStore(
            settings.neo4j_uri,
            settings.neo4j_user,
            settings.neo4j_password.get_secret_value(),
            settings.neo4j_analyst_database if analyst else settings.neo4j_database,
            settings.timeout_s,
        )
    from graph_store.falkordb_store import FalkorDBStore

    return FalkorDBStore(
        settings.falkordb_host,
        settings.falkordb_port,
        settings.analyst_graph_name if analyst else settings.graph_name,
        settings.timeout_s,
    )
