"""CSV files of a known publisher (DonorsChoose, IRS): header spellings normalised, needed
columns checked up front, extra columns ignored by design."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from etl.sources.base import SourceError
from etl.sources.files import CsvFile


def normalize(name: str) -> str:
    """`Donor ID`, `Donor.ID`, `donor_id`, `_donor_id` and ` DONOR  ID ` are the same column."""
    # Stripped again: the older DonorsChoose export writes ids as `_projectid`.
    return re.sub(r"[\s._]+", " ", name.strip()).strip().lower()


class KnownCsv:
    def __init__(self, path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()):
        self.path = path
        self.required = required
        self.optional = optional
        self._csv = CsvFile(path)
        self._index: dict[str, int] | None = None

    def has(self, name: str) -> bool:
        """Whether the file has column `name` (required ones always; after `check`)."""
        if self._index is None:
            self.check()
        return name in (self._index or {})

    def absent(self) -> list[str]:
        """The optional columns the file does not have (after `check`)."""
        return [name for name in self.optional if not self.has(name)]

    def check(self) -> None:
        header = [normalize(name) for name in self._csv.header()]
        missing = [name for name in self.required if name not in header]
        if missing:
            raise SourceError(
                self.path, f"missing columns {missing} (found {header[:12]}"
                f"{'...' if len(header) > 12 else ''})"
            )
        self._index = {name: header.index(name) for name in (*self.required, *self.optional)
                       if name in header}

    def records(self) -> Iterator[tuple[int, dict[str, str] | str]]:
        """(line, {normalised column: text}) or (line, why the record is unreadable)."""
        if self._index is None:
            self.check()
        index = self._index or {}
        for line, fields in self._csv.records():
            if isinstance(fields, str):
                yield line, fields
            else:
                yield line, {name: fields[i] for name, i in index.items()}
