"""Which ids of a stream occur more than once, found in bounded memory.

Exact duplicate detection in one pass must remember every id seen: for the 10M donations of a
big load that is 80 MB of hashes (160 MB while merging), growing with the load. Ids that no
other entity references (donations) are checked in two passes instead: this pass spills the
64-bit hashes of all ids to disk, partitioned by their top bits, and counts each partition on
its own; the load then remembers only the ids whose hash repeats (normally none). Memory stays
a few megabytes per 10M ids; disk holds 8 bytes per id until the pass ends.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from etl.idset import IdSet
from etl.parse import is_missing, parse_id
from etl.sources.base import Source

PARTITIONS = 64  # 10M ids: 1.25 MB counted at a time
_TOP_BITS = np.uint64(64 - 6)
SPILL_EVERY = 1 << 20  # hashes buffered before they are written out (8 MB)


def repeated_hashes(batches: Iterable[Sequence[str]], workdir: Path,
                    spill_every: int = SPILL_EVERY) -> np.ndarray:
    """The sorted hashes (`IdSet.hashes`) that occur more than once across `batches`."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix="repeats-") as tmp:
        paths = [Path(tmp) / f"{p:02d}.bin" for p in range(PARTITIONS)]
        files = [path.open("wb") for path in paths]
        try:
            pending: list[np.ndarray] = []
            buffered = 0
            for ids in batches:
                pending.append(IdSet.hashes(ids))
                buffered += len(ids)
                if buffered >= spill_every:
                    _spill(pending, files)
                    pending, buffered = [], 0
            _spill(pending, files)
        finally:
            for handle in files:
                handle.close()
        repeated = []
        for path in paths:
            values, counts = np.unique(np.fromfile(path, dtype=np.int64), return_counts=True)
            repeated.append(values[counts > 1])
    return np.sort(np.concatenate(repeated))


def _spill(pending: list[np.ndarray], files: list) -> None:
    if not pending:
        return
    hashes = np.concatenate(pending)
    partition = (hashes.view(np.uint64) >> _TOP_BITS).astype(np.intp)
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(PARTITIONS + 1))
    hashes = hashes[order]
    for p, handle in enumerate(files):
        hashes[bounds[p]:bounds[p + 1]].tofile(handle)


def source_ids(source: Source, entity: str, batch_size: int,
               stop: threading.Event) -> Iterator[list[str]]:
    """The ids of `entity` as validation will parse them, batch by batch (unparseable ones are
    left out: their rows are rejected anyway). Ends early once `stop` is set."""
    for batch in source.batches(entity, batch_size):
        if stop.is_set():
            return
        ids = []
        for _, raw in batch.rows:
            value = raw.get("id")
            if value is None or is_missing(value):
                continue
            try:
                ids.append(parse_id(value))
            except ValueError:
                continue
        yield ids
