"""Analysts cannot stall the product: their copy lives on a server of its own, which bounds each
query's threads, time and memory, so no read of the product's waits for an analyst's query."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import ServedGraph

from graph_store import Statement, StoreError, open_analytics_store, open_store, statement

pytestmark = pytest.mark.backends("falkordb", "neo4j")
# A second or so of a query thread's work that no store can fold into a constant (the rows depend
# on a parameter) and that touches no data, so no index or cap stops it early.
HEAVY = Statement(
    "analyst", "UNWIND range(1, $n) AS x UNWIND range(1, $n) AS y RETURN sum(x % 7 + y) AS total",
)
ANALYSTS = 4


def test_no_public_read_waits_for_an_analyst_query(served_graph: ServedGraph) -> None:
    # FalkorDB answers a read on a graph nobody has written with no rows, at once: write one.
    settings = served_graph.store_settings.model_copy(
        update={"analyst_graph_name": f"{served_graph.store_settings.graph_name}_isolation"})
    filler = open_store(settings, analyst=True)
    filler.write(Statement("isolation", "MERGE (:IsolationProbe)"))
    filler.close()
    started = threading.Barrier(ANALYSTS + 1)
    analyst_seconds: list[float] = []

    def analyst() -> None:
        store = open_analytics_store(settings)
        started.wait()
        began = time.perf_counter()
        try:
            store.read(HEAVY, {"n": 3000})
        except StoreError:
            pass  # a server-side bound ended it: what it is for
        finally:
            analyst_seconds.append(time.perf_counter() - began)
            store.close()

    public = open_store(served_graph.store_settings)
    threads = [threading.Thread(target=analyst) for _ in range(ANALYSTS)]
    try:
        public.read(statement("api/causes"))  # connected and warm
        for thread in threads:
            thread.start()
        started.wait()
        read_seconds = []
        while any(thread.is_alive() for thread in threads):
            began = time.perf_counter()
            public.read(statement("api/causes"))
            read_seconds.append(time.perf_counter() - began)
    finally:
        public.close()
        for thread in threads:
            thread.join(timeout=120)
    shortest = min(analyst_seconds)
    assert shortest >= 0.5, f"the analysts' queries took {shortest:.2f} s: too short to tell"
    # Sharing the product's query threads, reads queued behind whole analyst queries; what a
    # shared host's scheduler adds to a read is tens of milliseconds.
    assert max(read_seconds) < shortest / 2, (
        f"a public read took {max(read_seconds):.2f} s while analysts' queries took "
        f"{shortest:.2f} s and more"
    )
