"""Prometheus metrics, request ids and structured JSON logs."""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from graph_store import GraphStore, Row, Statement

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
access_log = logging.getLogger("donor_match.access")


class ApiMetrics:
    """The API's metrics, in a registry of their own (one per app, so tests can make many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "donor_match_graphql_request_duration_seconds",
            "GraphQL operation latency by operation name.",
            ["operation"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.errors = Counter(
            "donor_match_graphql_errors", "GraphQL errors by code.", ["code"],
            registry=self.registry,
        )
        self.matches_served = Counter(
            "donor_match_matches_served", "Matches returned to callers.", registry=self.registry
        )
        self.model_info = Gauge(
            "donor_match_model_info", "The served model version (value 1).", ["version"],
            registry=self.registry,
        )
        self.model_trained = Gauge(
            "donor_match_model_trained_timestamp_seconds",
            "When the served model was trained (Unix time).", registry=self.registry,
        )
        self.subscriptions = Gauge(
            "donor_match_subscriptions_active", "Open GraphQL subscriptions.",
            registry=self.registry,
        )
        self.store_queries = Counter(
            "donor_match_store_queries", "Store round trips by statement and access mode.",
            ["statement", "mode"], registry=self.registry,
        )
        self.store_up = Gauge(
            "donor_match_store_up", "1 when the graph store answered the last check.",
            registry=self.registry,
        )
        self._operation_labels: set[str] = set()

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if name in self._operation_labels:
            return name
        if not _OPERATION_NAME.fullmatch(name) or (
            len(self._operation_labels) >= MAX_OPERATION_LABELS
        ):
            return "other"
        self._operation_labels.add(name)
        return name


# Operation names are the client's to choose: the first this many (valid, short) ones get a label
# of their own, later ones share "other", so anonymous clients cannot grow /metrics without bound.
MAX_OPERATION_LABELS = 100
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class OperationMetrics(SchemaExtension):
    """Times each operation and counts its errors by code.

    Listed before `ErrorCodes`, so it sees the errors after their codes are set.
    """

    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        name = self._metrics.operation_label(self.execution_context.operation_name)
        self._metrics.request_seconds.labels(name).observe(time.perf_counter() - started)
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
            code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
            self._metrics.errors.labels(code).inc()


def _new_request_id() -> str:
    """128 random bits in hex. Not uuid4: its os.urandom releases the GIL, and on a loaded
    process the event loop then waits for a service thread to hand it back; a request id needs
    uniqueness, not secrecy (`random` reseeds in forked workers)."""
    return f"{random.getrandbits(128):032x}"


class RequestIdMiddleware:
    """Gives every request an id (the caller's `X-Request-ID` or a new one), echoed back and
    attached to every log line written while serving it; logs one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self._app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if 0 < len(given) <= 128 and given.isprintable() else _new_request_id()
        token = request_id.set(rid)
        started, status = time.perf_counter(), 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method", "WS"),
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": rid,
                },
            )
            request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id; extra fields are kept."""

    _standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self._standard})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class CountingStore:
    """A `GraphStore` that counts its round trips per statement (the store stays real)."""

    def __init__(self, store: GraphStore, counter: Counter) -> None:
        self._store = store
        self._counter = counter

    @property
    def uri(self) -> str:
        return self._store.uri

    def read(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        self._counter.labels(statement.name, "read").inc()
        return self._store.read(statement, params)

    def write(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        self._counter.labels(statement.name, "write").inc()
        return self._store.write(statement, params)

    def apply_schema(self) -> None:
        self._store.apply_schema()

    def ping(self) -> None:
        self._store.ping()

    def version(self) -> str:
        return self._store.version()

    def close(self) -> None:
        self._store.close()
