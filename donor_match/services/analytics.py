"""Read-only Cypher for analysts, on the anonymized copy of the graph only.

Three fences: the analyst store is bound to the anonymized graph (FalkorDB) or database (Neo4j);
it runs the text on the store's read-only path (`GRAPH.RO_QUERY`; Neo4j READ access mode under a
read-only user); and this service refuses up front what must never run, with a reason
(`cypher_check`, which reads the text as Cypher's lexer does). Each analyst runs a few queries at
a time, and answers are capped in rows and in bytes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from donor_match.errors import InvalidInputError, UnavailableError
from donor_match.repositories.ports import (
    AnalystGraph,
    AnalystQueryFailedError,
    AnalystQueryRefusedError,
    AnalystQueryTimeoutError,
)
from donor_match.services.auth import ForbiddenError, Principal, Role, require_principal
from donor_match.services.cypher_check import refusal
from donor_match.services.rate_limit import RateLimitedError

MAX_QUERY_CHARS = 10_000
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
BUILD_HINT = "run `donor-match etl anonymize` to build it (`make demo` does)"


class AnalyticsForbiddenError(ForbiddenError):
    pass


@dataclass(frozen=True)
class AnalyticsResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class AnalyticsService:
    def __init__(
        self,
        analyst_graph: AnalystGraph,
        row_cap: int,
        *,
        byte_cap: int = 1_000_000,
        per_analyst: int = 2,
        per_process: int = 4,
    ) -> None:
        self._graph = analyst_graph
        self._row_cap = row_cap
        self._byte_cap = byte_cap
        self._per_analyst = per_analyst
        self._per_process = per_process
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def query(
        self, principal: Principal | None, cypher: str, params: object | None
    ) -> AnalyticsResult:
        """`params` is what the caller sent (any JSON value); it must be an object."""
        caller = require_principal(principal)
        caller.require(Role.ANALYST, Role.ADMIN)
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
        with self._slot(f"{caller.role}:{caller.subject}"):
            try:
                rows = self._graph.run(cypher, params)
            except AnalystQueryRefusedError as exc:  # a write the check above missed, refused
                raise AnalyticsForbiddenError("read-only queries only") from exc
            except AnalystQueryTimeoutError as exc:  # the graph is there: it answered too slowly
                raise InvalidInputError(
                    "the query ran past the analysts' time limit; narrow it (fewer rows, a LIMIT)"
                ) from exc
            except AnalystQueryFailedError as exc:
                self._require_graph()  # a missing analyst database fails every query
                raise InvalidInputError(f"query failed: {exc}") from exc
            if not rows:
                self._require_graph()
        return self._capped(rows)

    @contextmanager
    def _slot(self, analyst: str) -> Iterator[None]:
        """A few queries at a time per analyst and per process: heavy queries queue on the store's
        threads, and every analyst's share of them stays small."""
        with self._lock:
            if self._running.get(analyst, 0) >= self._per_analyst:
                raise RateLimitedError(
                    f"at most {self._per_analyst} analytics queries at a time per analyst; "
                    "retry when one ends"
                )
            if sum(self._running.values()) >= self._per_process:
                raise RateLimitedError(
                    f"{self._per_process} analytics queries are running; retry when one ends"
                )
            self._running[analyst] = self._running.get(analyst, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._running[analyst] -= 1
                if not self._running[analyst]:
                    del self._running[analyst]

    def _capped(self, rows: list[dict[str, Any]]) -> AnalyticsResult:
        """Rows up to the row cap and, counted as the JSON they become, the byte cap: a small
        query can return a large value many times (a 50 KB parameter in 1,000 rows)."""
        columns = list(rows[0]) if rows else []
        kept: list[list[Any]] = []
        size = 0
        for row in rows:
            values = [row[c] for c in columns]
            size += len(orjson.dumps(values, option=orjson.OPT_NON_STR_KEYS, default=str)) + 1
            if len(kept) == self._row_cap or size > self._byte_cap:
                return AnalyticsResult(columns, kept, truncated=True)
            kept.append(values)
        return AnalyticsResult(columns, kept, truncated=False)

    def _require_graph(self) -> None:
        try:
            present = self._graph.present()
        except AnalystQueryFailedError as exc:
            raise UnavailableError(f"the analyst graph cannot be read; {BUILD_HINT}") from exc
        if not present:
            raise UnavailableError(f"the analyst graph is missing or empty; {BUILD_HINT}")
