"""bench/load_summary.py: one phase's figures pooled over slices of the load generator's answers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from load_summary import phase_breakdown, summarise


def _slice(latencies: list[float], timings: list[str | None], seconds: float) -> dict:
    return {"seconds": seconds, "failures": 0, "failure_example": None,
            "latencies_ms": latencies, "server_timings": timings}


def test_percentiles_and_throughput_pool_every_slice() -> None:
    # 100 answers over two slices: the slow ones all in the second, as a stall would put them.
    first = _slice([1.0] * 60, [None] * 60, 10)
    second = _slice([2.0] * 38 + [50.0, 90.0], [None] * 38 + [
        "total;dur=20, store;dur=15, queueing;dur=5", "total;dur=40, store;dur=35, queueing;dur=5",
    ], 10)
    pooled = summarise([first, second])
    assert pooled["requests"] == 100
    assert pooled["throughput_rps"] == 5.0
    assert (pooled["p50_ms"], pooled["p95_ms"], pooled["p99_ms"]) == (1.0, 2.0, 90.0)
    # The slowest 1% of 100 answers is the one at 90 ms, from the second slice.
    assert pooled["slowest_1pct"] == {
        "answers": 1, "latency_ms": 90.0, "outside_app_ms": 50.0,
        "phases_ms": {"total": 40.0, "store": 35.0, "queueing": 5.0},
    }


def test_breakdown_skips_answers_without_phases_and_averages_the_rest() -> None:
    assert phase_breakdown([(5.0, None)]) is None
    breakdown = phase_breakdown([(10.0, "total;dur=4, store;dur=1"), (20.0, "total;dur=6"),
                                 (99.0, None)])
    assert breakdown == {"answers": 2, "latency_ms": 15.0, "outside_app_ms": 10.0,
                         "phases_ms": {"total": 5.0, "store": 0.5}}
