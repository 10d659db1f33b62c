"""Per-row checks: required values, types, ranges, enums, duplicates, referential integrity.

A row is accepted only if every check passes; otherwise each problem becomes a `Reject` (file,
line, column, reason). References resolve against the ids accepted earlier in the same load
(entities load in `LOAD_ORDER`, so referenced ones come first) and then against the store.
Duplicate ids are found among the ids accepted earlier in the load; for an entity that nothing
references, among the few ids that an earlier pass found repeated (`limit_duplicates_to`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from etl.entities import ENTITIES, NODE_ENTITIES, UNREFERENCED, Entity
from etl.fastpath import canonical_rows
from etl.idset import IdSet
from etl.parse import is_missing, parser_for
from etl.sources.base import RawBatch, Reject

# (entity, ids) -> the ids that exist in the store.
Lookup = Callable[[str, list[str]], set[str]]
DEFAULT_FUTURE_TOLERANCE_S = 24 * 3600  # clocks and time zones of the sending platform
_DUPLICATE = "duplicate id: an earlier row of this load has it"


@dataclass
class Checked:
    """One validated batch: the accepted canonical rows and the rejects."""

    entity: str
    source: str
    rows: list[dict[str, Any]]
    lines: list[int]  # where each accepted row came from
    rejects: list[Reject]
    read: int
    rejected: int


@dataclass(slots=True)
class _Row:
    line: int
    values: dict[str, Any]
    problems: list[tuple[str, str]] = field(default_factory=list)


class Validator:
    def __init__(self, now: float, future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S,
                 lookup: Lookup | None = None) -> None:
        self.max_ts = int(now + future_tolerance_s)
        self.lookup = lookup
        # Ids accepted in this load, per entity that has ids (nodes and donations).
        self.accepted: dict[str, IdSet] = {name: IdSet() for name in ENTITIES
                                           if "id" in ENTITIES[name].column_names}
        # Ids whose rows this load rejected: a reference to one says so.
        self.rejected = {name: IdSet() for name in NODE_ENTITIES}
        self._in_store = {name: IdSet() for name in NODE_ENTITIES}
        self._not_in_store = {name: IdSet() for name in NODE_ENTITIES}
        # Entities checked for duplicates among known repeats only: repeated hashes, and the
        # ids accepted so far among them.
        self._repeated: dict[str, tuple[np.ndarray, set[str]]] = {}
        self._parsers = {
            name: [(c.name, parser_for(c, self.max_ts), c.required) for c in entity.columns]
            for name, entity in ENTITIES.items()
        }

    def limit_duplicates_to(self, entity: str, repeated: np.ndarray) -> None:
        """Look for duplicate ids of `entity` only among `repeated`, the hashes occurring more
        than once in its input (`etl.repeats`), rather than remember every id it accepts: for
        entities that nothing references, whose accepted ids are needed for nothing else."""
        if entity not in UNREFERENCED:
            raise ValueError(f"{entity} is referenced: its accepted ids must be remembered")
        self.accepted.pop(entity)
        self._repeated[entity] = (repeated, set())

    def run(self, entity: str, batches: Iterable[RawBatch]) -> Iterator[Checked]:
        spec = ENTITIES[entity]
        if any(c.references == entity for c in spec.columns):
            yield from self._self_referencing(spec, batches)
            return
        for batch in batches:
            rows = self._parse(batch)
            self._check_references(spec, rows, skip_self=False)
            self._check_duplicates(spec, rows)
            yield self._checked(batch, rows)

    def _parse(self, batch: RawBatch) -> list[_Row]:
        parsers = self._parsers[batch.entity]
        columns = ENTITIES[batch.entity].column_names
        canonical = (canonical_rows(ENTITIES[batch.entity], batch.arrow, self.max_ts)
                     if batch.arrow is not None else [False] * len(batch.rows))
        rows = []
        for (line, raw), as_read in zip(batch.rows, canonical, strict=True):
            if as_read:  # every value canonical already (typed input): nothing to parse
                # A canonical Parquet row holds canonical columns only: all of them, or some.
                values = raw if len(raw) == len(columns) else {c: raw.get(c) for c in columns}
                rows.append(_Row(line, values))
                continue
            row = _Row(line, {})
            for name, parse, required in parsers:
                value = raw.get(name)
                if value is None or is_missing(value):
                    row.values[name] = None
                    if required:
                        row.problems.append((name, "missing required value"))
                    continue
                try:
                    row.values[name] = parse(value)
                except ValueError as exc:
                    row.values[name] = None
                    row.problems.append((name, str(exc)))
            rows.append(row)
        return rows

    def _check_references(self, spec: Entity, rows: list[_Row], *, skip_self: bool) -> None:
        for column in spec.columns:
            target = column.references
            if target is None or (skip_self and target == spec.name):
                continue
            pending = [r for r in rows if not r.problems and r.values[column.name] is not None]
            if not pending:
                continue
            ids = [r.values[column.name] for r in pending]
            known = self._known(target, ids)
            if known.all():
                continue
            refused = self.rejected[target].contains(IdSet.hashes(ids))
            for row, ok, bad in zip(pending, known, refused, strict=True):
                if not ok:
                    row.problems.append(
                        (column.name, _unknown(target, row.values[column.name], bad))
                    )

    def _known(self, entity: str, ids: list[str]) -> np.ndarray:
        hashes = IdSet.hashes(ids)
        known = self.accepted[entity].contains(hashes) | self._in_store[entity].contains(hashes)
        unknown = ~known & ~self._not_in_store[entity].contains(hashes)
        if unknown.any() and self.lookup is not None:
            asked = sorted({ids[i] for i in np.flatnonzero(unknown)})
            found = self.lookup(entity, asked)
            self._in_store[entity].add(IdSet.hashes(sorted(found)))
            self._not_in_store[entity].add(IdSet.hashes([i for i in asked if i not in found]))
            known |= np.fromiter((i in found for i in ids), dtype=bool, count=len(ids))
        return known

    def _check_duplicates(self, spec: Entity, rows: list[_Row]) -> None:
        if spec.name not in self.accepted and spec.name not in self._repeated:
            return
        candidates = [r for r in rows if not r.problems]
        if not candidates:
            return
        hashes = IdSet.hashes([r.values["id"] for r in candidates])
        if spec.name in self._repeated:
            repeated, seen = self._repeated[spec.name]
            # A hash that occurs once in the whole input cannot be a duplicate; the rest are
            # compared as text, so a hash collision rejects nothing.
            for index in np.flatnonzero(np.isin(hashes, repeated)):
                row = candidates[index]
                if row.values["id"] in seen:
                    row.problems.append(("id", _DUPLICATE))
                else:
                    seen.add(row.values["id"])
            return
        duplicate = self.accepted[spec.name].contains(hashes)
        _, first = np.unique(hashes, return_index=True)
        repeated = np.ones(len(hashes), dtype=bool)
        repeated[first] = False  # later rows of this batch with the same id
        duplicate |= repeated
        for index in np.flatnonzero(duplicate):
            candidates[index].problems.append(("id", _DUPLICATE))
        self.accepted[spec.name].add(hashes[~duplicate])

    def _self_referencing(self, spec: Entity, batches: Iterable[RawBatch]) -> Iterator[Checked]:
        """Entities whose rows name each other (cause hierarchies): small, checked as a whole."""
        parsed = []
        for batch in batches:
            rows = self._parse(batch)
            self._check_references(spec, rows, skip_self=True)
            parsed.append((batch, rows))
        ids: dict[str, int] = {}  # accepted id -> rows holding it
        for _, rows in parsed:
            for row in rows:
                if not row.problems:
                    if row.values["id"] in ids:
                        row.problems.append(("id", _DUPLICATE))
                    else:
                        ids[row.values["id"]] = 1
        parsed_ids = {row.values["id"] for _, rows in parsed for row in rows}
        columns = [c.name for c in spec.columns if c.references == spec.name]
        changed = True
        while changed:  # a rejected parent takes its children with it
            changed = False
            for _, rows in parsed:
                for row in rows:
                    if row.problems:
                        continue
                    for name in columns:
                        parent = row.values[name]
                        if parent is None:
                            continue
                        problem = None
                        if parent == row.values["id"]:
                            problem = "refers to itself"
                        elif parent not in ids and not self._known(spec.name, [parent])[0]:
                            problem = _unknown(spec.name, parent, parent in parsed_ids)
                        if problem:
                            row.problems.append((name, problem))
                            ids.pop(row.values["id"], None)
                            changed = True
                            break
        self.accepted[spec.name].add(IdSet.hashes(sorted(ids)))
        for batch, rows in parsed:
            yield self._checked(batch, rows)

    def _checked(self, batch: RawBatch, rows: list[_Row]) -> Checked:
        rejects = list(batch.rejects)
        accepted, lines = [], []
        for row in rows:
            if row.problems:
                rejects.extend(Reject(batch.entity, batch.source, row.line, column, reason)
                               for column, reason in row.problems)
            else:
                accepted.append(row.values)
                lines.append(row.line)
        rejected = len(batch.rejects) + sum(1 for r in rows if r.problems)
        if batch.entity in self.rejected:
            self.rejected[batch.entity].add(IdSet.hashes(
                [r.values["id"] for r in rows if r.problems and r.values.get("id") is not None]
            ))
        return Checked(batch.entity, batch.source, accepted, lines, rejects, batch.size, rejected)


def _unknown(entity: str, value: Any, rejected_here: bool) -> str:
    where = ("its row in this load was rejected" if rejected_here
             else "not in this load or the store")
    return f"unknown {ENTITIES[entity].label} id {_preview(value)} ({where})"


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
