"""Read-only Cypher for analysts, on the anonymized copy of the graph only.

Three fences: the analyst store is bound to the anonymized graph (FalkorDB) or database (Neo4j);
it runs the text on the store's read-only path (`GRAPH.RO_QUERY`; Neo4j READ access mode under a
read-only user); and this service refuses up front what must never run, with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from donor_match.errors import InvalidInputError
from donor_match.services.auth import ForbiddenError, Principal, Role, require_principal
from graph_store import (
    GraphStore,
    Statement,
    StoreError,
    StoreForbiddenError,
    StoreUnavailableError,
)

MAX_QUERY_CHARS = 10_000
# Clauses that write, change schema or data sources, switch databases or administer the server.
FORBIDDEN_WORDS = {
    "CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "LOAD", "FOREACH", "USE",
    "GRANT", "DENY", "REVOKE", "ALTER", "RENAME", "SHOW", "TERMINATE", "START", "STOP",
    "ENABLE", "DISABLE", "TRANSACTIONS",
}
# Procedures analysts may call: schema discovery only.
ALLOWED_PROCEDURES = {"db.labels", "db.relationshiptypes", "db.propertykeys"}
_LITERALS = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|//[^\n]*|/\*.*?\*/", re.S)
_BACKTICKED = re.compile(r"`[^`]*`")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_CALL = re.compile(r"\bCALL\s+([A-Za-z_][\w.]*)", re.I)


class AnalyticsForbiddenError(ForbiddenError):
    pass


@dataclass(frozen=True)
class AnalyticsResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


def refusal(cypher: str) -> str | None:
    """Why `cypher` may not run on the analyst path, or None."""
    code = _BACKTICKED.sub("``", _LITERALS.sub("''", cypher))
    words = {w.upper() for w in _WORD.findall(code)}
    if found := sorted(words & FORBIDDEN_WORDS):
        return f"read-only queries only: {', '.join(found)} is not allowed"
    if re.search(r"\bCALL\s*\{", code, re.I):
        return "CALL subqueries are not allowed"
    for procedure in _CALL.findall(code):
        if procedure.lower() not in ALLOWED_PROCEDURES:
            return f"procedure {procedure} is not allowed"
    return None


class AnalyticsService:
    def __init__(self, analyst_store: GraphStore, row_cap: int) -> None:
        self._store = analyst_store
        self._row_cap = row_cap

    def query(
        self, principal: Principal | None, cypher: str, params: object | None
    ) -> AnalyticsResult:
        """`params` is what the caller sent (any JSON value); it must be an object."""
        require_principal(principal).require(Role.ANALYST, Role.ADMIN)
        if not cypher.strip() or len(cypher) > MAX_QUERY_CHARS:
            raise InvalidInputError(f"cypher must be 1 to {MAX_QUERY_CHARS} characters")
        if params is None:
            params = {}
        elif not isinstance(params, Mapping):
            raise InvalidInputError("params must be an object of parameter values")
        if bad := sorted(k for k in params if not _PARAM_NAME.fullmatch(str(k))):
            raise InvalidInputError(f"params: {bad!r} are not valid parameter names")
        if reason := refusal(cypher):
            raise AnalyticsForbiddenError(reason)
        try:
            rows = self._store.read(Statement("analytics", cypher), params)
        except StoreUnavailableError:
            raise
        except StoreForbiddenError as exc:  # a write the check above missed, refused by the store
            raise AnalyticsForbiddenError("read-only queries only") from exc
        except StoreError as exc:
            raise InvalidInputError(f"query failed: {_reason(exc)}") from exc
        columns = list(rows[0]) if rows else []
        return AnalyticsResult(
            columns=columns,
            rows=[[row[c] for c in columns] for row in rows[: self._row_cap]],
            truncated=len(rows) > self._row_cap,
        )


def _reason(exc: StoreError) -> str:
    # Keep the store's own diagnosis (syntax, unknown function) but not our URI or statement name.
    return str(exc).split(": ", 1)[-1]
