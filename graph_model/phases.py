"""Wall time and memory per phase of a training run (TF-free), for metrics.json and docs/model.md.

At production size the question is which phase dominates and how it grows, so every phase of
`graph_model.train.train` records its wall seconds, the process's resident memory when it ended
and the peak resident memory so far (`ru_maxrss`: the high-water mark, which a phase's
temporaries raise and which the figure of a run's own end would hide).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_PAGE = resource.getpagesize()


def rss_bytes() -> int:
    """The process's resident memory now (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class Phases:
    """`with phases.phase("name"): ...` appends {name, seconds, cpu_s, rss_gb, peak_rss_gb}; a name
    used twice (e.g. each evaluation) gets one row each, in order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._stream: Path | None = None

    def stream_to(self, path: Path) -> None:
        """Also append every row, as one JSON line, to `path` (the rows so far at once): a long
        run can be followed, and a run stopped before its end still leaves its profile."""
        self._stream = path
        with path.open("a") as out:
            out.writelines(json.dumps(row) + "\n" for row in self.rows)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began, cpu = time.monotonic(), time.process_time()
        try:
            yield
        finally:
            rss = rss_bytes()
            self.rows.append(
                {
                    "name": name,
                    "seconds": round(time.monotonic() - began, 3),
                    # CPU seconds of this process (all threads): on a shared host the wall
                    # figure depends on the neighbours, this one much less.
                    "cpu_s": round(time.process_time() - cpu, 3),
                    "rss_gb": round(rss / 1e9, 3),
                    # The kernel's high-water mark lags /proc's count by a few pages.
                    "peak_rss_gb": round(max(rss, peak_rss_bytes()) / 1e9, 3),
                }
            )
            if self._stream is not None:
                with self._stream.open("a") as out:
                    out.write(json.dumps(self.rows[-1]) + "\n")

    def totals(self) -> dict[str, float]:
        """Seconds per phase name, summed over its rows."""
        out: dict[str, float] = {}
        for row in self.rows:
            out[row["name"]] = round(out.get(row["name"], 0.0) + row["seconds"], 3)
        return out
