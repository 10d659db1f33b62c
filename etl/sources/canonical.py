"""Canonical files: one CSV, JSON Lines or Parquet file per entity, optionally with a mapping.

Without a mapping a directory holds `<entity>.csv`, `<entity>.jsonl` (or `.ndjson`) or
`<entity>.parquet` with the canonical column names; a mapping file names other files and columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from etl.entities import ENTITIES, LOAD_ORDER
from etl.sources.base import MissingColumn, RawBatch, Reject, SourceError
from etl.sources.files import CsvFile, JsonLinesFile, ParquetFile, require_file
from etl.sources.mapping import NOTED, EntityMapping, Mapping, resolve_columns

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "jsonl": (".jsonl", ".ndjson"),
    "parquet": (".parquet",),
}
FORMATS = ("canonical", *EXTENSIONS)  # canonical: any of them, by file extension


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return next((kind for kind, exts in EXTENSIONS.items() if suffix in exts), None)


class CanonicalSource:
    def __init__(self, path: Path, fmt: str = "canonical", mapping: Mapping | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
        self.format = fmt
        self.path = path
        self.mapping = mapping or Mapping()
        self._files = self._discover()
        self._columns: dict[Path, dict[str, str]] = {}
        self._missing: list[MissingColumn] = []

    def inputs(self) -> list[Path]:
        return [path for paths in self._files.values() for path in paths]

    def entities(self) -> tuple[str, ...]:
        return tuple(name for name in LOAD_ORDER if name in self._files)

    def _accepts(self, path: Path) -> bool:
        kind = _kind(path)
        return kind is not None and self.format in ("canonical", kind)

    def _discover(self) -> dict[str, list[Path]]:
        if not self.path.exists():
            raise SourceError(self.path, "no such file or directory")
        if self.path.is_dir():
            candidates = sorted(p for p in self.path.iterdir() if p.is_file() and self._accepts(p))
        else:
            if not self._accepts(self.path):
                raise SourceError(self.path, f"not a {self.format} file "
                                  f"(expected one of {self._extensions()})")
            candidates = [self.path]
        files: dict[str, list[Path]] = {}
        for path in candidates:
            files.setdefault(self._entity_of(path), []).append(path)
        if not files:
            raise SourceError(self.path, f"holds no {self.format} files "
                              f"(<entity>{{{','.join(self._extensions())}}})")
        return files

    def _extensions(self) -> list[str]:
        kinds = EXTENSIONS if self.format == "canonical" else {self.format: EXTENSIONS[self.format]}
        return [ext for exts in kinds.values() for ext in exts]

    def _entity_of(self, path: Path) -> str:
        mapped = [m.entity for m in self.mapping.entities.values() if m.matches(path.name)]
        if len(mapped) > 1:
            raise SourceError(path, f"matches the files of several entities {mapped}")
        if mapped:
            return mapped[0]
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        if stem in ENTITIES:
            return stem
        raise SourceError(
            path, f"names no entity: expected <entity>{path.suffix} for one of "
            f"{', '.join(LOAD_ORDER)}, or a mapping file that names it"
        )

    def _entity_mapping(self, entity: str) -> EntityMapping | None:
        return self.mapping.entities.get(entity)

    def check(self) -> None:
        self._missing = []
        for entity, paths in self._files.items():
            for path in paths:
                names = self._source_names(path)
                present = set(names)
                mapping = self._entity_mapping(entity)
                if _kind(path) == "jsonl":
                    # Objects may omit keys: any canonical column is known, none is required
                    # up front (a row without a required key is rejected on its own).
                    names = _with_canonical(entity, names, mapping)
                columns = resolve_columns(entity, names, mapping, path,
                                          check_required=_kind(path) != "jsonl")
                self._columns[path] = columns
                defaults = mapping.defaults if mapping else {}
                self._missing += [
                    MissingColumn(entity, column, str(path), columns.get(column, column))
                    for column in NOTED.get(entity, ())
                    if columns.get(column) not in present and column not in defaults
                ]

    def missing(self) -> list[MissingColumn]:
        return list(self._missing)

    def _source_names(self, path: Path) -> list[str]:
        kind = _kind(path)
        require_file(path, allow_empty=kind == "jsonl")
        if kind == "csv":
            return CsvFile(path, self.mapping.delimiter, self.mapping.encoding).header()
        if kind == "jsonl":
            return JsonLinesFile(path, self.mapping.encoding).first_keys()
        return ParquetFile(path).names

    def row_hint(self, entity: str) -> int | None:
        paths = self._files.get(entity, [])
        if paths and all(_kind(p) == "parquet" for p in paths):
            return sum(ParquetFile(p).num_rows for p in paths)
        return None

    def batches(self, entity: str, batch_size: int) -> Iterator[RawBatch]:
        for path in self._files.get(entity, []):
            if path not in self._columns:
                self.check()
            columns = self._columns[path]
            yield from _FileRows(entity, path, columns, self._entity_mapping(entity),
                                 self.mapping).batches(batch_size)


def _with_canonical(entity: str, names: list[str], mapping: EntityMapping | None) -> list[str]:
    mapped = set(mapping.columns) if mapping else set()
    taken = {name.lower() for name in names}
    extra = [c for c in ENTITIES[entity].column_names
             if c not in mapped and c.lower() not in taken]
    return names + extra


class _FileRows:
    """One file's records as raw canonical rows, with mapping values and defaults applied."""

    def __init__(self, entity: str, path: Path, columns: dict[str, str],
                 mapping: EntityMapping | None, options: Mapping) -> None:
        self.entity = entity
        self.path = path
        self.columns = columns  # canonical -> source
        self.values = mapping.values if mapping else {}
        self.defaults = {k: v for k, v in (mapping.defaults if mapping else {}).items()
                         if k not in columns}
        self.options = options

    def batches(self, batch_size: int) -> Iterator[RawBatch]:
        kind = _kind(self.path)
        if kind == "parquet":
            yield from self._parquet(batch_size)
            return
        records = self._csv() if kind == "csv" else self._jsonl()
        batch = self._new()
        for line, row in records:
            if isinstance(row, str):
                batch.rejects.append(Reject(self.entity, str(self.path), line, "", row))
            else:
                batch.rows.append((line, row))
            if batch.size >= batch_size:
                yield batch
                batch = self._new()
        if batch.size:
            yield batch

    def _new(self) -> RawBatch:
        return RawBatch(self.entity, str(self.path), [])

    def _finish(self, raw: dict[str, Any]) -> dict[str, Any]:
        for column, table in self.values.items():
            value = raw.get(column)
            if isinstance(value, str) and value.strip() in table:
                raw[column] = table[value.strip()]
        raw.update(self.defaults)
        return raw

    def _csv(self) -> Iterator[tuple[int, dict[str, Any] | str]]:
        reader = CsvFile(self.path, self.options.delimiter, self.options.encoding)
        header = reader.header()
        index = [(column, header.index(source)) for column, source in self.columns.items()]
        for line, fields in reader.records():
            if isinstance(fields, str):
                yield line, fields
            else:
                yield line, self._finish({column: fields[i] for column, i in index})

    def _jsonl(self) -> Iterator[tuple[int, dict[str, Any] | str]]:
        source_to_column = {source: column for column, source in self.columns.items()}
        ignore = self._ignored()
        for line, record in JsonLinesFile(self.path, self.options.encoding).records():
            if isinstance(record, str):
                yield line, record
                continue
            unknown = [str(k) for k in record if k not in source_to_column and k not in ignore]
            if unknown:
                yield line, f"unknown fields {sorted(unknown)[:5]}"
                continue
            # An absent key stays absent: validation tells it from an empty value (a donation
            # without a date is dated, see etl.validate).
            yield line, self._finish(
                {column: record[source] for source, column in source_to_column.items()
                 if source in record}
            )

    def _ignored(self) -> frozenset[str]:
        mapping = self.options.entities.get(self.entity)
        return mapping.ignore if mapping else frozenset()

    def _parquet(self, batch_size: int) -> Iterator[RawBatch]:
        sources = list(self.columns.values())
        renames = list(self.columns.items())
        # Canonical names and nothing to map: the rows are used as read.
        as_read = all(c == s for c, s in renames) and not self.values and not self.defaults
        for first, rows, arrow in ParquetFile(self.path).batches(batch_size, sources):
            if not as_read:
                rows = [self._finish({c: row[s] for c, s in renames}) for row in rows]
            yield RawBatch(self.entity, str(self.path), list(enumerate(rows, start=first)),
                           arrow=arrow if as_read else None)
