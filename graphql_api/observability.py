"""Prometheus metrics, request ids and structured JSON logs."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
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
        self.runtime = RuntimeMetrics(self.registry)

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
        # Taken before the operation runs: this instance is shared by concurrent requests, and
        # Strawberry sets each one's `execution_context` on it as it starts.
        execution = self.execution_context
        started = time.perf_counter()
        yield
        name = self._metrics.operation_label(execution.operation_name)
        self._metrics.request_seconds.labels(name).observe(time.perf_counter() - started)
        result = execution.result
        for error in getattr(result, "errors", None) or ():
            code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
            self._metrics.errors.labels(code).inc()


class OperationPhases(SchemaExtension):
    """A request's `parse_validate` phase (the operation's start to its execution) and its
    execution time, which resolvers' time is taken from to leave `execution`."""

    def on_operation(self) -> Iterator[None]:
        self._started = time.perf_counter()
        yield

    def on_execute(self) -> Iterator[None]:
        phases = current_phases.get()
        began = time.perf_counter()
        if phases is not None:
            phases.add(PHASE_PARSE_VALIDATE, began - self._started)
        yield
        if phases is not None:
            phases.add("_execute", time.perf_counter() - began)


def new_request_id() -> str:
    """128 random bits in hex. Not uuid4: its os.urandom releases the GIL, and on a loaded
    process the event loop then waits for a service thread to hand it back; a request id needs
    uniqueness, not secrecy (`random` reseeds in forked workers)."""
    return f"{random.getrandbits(128):032x}"


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
        began = time.perf_counter()
        try:
            return self._store.read(statement, params)
        finally:
            add_phase(PHASE_STORE, time.perf_counter() - began)

    def write(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        self._counter.labels(statement.name, "write").inc()
        began = time.perf_counter()
        try:
            return self._store.write(statement, params)
        finally:
            add_phase(PHASE_STORE, time.perf_counter() - began)

    def apply_schema(self) -> None:
        self._store.apply_schema()

    def ping(self) -> None:
        self._store.ping()

    def version(self) -> str:
        return self._store.version()

    def close(self) -> None:
        self._store.close()


# ------------------------------------------------------------------ runtime instruments
# What a slow request spent its time on, the event loop's lag, the collector's pauses and how
# requests spread over worker processes: the figures that tell a stalled process from a slow
# store or a slow query (issue 22). Additive to the metrics above, in the same registry.

SLOW_REQUEST_S = 0.05  # requests slower than this have their phases kept as metrics

# A request's phases, adding up to its time in the app. `resolver:<Type.field>` phases are the
# schema's own resolver fields, so the label's values are bounded by the schema.
PHASE_QUEUEING = "queueing"  # waiting for a service thread, then for the loop to resume
PHASE_PARSE_VALIDATE = "parse_validate"  # from the operation's start to its execution
PHASE_STORE = "store"  # inside store round trips
PHASE_EXECUTION = "execution"  # graphql-core completing values, outside any resolver
PHASE_SERIALIZATION = "serialization"  # the response body as JSON
PHASE_OTHER = "other"  # HTTP, middleware, authentication, context: the rest of the request

current_phases: contextvars.ContextVar[RequestPhases | None] = contextvars.ContextVar(
    "current_phases", default=None
)


class RequestPhases:
    """Seconds per phase of one request. Threads serving the request add to it through the
    context they inherit (anyio copies it into `to_thread`)."""

    __slots__ = ("resolving", "seconds", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.seconds: dict[str, float] = {}
        self.resolving = 0.0  # resolvers' wall time, execution's share is the remainder

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def nested(self) -> float:
        """Store and queueing time so far: what a resolver's wall time holds besides its own."""
        return self.seconds.get(PHASE_STORE, 0.0) + self.seconds.get(PHASE_QUEUEING, 0.0)

    def add_resolver(self, name: str, wall: float, nested_before: float) -> None:
        self.resolving += wall
        self.add(f"resolver:{name}", max(0.0, wall - (self.nested() - nested_before)))

    def finish(self, now: float) -> dict[str, float]:
        """All phases, with `execution` and `other` as what the measured ones leave."""
        phases = dict(self.seconds)
        executing = phases.pop("_execute", 0.0)
        phases[PHASE_EXECUTION] = max(0.0, executing - self.resolving)
        phases[PHASE_OTHER] = max(0.0, now - self.started - sum(phases.values()))
        return phases


def add_phase(phase: str, seconds: float) -> None:
    phases = current_phases.get()
    if phases is not None:
        phases.add(phase, seconds)


async def run_in_thread(func: Any, *args: Any) -> Any:
    """`func(*args)` in the event loop's executor, in a copy of the caller's context (the
    request's id and phases), its waits counted as the request's `queueing`: for a thread to
    start (the pool's size, the GIL), and for the event loop to resume the request after it
    ends. The loop's executor rather than anyio's threads: no limiter or cancel scopes per call,
    and at most min(32, CPUs + 4) threads, not 40, taking turns at the GIL under load
    (docs/api-performance.md). A cancelled caller leaves the call to end by its store timeout."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    phases = current_phases.get()
    if phases is None:
        return await loop.run_in_executor(None, context.run, func, *args)
    submitted = time.perf_counter()
    times = [0.0, 0.0]

    def timed() -> Any:
        times[0] = time.perf_counter()
        try:
            return func(*args)
        finally:
            times[1] = time.perf_counter()

    try:
        return await loop.run_in_executor(None, context.run, timed)
    finally:
        if times[1]:
            phases.add(
                PHASE_QUEUEING, (times[0] - submitted) + (time.perf_counter() - times[1])
            )


class RuntimeMetrics:
    """Event-loop lag, GC pauses, requests per worker process and slow requests' phases."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.loop_lag = Histogram(
            "donor_match_event_loop_lag_seconds",
            "How late the event loop ran a timer (sampled every 0.1 s): work that held the loop.",
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.loop_lag_max = Gauge(
            "donor_match_event_loop_lag_max_seconds",
            "The largest event-loop lag since the last scrape.", registry=registry,
        )
        self.gc_pause = Histogram(
            "donor_match_gc_pause_seconds",
            "Cycle-collector pauses by generation (gc.callbacks).", ["generation"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        self.worker_requests = Counter(
            "donor_match_worker_requests",
            "HTTP requests served by this worker process (label: its pid).", ["worker"],
            registry=registry,
        )
        self.worker_in_flight = Gauge(
            "donor_match_worker_requests_in_flight",
            "HTTP requests this worker process is serving now.", ["worker"], registry=registry,
        )
        self.slow_requests = Counter(
            "donor_match_slow_requests",
            f"HTTP requests that took over {SLOW_REQUEST_S * 1000:.0f} ms in the app.",
            registry=registry,
        )
        self.slow_phase = Histogram(
            "donor_match_slow_request_phase_seconds",
            f"Where requests over {SLOW_REQUEST_S * 1000:.0f} ms spent their time, by phase "
            "(queueing, parse_validate, resolver:<Type.field>, store, execution, serialization, "
            "other).",
            ["phase"], registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self._slow_phase_children: dict[str, Any] = {}
        self._gc_started = 0.0
        self._lag_max = 0.0
        self.loop_lag_max.set_function(self._take_lag_max)

    def _take_lag_max(self) -> float:
        value, self._lag_max = self._lag_max, 0.0
        return value

    # The collector calls this around every collection, on whichever thread triggered it.
    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.gc_pause.labels(str(info["generation"])).observe(
                time.perf_counter() - self._gc_started
            )
            self._gc_started = 0.0

    async def watch_loop(self, interval_s: float = 0.1) -> None:
        """Sleeps `interval_s` at a time and records how late it woke: until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + interval_s
            await asyncio.sleep(interval_s)
            lag = max(0.0, loop.time() - due)
            self.loop_lag.observe(lag)
            self._lag_max = max(self._lag_max, lag)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The loop monitor and the GC callback for as long as the app serves."""
        gc.callbacks.append(self.on_gc)
        watcher = asyncio.get_running_loop().create_task(self.watch_loop())
        try:
            yield
        finally:
            watcher.cancel()
            gc.callbacks.remove(self.on_gc)

    def record(self, phases: dict[str, float], total: float) -> None:
        if total > SLOW_REQUEST_S:
            self.slow_requests.inc()
            children = self._slow_phase_children
            for phase, seconds in phases.items():
                child = children.get(phase)
                if child is None:  # phases are the fixed ones and the schema's resolvers
                    child = children[phase] = self.slow_phase.labels(phase)
                child.observe(seconds)


def server_timing_header(phases: dict[str, float], total: float) -> str:
    entries = [f"total;dur={total * 1000:.3f}"]
    entries += [
        f"{name.replace(':', '.')};dur={seconds * 1000:.3f}"
        for name, seconds in phases.items() if seconds > 0
    ]
    return ", ".join(entries)
