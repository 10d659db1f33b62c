"""Neo4j adapter: the official driver with managed transactions (production backend)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, LiteralString, TypeVar, cast

import neo4j
import neo4j.exceptions
import neo4j.graph
import neo4j.time

from graph_store.cypher import Statement, script, statement
from graph_store.errors import (
    StoreConflictError,
    StoreError,
    StoreForbiddenError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from graph_store.port import Row

T = TypeVar("T")
CHECK_HINT = (
    "Check NEO4J_URI, the user's password (NEO4J_PASSWORD, or NEO4J_ANALYST_PASSWORD for the "
    "analysts' user) and that Neo4j is running (a local one: `donor-match store start`)."
)
# A write in a READ session, or beyond the user's privileges (the analyst's reader role).
REFUSALS = (neo4j.exceptions.Forbidden, neo4j.exceptions.ForbiddenOnReadOnlyDatabase)
ACCESS_MODE = "Neo.ClientError.Statement.AccessMode"
# The server stopped a transaction at its timeout (ours, or the server's own limit).
TIMEOUTS = (
    "Neo.ClientError.Transaction.TransactionTimedOut",
    "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",
)


class Neo4jStore:
    def __init__(
        self,
        uri: str,
        user: str,
        password: str,
        database: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        retry_s: float,
    ) -> None:
        scheme, _, address = uri.partition("://")
        # Errors name the user too: the application's and the analysts' differ in privileges.
        self._uri = f"{scheme}://{user}@{address}/{database}"
        self._database = database
        self._timeout_s = timeout_s
        self._driver = neo4j.GraphDatabase.driver(
            uri,
            auth=(user, password),
            # Acquisition covers the Bolt handshake, which a server that accepts and never
            # answers would otherwise hold for the whole statement timeout.
            connection_timeout=connect_timeout_s,
            connection_acquisition_timeout=connect_timeout_s,
            # 0: no retry; any other value retries at least once, after a back-off of ~1 s.
            max_transaction_retry_time=retry_s,
            # Statements read optional properties some nodes lack (a nonprofit's description):
            # Neo4j notes each such read, and the driver would log a warning per query.
            notifications_disabled_classifications=[
                neo4j.NotificationDisabledClassification.UNRECOGNIZED],
        )

    @property
    def uri(self) -> str:
        return self._uri

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._session_call(
            statement, neo4j.READ_ACCESS,
            lambda session: session.execute_read(self._work(statement, params)),
        )

    def write(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._session_call(
            statement, neo4j.WRITE_ACCESS,
            lambda session: session.execute_write(self._work(statement, params)),
        )

    def apply_schema(self) -> None:
        # The schema file is Neo4j 5 DDL with IF NOT EXISTS, so it runs as written.
        for ddl in script("schema"):
            self.write(ddl)

    def ping(self) -> None:
        # A read rather than verify_connectivity(database=...), a preview API in driver 6.
        self.read(statement("api/ping"))

    def version(self) -> str:
        return self._guard(lambda: self._driver.get_server_info().agent)

    def close(self) -> None:
        self._driver.close()

    def _work(
        self, statement: Statement, params: Mapping[str, Any] | None
    ) -> Callable[[neo4j.ManagedTransaction], list[Row]]:
        # The driver types query text as LiteralString, against queries formatted from input. Ours
        # come from neo4j/*.cypher, or are an analyst's own read-only query, run as such by design.
        text = cast(LiteralString, statement.text)

        # The timeout goes on the transaction function: tx.run refuses neo4j.Query objects.
        @neo4j.unit_of_work(timeout=self._timeout_s)
        def run(tx: neo4j.ManagedTransaction) -> list[Row]:
            return [
                {key: _plain(value) for key, value in record.items()}
                for record in tx.run(text, dict(params or {}))
            ]

        return run

    def _session_call(
        self, statement: Statement, mode: str, fn: Callable[[neo4j.Session], T]
    ) -> T:
        def call() -> T:
            with self._driver.session(database=self._database, default_access_mode=mode) as s:
                return fn(s)

        return self._guard(call, statement.name)

    def _guard(self, fn: Callable[[], T], where: str = "schema") -> T:
        try:
            return fn()
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.AuthError) as exc:
            raise StoreUnavailableError(self.uri, type(exc).__name__, CHECK_HINT) from exc
        except neo4j.exceptions.Neo4jError as exc:
            detail = f"{exc.code}: {exc.message}"
            message = f"{where} failed on {self.uri}: {detail}"
            raise _error_type(exc)(message, detail=detail) from exc
        except neo4j.exceptions.DriverError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise StoreError(f"{where} failed on {self.uri}: {detail}", detail=detail) from exc


def _error_type(exc: neo4j.exceptions.Neo4jError) -> type[StoreError]:
    """The typed error for the server's status code (never its message text)."""
    if isinstance(exc, neo4j.exceptions.ConstraintError):
        return StoreConflictError
    if isinstance(exc, REFUSALS) or exc.code == ACCESS_MODE:
        return StoreForbiddenError
    if exc.code in TIMEOUTS:
        return StoreTimeoutError
    return StoreError


TEMPORAL = (neo4j.time.Date, neo4j.time.DateTime, neo4j.time.Time, neo4j.time.Duration)


def _plain(value: Any) -> Any:
    """Nodes and relationships as the FalkorDB adapter gives them (`record.data()` would keep only
    their properties), so an analyst's `RETURN n` reads alike on either store; temporal values as
    ISO 8601 text, which JSON can carry."""
    if isinstance(value, TEMPORAL):
        return value.iso_format()
    if isinstance(value, neo4j.graph.Node):
        return {"labels": sorted(value.labels), "properties": _plain(dict(value))}
    if isinstance(value, neo4j.graph.Relationship):
        return {"type": value.type, "properties": _plain(dict(value))}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
