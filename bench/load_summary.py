"""One phase's figures from the answers bench/load_matches.mjs recorded, pooled over slices.

A phase of bench/api_load.py runs as several slices, GraphQL's and the floor's taking turns, so
that what the host or the store does meanwhile (another process, the store forking to collect
index garbage) falls on both sides alike; the slices' answers are pooled into one set of
percentiles. The slowest 1%'s phases come from each answer's Server-Timing header: the mean of
each phase over those answers, and what their latency held outside the app.
"""

from __future__ import annotations

from typing import Any


def phase_breakdown(answers: list[tuple[float, str | None]]) -> dict[str, Any] | None:
    """The mean of each Server-Timing phase (ms) over `answers` (latency, header) that carry
    one, and `outside_app_ms`: their latency less the app's `total` (the wait for a free
    connection, the kernel's and the event loop's queues before the app saw the request)."""
    sums: dict[str, float] = {}
    counted, latency = 0, 0.0
    for took, header in answers:
        if not header:
            continue
        counted += 1
        latency += took
        for entry in header.split(","):
            name, _, duration = entry.strip().partition(";dur=")
            sums[name] = sums.get(name, 0.0) + float(duration)
    if not counted:
        return None
    phases = {k: round(v / counted, 2) for k, v in sorted(sums.items(), key=lambda kv: -kv[1])}
    return {
        "answers": counted,
        "latency_ms": round(latency / counted, 2),
        "outside_app_ms": round((latency - sums.get("total", 0.0)) / counted, 2),
        "phases_ms": phases,
    }


def summarise(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput, failures, latency percentiles and the slowest 1%'s phases over every answer
    of `slices` (the generator's records: seconds, failures, failure_example, latencies_ms,
    server_timings)."""
    answers = [
        (latency, timing)
        for piece in slices
        for latency, timing in zip(piece["latencies_ms"], piece["server_timings"], strict=True)
    ]
    answers.sort(key=lambda answer: answer[0])
    latencies = [latency for latency, _ in answers]
    seconds = sum(piece["seconds"] for piece in slices)

    def at(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    slowest = answers[len(answers) - max(1, -(-len(answers) // 100)):]
    return {
        "requests": len(answers),
        "failures": sum(piece["failures"] for piece in slices),
        "throughput_rps": round(len(answers) / seconds, 1) if seconds else 0.0,
        "p50_ms": at(0.5),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "mean_ms": round(sum(latencies) / len(latencies), 2) if latencies else None,
        "failure_example": next(
            (p["failure_example"] for p in slices if p["failure_example"]), None
        ),
        "slowest_1pct": phase_breakdown(slowest),
        "all_answers": phase_breakdown(answers),
    }
