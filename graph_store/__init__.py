"""Store access for donor-match: one port, a Neo4j adapter and an embedded FalkorDB adapter."""

from graph_store.cypher import Statement, statement
from graph_store.errors import (
    InvalidParameterError,
    StoreConflictError,
    StoreError,
    StoreForbiddenError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from graph_store.factory import open_analytics_store, open_store
from graph_store.port import GraphStore, Row
from graph_store.settings import StoreSettings

__all__ = [
    "GraphStore",
    "InvalidParameterError",
    "Row",
    "Statement",
    "StoreConflictError",
    "StoreError",
    "StoreForbiddenError",
    "StoreSettings",
    "StoreTimeoutError",
    "StoreUnavailableError",
    "open_analytics_store",
    "open_store",
    "statement",
]
