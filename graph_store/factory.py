"""Choose the adapter the configuration names."""

from __future__ import annotations

from graph_store.port import GraphStore
from graph_store.settings import StoreSettings


def open_store(settings: StoreSettings | None = None, *, analyst: bool = False) -> GraphStore:
    """Open the source graph, or with `analyst=True` its anonymized copy for analysts, as the
    application's user."""
    return _open(settings or StoreSettings(), analyst=analyst, analysts_user=False)


def open_analytics_store(settings: StoreSettings | None = None) -> GraphStore:
    """The anonymized copy as analysts' queries read it: in Neo4j as their read-only user; the
    embedded FalkorDB has one user (the password), and analysts' reads go through
    GRAPH.RO_QUERY there."""
    return _open(settings or StoreSettings(), analyst=True, analysts_user=True)


def _open(settings: StoreSettings, *, analyst: bool, analysts_user: bool) -> GraphStore:
    if settings.backend == "neo4j":
        from graph_store.neo4j_store import Neo4jStore

        user, password = settings.neo4j_credentials(analysts=analysts_user)
        return Neo4jStore(
            settings.neo4j_analyst_uri if analyst else settings.neo4j_uri,
            user,
            password,
            settings.neo4j_analyst_database if analyst else settings.neo4j_database,
            timeout_s=settings.timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            retry_s=settings.retry_s,
        )
    from graph_store.falkordb_store import FalkorDBStore

    return FalkorDBStore(
        settings.falkordb_host,
        settings.falkordb_analyst_port if analyst else settings.falkordb_port,
        settings.analyst_graph_name if analyst else settings.graph_name,
        timeout_s=settings.timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
        password=settings.falkordb_secret() or None,
    )
