"""FalkorDB adapter: the embedded default, spoken to with the `falkordb` client (not Bolt)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import redis.exceptions
from falkordb import Edge, FalkorDB, Graph, Node

from graph_store.cypher import Statement, script
from graph_store.errors import (
    InvalidParameterError,
    StoreConflictError,
    StoreError,
    StoreForbiddenError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from graph_store.port import Row

MISSING_GRAPH = "empty key"
READ_ONLY = "to be executed only on read-only queries"  # a write sent through GRAPH.RO_QUERY
# FalkorDB's errors carry no code: this fixed start of the server's message is its code.
UNIQUE_VIOLATION = "unique constraint violation"
TIMED_OUT = "query timed out"  # the server stopped a statement at the query's own timeout
START_HINT = "Start the embedded store with `donor-match store start` (or `make demo`)."
# Redis refuses writes with this while it cannot write its append-only file.
CANNOT_PERSIST = "MISCONF"
DISK_HINT = "Free space on the store's data directory; writes resume by themselves."
PASSWORD_HINT = (
    "The store refused this client's password: set DONOR_MATCH_FALKORDB_PASSWORD to the one the "
    "server was started with, or DONOR_MATCH_DATA_DIR to its data directory (where `donor-match "
    "store start` keeps a generated one)."
)

# Neo4j 5 DDL from neo4j/schema.cypher, translated to FalkorDB's index/constraint commands.
_NODE_UNIQUE = re.compile(
    r"CREATE CONSTRAINT \w+ IF NOT EXISTS FOR \((\w+):(\w+)\) REQUIRE \1\.(\w+) IS UNIQUE", re.I
)
_REL_UNIQUE = re.compile(
    r"CREATE CONSTRAINT \w+ IF NOT EXISTS FOR \(\)-\[(\w+):(\w+)\]-\(\) "
    r"REQUIRE \1\.(\w+) IS UNIQUE",
    re.I,
)
_NODE_INDEX = re.compile(
    r"CREATE INDEX \w+ IF NOT EXISTS FOR \((\w+):(\w+)\) ON \(\1\.(\w+)\)", re.I
)


class FalkorDBStore:
    def __init__(
        self,
        host: str,
        port: int,
        graph: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        password: str | None = None,
    ) -> None:
        self._uri = f"falkordb://{host}:{port}/{graph}"
        self._graph_name = graph
        self._timeout_ms = max(1, int(timeout_s * 1000))
        # The socket timeout bounds every client call, even one the server never answers.
        self._connect_args: dict[str, Any] = {
            "host": host,
            "port": port,
            "password": password,
            "socket_timeout": timeout_s + 1,
            "socket_connect_timeout": connect_timeout_s,
        }
        self._connection: tuple[FalkorDB, Graph] | None = None

    @property
    def uri(self) -> str:
        return self._uri

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._run(statement, params, read_only=True)

    def write(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self._run(statement, params, read_only=False)

    def ping(self) -> None:
        self._call(lambda: self._db().connection.ping())

    def version(self) -> str:
        modules = self._call(lambda: self._db().connection.module_list())
        names = (b"graph", "graph")
        graph: dict[Any, Any] = next(
            (m for m in modules if m.get(b"name", m.get("name")) in names), {}
        )
        number = int(graph.get(b"ver", graph.get("ver", 0)))
        return f"FalkorDB/{number // 10000}.{number // 100 % 100}.{number % 100}"

    def close(self) -> None:
        if self._connection is not None:
            self._connection[0].connection.close()
            self._connection = None

    def _connected(self) -> tuple[FalkorDB, Graph]:
        # Connect lazily, so a store that is down at start-up is picked up once it is back.
        if self._connection is None:
            db = FalkorDB(**self._connect_args)
            self._connection = (db, db.select_graph(self._graph_name))
        return self._connection

    def _db(self) -> FalkorDB:
        return self._connected()[0]

    def _graph(self) -> Graph:
        return self._connected()[1]

    def apply_schema(self) -> None:
        for ddl in script("schema"):
            if match := _NODE_UNIQUE.fullmatch(ddl.text):
                self._unique(match[2], match[3], "NODE")
            elif match := _REL_UNIQUE.fullmatch(ddl.text):
                self._unique(match[2], match[3], "RELATIONSHIP")
            elif match := _NODE_INDEX.fullmatch(ddl.text):
                self._index(match[2], match[3], "NODE")
            else:
                raise StoreError(f"FalkorDB adapter cannot translate {ddl.name}: {ddl.text!r}")

    def _index(self, label: str, prop: str, entity: str) -> None:
        # Identifiers come from the project's own schema file, matched by \w+ above.
        pattern = f"(e:{label})" if entity == "NODE" else f"()-[e:{label}]-()"
        self._idempotent(
            lambda: self._graph().query(f"CREATE INDEX FOR {pattern} ON (e.{prop})"),
            "already indexed",
        )

    def _unique(self, label: str, prop: str, entity: str) -> None:
        # FalkorDB enforces uniqueness only on top of an exact-match index.
        self._index(label, prop, entity)
        self._idempotent(
            lambda: self._db().connection.execute_command(
                "GRAPH.CONSTRAINT", "CREATE", self._graph_name, "UNIQUE", entity, label,
                "PROPERTIES", 1, prop,
            ),
            "already exists",
        )

    def _idempotent(self, fn: Callable[[], object], already: str) -> None:
        """FalkorDB has no IF NOT EXISTS: creating what exists fails with a known message."""
        try:
            self._call(fn)
        except StoreError as exc:
            if already not in str(exc):
                raise

    def _run(
        self, statement: Statement, params: Mapping[str, Any] | None, *, read_only: bool
    ) -> list[Row]:
        _check_params(statement, params)

        def run() -> Any:
            graph = self._graph()
            query = graph.ro_query if read_only else graph.query
            return query(statement.text, dict(params or {}), timeout=self._timeout_ms)

        try:
            result = self._call(run, statement)
        except StoreError as exc:
            # FalkorDB refuses reads on a graph nothing has written yet; Neo4j reads an empty one.
            if read_only and MISSING_GRAPH in str(exc):
                return []
            raise
        return self._rows(result)

    @staticmethod
    def _rows(result: Any) -> list[Row]:
        columns = [column[1] for column in result.header]
        return [
            dict(zip(columns, map(_plain, values), strict=True)) for values in result.result_set
        ]

    def _call(self, fn: Callable[[], Any], statement: Statement | None = None) -> Any:
        try:
            return fn()
        except redis.exceptions.AuthenticationError as exc:
            raise StoreUnavailableError(self._uri, _first_line(exc), PASSWORD_HINT) from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            # No answer within the socket timeout (past the query's own): the server is stalled.
            raise StoreUnavailableError(self._uri, _first_line(exc), START_HINT) from exc
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith(CANNOT_PERSIST):
                # Its disk is full (or failing): writes are refused until it can write again,
                # reads go on. Temporary, not the statement's fault.
                raise StoreUnavailableError(
                    self._uri, "it cannot write to its disk and refuses writes", DISK_HINT
                ) from exc
            where = statement.name if statement else "schema"
            detail = _first_line(exc)
            raise _error_type(str(exc))(
                f"{where} failed on {self._uri}: {detail}", detail=detail
            ) from exc


def _error_type(message: str) -> type[StoreError]:
    """The typed error for a server reply: FalkorDB's errors carry no code, so the fixed start
    (or phrase) of each message the server writes is read here, and nowhere else."""
    if READ_ONLY in message:
        return StoreForbiddenError
    if message.startswith(UNIQUE_VIOLATION):
        return StoreConflictError
    if message.lower().startswith(TIMED_OUT):
        return StoreTimeoutError
    return StoreError


def _plain(value: Any) -> Any:
    """FalkorDB returns OrderedDicts, Nodes and Edges; callers expect plain values."""
    if isinstance(value, Node):
        return {"labels": list(value.labels or []), "properties": _plain(value.properties)}
    if isinstance(value, Edge):
        return {"type": value.relation, "properties": _plain(value.properties)}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_params(statement: Statement, params: Mapping[str, Any] | None) -> None:
    """The client inlines parameters into the query text, where NUL ends it: refuse NUL."""

    def has_nul(value: Any) -> bool:
        if isinstance(value, str):
            return "\x00" in value
        if isinstance(value, Mapping):
            return any(has_nul(k) or has_nul(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return any(has_nul(item) for item in value)
        return False

    if params and has_nul(params):
        raise InvalidParameterError(f"{statement.name}: text values must not contain NUL")
