"""What every source adapter yields: raw rows per canonical entity, with where they came from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa


class SourceError(ValueError):
    """A file that cannot be read as a whole: the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True)
class Reject:
    entity: str
    source: str  # the input file
    line: int  # CSV/JSON Lines: line where the record starts; Parquet: row number (1-based)
    column: str  # canonical column, or "" when the row as a whole is refused
    reason: str


@dataclass(frozen=True)
class MissingColumn:
    """An optional column a file lacks: the load goes on without it and the summary says how."""

    entity: str  # the canonical entity that would have read it
    column: str  # the canonical column it would have filled
    file: str
    source_column: str  # as the publisher names it

    def consequence(self, ts_fallback: str) -> str:
        """What the load does instead, in words."""
        if self.column == "ts":
            dated = ("its initiative's posted date, or the load time when that is unknown"
                     if ts_fallback == "posted" else "the load time")
            return f"each {self.entity} row is dated by {dated}, flagged ts_approximate"
        if self.column == "amount":
            return f"every {self.entity} row is rejected: amounts are required"
        if self.column == "region_id":
            return f"{self.entity} load without a region"
        if self.column == "name":
            return f"{self.entity} are named after their id"
        if self.column == "cause_id":
            return f"{self.entity} load without causes"
        return f"{self.entity} load without {self.column}"

    def note(self, ts_fallback: str) -> str:
        return (f"{Path(self.file).name} has no {self.source_column!r} column: "
                f"{self.consequence(ts_fallback)}")


@dataclass
class RawBatch:
    """Rows of one entity from one file, keyed by canonical column, values still raw."""

    entity: str
    source: str
    rows: list[tuple[int, dict[str, Any]]]
    # Rows the adapter refused itself (unreadable records, unusable source codes): one
    # reject per refused row.
    rejects: list[Reject] = field(default_factory=list)
    # The same rows as typed columns with canonical names, when the source has them
    # (Parquet without a mapping): lets validation check whole columns at once.
    arrow: pa.RecordBatch | None = None

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.rejects)


class BatchBuilder:
    """Collects one entity's rows from one file into `RawBatch`es of a bounded size."""

    def __init__(self, entity: str, path: Path, size: int) -> None:
        self.entity, self.source, self.size = entity, str(path), size
        self.batch = RawBatch(entity, self.source, [])

    def add(self, line: int, row: dict[str, Any]) -> RawBatch | None:
        self.batch.rows.append((line, row))
        return self._full()

    def reject(self, line: int, column: str, reason: str) -> RawBatch | None:
        self.batch.rejects.append(Reject(self.entity, self.source, line, column, reason))
        return self._full()

    def _full(self) -> RawBatch | None:
        if self.batch.size < self.size:
            return None
        full, self.batch = self.batch, RawBatch(self.entity, self.source, [])
        return full

    def rest(self) -> Iterator[RawBatch]:
        if self.batch.size:
            yield self.batch


class Source(Protocol):
    """A set of input files that maps onto the canonical entities."""

    format: str

    def inputs(self) -> list[Path]:
        """Every file the load reads (for the manifest's checksums)."""
        ...

    def check(self) -> None:
        """Open every input and raise `SourceError` if one is malformed (before any write)."""
        ...

    def entities(self) -> tuple[str, ...]:
        """The canonical entities this source provides, in load order."""
        ...

    def missing(self) -> list[MissingColumn]:
        """The optional columns the files lack (after `check`): what the load does without."""
        ...

    def row_hint(self, entity: str) -> int | None:
        """How many rows `entity` will have, when known up front (for progress bars)."""
        ...

    def batches(self, entity: str, batch_size: int) -> Iterator[RawBatch]:
        """The entity's raw rows in batches of at most `batch_size`, in a stable order."""
        ...
