"""Per-row checks: required values, types, ranges, enums, duplicates, referential integrity.

A row is accepted only if every check passes; otherwise each problem becomes a `Reject` (file,
line, column, reason). References resolve against the ids accepted earlier in the same load
(entities load in `LOAD_ORDER`, so referenced ones come first) and then against the store.
Repeated ids are found among the ids accepted earlier in the load; for an entity that nothing
references, among the few ids that an earlier pass found repeated (`limit_duplicates_to`). A row
that repeats an accepted row's id with the same value in every canonical column is a duplicate:
counted and skipped, not rejected (real exports repeat rows, often differing only in columns the
load does not read). A repeat with other values is a conflict: rejected, naming the kept line.

A donations file without a date column still loads: each donation is dated by its initiative's
posted date (`ts_fallback="posted"`, when known) or the load time, and flagged `ts_approximate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from etl.entities import ENTITIES, NODE_ENTITIES, UNREFERENCED, Entity
from etl.fastpath import canonical_rows
from etl.idset import IdMap, IdSet
from etl.parse import is_missing, parser_for
from etl.sources.base import RawBatch, Reject

# (entity, ids) -> the ids that exist in the store.
Lookup = Callable[[str, list[str]], set[str]]
DEFAULT_FUTURE_TOLERANCE_S = 24 * 3600  # clocks and time zones of the sending platform
TS_FALLBACKS = ("posted", "load-time")  # what dates a donation whose file has no date column
_LINE_BITS = 40  # a row's location: source index << _LINE_BITS | line


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
    duplicates: int = 0  # rows repeating an accepted row exactly: skipped, not rejected
    approximate: int = 0  # accepted rows whose date the load supplied (ts_approximate)


@dataclass(slots=True)
class _Row:
    line: int
    values: dict[str, Any]
    problems: list[tuple[str, str]] = field(default_factory=list)
    duplicate: bool = False
    approximate: bool = False


class Validator:
    def __init__(self, now: float, future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S,
                 lookup: Lookup | None = None, ts_fallback: str = "posted") -> None:
        if ts_fallback not in TS_FALLBACKS:
            raise ValueError(f"ts_fallback must be one of {TS_FALLBACKS}, got {ts_fallback!r}")
        self.max_ts = int(now + future_tolerance_s)
        self.now = int(now)
        self.lookup = lookup
        self.ts_fallback = ts_fallback
        # Posted dates of accepted initiatives, kept only when donations need them to be dated
        # (`remember_posted`): a dict of every initiative would cost ~100 bytes each otherwise.
        self._posted: dict[str, int] | None = None
        # Ids accepted in this load, per entity that has ids (nodes and donations).
        self.accepted: dict[str, IdSet] = {name: IdSet() for name in ENTITIES
                                           if "id" in ENTITIES[name].column_names}
        # Ids whose rows this load rejected: a reference to one says so.
        self.rejected = {name: IdSet() for name in NODE_ENTITIES}
        self._in_store = {name: IdSet() for name in NODE_ENTITIES}
        self._not_in_store = {name: IdSet() for name in NODE_ENTITIES}
        # Per entity with ids: where each accepted id was read and a hash of its values.
        self._first: dict[str, IdMap] = {name: IdMap() for name in self.accepted}
        self._sources: dict[str, int] = {}
        # Ids accepted but not written (their entity stopped at the reject limit).
        self.withheld = {name: IdSet() for name in NODE_ENTITIES}
        # Entities checked for duplicates among known repeats only: repeated hashes, and the
        # ids accepted so far among them.
        self._repeated: dict[str, tuple[np.ndarray, dict[str, tuple[int, int]]]] = {}
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
        self._first.pop(entity, None)
        self._repeated[entity] = (repeated, {})

    def remember_posted(self) -> None:
        """Keep initiatives' posted dates: donations without a date column are dated by them."""
        if self.ts_fallback == "posted" and self._posted is None:
            self._posted = {}

    def withhold(self, entity: str, ids: list[str]) -> None:
        """`ids` were accepted but will not be written: references to them are refused."""
        if entity in self.withheld and ids:
            self.withheld[entity].add(IdSet.hashes(ids))

    def run(self, entity: str, batches: Iterable[RawBatch]) -> Iterator[Checked]:
        spec = ENTITIES[entity]
        if any(c.references == entity for c in spec.columns):
            yield from self._self_referencing(spec, batches)
            return
        for batch in batches:
            rows = self._parse(batch)
            self._check_references(spec, rows, skip_self=False)
            self._check_duplicates(spec, rows, batch.source)
            checked = self._checked(batch, rows)
            if self._posted is not None and entity == "initiatives":
                self._posted.update((row["id"], row["posted_ts"]) for row in checked.rows
                                    if row["posted_ts"] is not None)
            yield checked

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
            undated = False
            for name, parse, required in parsers:
                value = raw.get(name)
                if value is None or is_missing(value):
                    row.values[name] = None
                    if required and name not in raw and name == "ts":
                        undated = True  # no date column: dated below
                    elif required:
                        row.problems.append((name, "missing required value" if name in raw else
                                             f"missing required value (the row has no {name} "
                                             f"column)"))
                    continue
                try:
                    row.values[name] = parse(value)
                except ValueError as exc:
                    row.values[name] = None
                    row.problems.append((name, str(exc)))
            if undated:
                self._date(row)
            rows.append(row)
        return rows

    def _date(self, row: _Row) -> None:
        """A donation read without a date: its initiative's posted date, else the load time."""
        initiative = row.values.get("initiative_id")
        posted = (self._posted.get(initiative) if self._posted is not None and initiative
                  else None)
        row.values["ts"] = posted if posted is not None else self.now
        row.values["ts_approximate"] = True
        row.approximate = True

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
            hashes = IdSet.hashes(ids)
            refused = self.rejected[target].contains(hashes)
            withheld = self.withheld[target].contains(hashes)
            for row, ok, bad, held in zip(pending, known, refused, withheld, strict=True):
                if not ok:
                    why = ("its row in this load was not written: its entity stopped at the "
                           "reject limit" if held else None)
                    row.problems.append(
                        (column.name, _unknown(target, row.values[column.name], bad, why))
                    )

    def _known(self, entity: str, ids: list[str]) -> np.ndarray:
        hashes = IdSet.hashes(ids)
        accepted = self.accepted[entity].contains(hashes)
        if len(self.withheld[entity]):
            accepted &= ~self.withheld[entity].contains(hashes)
        known = accepted | self._in_store[entity].contains(hashes)
        unknown = ~known & ~self._not_in_store[entity].contains(hashes)
        if unknown.any() and self.lookup is not None:
            asked = sorted({ids[i] for i in np.flatnonzero(unknown)})
            found = self.lookup(entity, asked)
            self._in_store[entity].add(IdSet.hashes(sorted(found)))
            self._not_in_store[entity].add(IdSet.hashes([i for i in asked if i not in found]))
            known |= np.fromiter((i in found for i in ids), dtype=bool, count=len(ids))
        return known

    def _check_duplicates(self, spec: Entity, rows: list[_Row], source: str) -> None:
        if spec.name not in self.accepted and spec.name not in self._repeated:
            return
        candidates = [r for r in rows if not r.problems]
        if not candidates:
            return
        hashes = IdSet.hashes([r.values["id"] for r in candidates])
        source_index = self._source_index(source)
        if spec.name in self._repeated:
            repeated, seen = self._repeated[spec.name]
            # A hash that occurs once in the whole input cannot be a repeat; the rest are
            # compared as text, so a hash collision rejects nothing.
            for index in np.flatnonzero(np.isin(hashes, repeated)):
                row = candidates[index]
                first = seen.get(row.values["id"])
                if first is None:
                    seen[row.values["id"]] = (_values_hash(row), _where(source_index, row))
                else:
                    self._repeat(row, *first)
            return
        earlier = self.accepted[spec.name].contains(hashes)
        _, first_in_batch = np.unique(hashes, return_index=True)
        again = np.ones(len(hashes), dtype=bool)
        again[first_in_batch] = False  # later rows of this batch with the same id
        fresh = ~(earlier | again)
        fresh_rows = [candidates[i] for i in np.flatnonzero(fresh)]
        payload = np.array([(_values_hash(r), _where(source_index, r)) for r in fresh_rows],
                           dtype=np.int64).reshape(-1, 2)
        self.accepted[spec.name].add(hashes[fresh])
        self._first[spec.name].add(hashes[fresh], payload)
        repeats = np.flatnonzero(~fresh)
        if len(repeats):
            found, firsts = self._first[spec.name].get(hashes[repeats])
            for index, known, (values_hash, where) in zip(repeats, found, firsts, strict=True):
                self._repeat(candidates[index], int(values_hash), int(where) if known else None)

    def _repeat(self, row: _Row, values_hash: int, where: int | None) -> None:
        """`row` repeats the id of the accepted row at `where`: a duplicate or a conflict.
        (`where` None: an id accepted without its row at hand, e.g. added by a caller.)"""
        if where is None:
            row.problems.append(("id", "duplicate id: an earlier row of this load has it"))
            return
        if _values_hash(row) == values_hash:
            row.duplicate = True
            return
        sources = list(self._sources)
        source, line = sources[where >> _LINE_BITS], where & ((1 << _LINE_BITS) - 1)
        row.problems.append(("id", f"conflicting repeat of id {_preview(row.values['id'])}: "
                                   f"{source} line {line} has it with other values (that row "
                                   f"was kept)"))

    def _source_index(self, source: str) -> int:
        return self._sources.setdefault(source, len(self._sources))

    def _self_referencing(self, spec: Entity, batches: Iterable[RawBatch]) -> Iterator[Checked]:
        """Entities whose rows name each other (cause hierarchies): small, checked as a whole."""
        parsed = []
        for batch in batches:
            rows = self._parse(batch)
            self._check_references(spec, rows, skip_self=True)
            parsed.append((batch, rows))
        ids: dict[str, tuple[int, int]] = {}  # accepted id -> (values hash, where)
        for batch, rows in parsed:
            source_index = self._source_index(batch.source)
            for row in rows:
                if not row.problems:
                    first = ids.get(row.values["id"])
                    if first is not None:
                        self._repeat(row, *first)
                    else:
                        ids[row.values["id"]] = (_values_hash(row), _where(source_index, row))
        parsed_ids = {row.values["id"] for _, rows in parsed for row in rows}
        columns = [c.name for c in spec.columns if c.references == spec.name]
        changed = True
        while changed:  # a rejected parent takes its children with it
            changed = False
            for _, rows in parsed:
                for row in rows:
                    if row.problems or row.duplicate:
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
        duplicates = approximate = 0
        for row in rows:
            if row.problems:
                rejects.extend(Reject(batch.entity, batch.source, row.line, column, reason)
                               for column, reason in row.problems)
            elif row.duplicate:
                duplicates += 1
            else:
                accepted.append(row.values)
                lines.append(row.line)
                approximate += row.approximate
        rejected = len(batch.rejects) + sum(1 for r in rows if r.problems)
        if batch.entity in self.rejected:
            self.rejected[batch.entity].add(IdSet.hashes(
                [r.values["id"] for r in rows if r.problems and r.values.get("id") is not None]
            ))
        return Checked(batch.entity, batch.source, accepted, lines, rejects, batch.size, rejected,
                       duplicates, approximate)


def _values_hash(row: _Row) -> int:
    # Every canonical column, in column order (the keys of `values` may come in a file's order
    # or in column order): equal for rows the load cannot tell apart.
    return hash(tuple(sorted(row.values.items())))


def _where(source_index: int, row: _Row) -> int:
    return (source_index << _LINE_BITS) | row.line


def _unknown(entity: str, value: Any, rejected_here: bool, why: str | None = None) -> str:
    where = why or ("its row in this load was rejected" if rejected_here
                    else "not in this load or the store")
    return f"unknown {ENTITIES[entity].label} id {_preview(value)} ({where})"


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
