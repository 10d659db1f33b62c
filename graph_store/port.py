"""The store port: what services and the ETL may ask of a graph database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from graph_store.cypher import Statement

Row = dict[str, Any]


class GraphStore(Protocol):
    """A graph database that runs the project's Cypher statements.

    Every call is bounded by the configured timeout and raises `StoreError` (or
    `StoreUnavailableError`) instead of a driver exception.
    """

    @property
    def uri(self) -> str: ...

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a read-only statement and return its rows as dicts keyed by column. A node value
        is `{"labels": [...], "properties": {...}}`, a relationship `{"type": ..., "properties":
        {...}}`, on every backend."""
        ...

    def write(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a statement in a write transaction and return its rows."""
        ...

    def apply_schema(self) -> None:
        """Create the constraints and indexes of `neo4j/schema.cypher`; idempotent."""
        ...

    def ping(self) -> None:
        """Raise `StoreUnavailableError` unless the store answers."""
        ...

    def version(self) -> str:
        """The server's product and version, e.g. `Neo4j/2026.08.1` or `FalkorDB/4.14.2`."""
        ...

    def close(self) -> None: ...
