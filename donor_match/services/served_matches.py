"""Counting matches served into the graph, for the drift job's feedback rate.

Why the graph: the drift job is a batch job that reaches only Neo4j and the Pushgateway, and the
feedback it divides by is in the graph already (FEEDBACK relationships). The API's Prometheus
counter `donor_match_matches_served_total` stays the online figure; this is its durable twin.
Why cheap: each process adds up in memory and writes one MERGE per (hour, model version) at most
every `flush_interval_s`, so the hot path never waits on a write and Neo4j sees a handful of
writes per pod and minute, not one per request. A process that dies loses at most one interval
of counts, which a rate over a day does not notice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from donor_match.repositories.ports import ServedMatchCounts
from graph_store.errors import StoreError

log = logging.getLogger(__name__)


class ServedMatchCounter:
    def __init__(self, repository: ServedMatchCounts, flush_interval_s: float = 30.0) -> None:
        self._repository = repository
        self._interval = flush_interval_s
        self._lock = threading.Lock()
        self._pending: Counter[tuple[int, str]] = Counter()
        self._flushed = time.monotonic()

    def add(self, model_version: str | None, count: int) -> None:
        """Count `count` matches served by `model_version`; flushes in the background when the
        interval is up."""
        if count <= 0:
            return
        now = time.time()
        with self._lock:
            self._pending[(int(now) - int(now) % 3600, model_version or "none")] += count
            due = time.monotonic() - self._flushed >= self._interval
            if due:
                self._flushed = time.monotonic()  # one flush per interval, however many callers
        if due:
            # Off the request's path: the caller (an async resolver) never waits on the store.
            threading.Thread(target=self.flush, name="served-matches-flush", daemon=True).start()

    def flush(self) -> None:
        """Write the pending counts; on a store error keep them for the next flush (a count
        must never fail the request that served the matches)."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._flushed = time.monotonic()
        for (hour, version), count in pending.items():
            try:
                self._repository.count_served(hour, version, count)
            except StoreError as exc:
                log.warning("matches served not counted yet (store: %s); retrying later", exc)
                with self._lock:
                    self._pending[(hour, version)] += count
