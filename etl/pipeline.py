"""A validated, resumable, traced load of a source into the graph.

One thread reads and validates (CPU) while the caller's thread writes batches (the store's
time), so validation costs little wall time. Per batch, before anything is written, the
cumulative reject rate of its entity (over its whole input so far) is checked once
`min_rows_for_rate` rows were read: over the limit, that entity stops: this batch and its later
ones are validated (the rejects file and counts stay complete) but not written, and rows of
later entities that reference its unwritten ids are refused. The other entities load; the
load ends `partial`. After each written batch a checkpoint records progress; a re-run of a killed
load (same load id) skips the batches already written and re-validates everything else, so the
reject file and the summary are complete and the graph ends exactly as after one clean run.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from etl import manifest as mf
from etl.entities import UNREFERENCED
from etl.repeats import repeated_hashes, source_ids
from etl.sources.base import Reject, Source, SourceError
from etl.validate import DEFAULT_FUTURE_TOLERANCE_S, TS_FALLBACKS, Checked, Validator
from etl.writer import donation_endpoints, existing_ids, graph_is_empty, write_batch
from graph_store import GraphStore, StoreError

DEFAULT_MAX_REJECT_RATE = 0.05
# The rate is judged once this many rows of an entity were read (or at its last batch), so a
# few bad rows at the top of a big file do not fail it.
DEFAULT_MIN_ROWS_FOR_RATE = 1_000


@dataclass(frozen=True)
class LoadOptions:
    loads_dir: Path
    batch_size: int = 2_000
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    min_rows_for_rate: int = DEFAULT_MIN_ROWS_FOR_RATE
    future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S
    now: float | None = None  # validation clock (tests pin it); default: the start time
    resume: bool = True  # skip batches a killed run of the same load already wrote
    # Donations from a file without a date column: dated by their initiative's posted date
    # ("posted", else the load time) or by the load time ("load-time"); flagged approximate.
    ts_fallback: str = "posted"
    # A first load into an empty graph: donors, nonprofits and donations are CREATEd, not
    # MERGEd (1.7x the rows/s on Neo4j, docs/neo4j.md). Refused on a graph with nodes.
    initial: bool = False

    def __post_init__(self) -> None:
        if self.ts_fallback not in TS_FALLBACKS:
            raise ValueError(f"ts_fallback must be one of {', '.join(TS_FALLBACKS)}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0.0 <= self.max_reject_rate <= 1.0:
            raise ValueError("max_reject_rate must be within [0, 1]")


class ProgressSink(Protocol):
    def start(self, entity: str, total: int | None) -> None: ...

    def advance(self, entity: str, rows: int) -> None: ...


@dataclass
class EntityReport:
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    written: int = 0
    changed: int = 0
    unmatched: int = 0
    duplicates: int = 0  # rows repeating an earlier row exactly: skipped, not rejected
    approximate: int = 0  # accepted rows whose date the load supplied (ts_approximate)
    withheld: int = 0  # accepted rows not written: the entity stopped at the reject limit
    stopped: str | None = None  # why the entity's writes stopped, if they did
    batches: int = 0
    skipped_batches: int = 0  # already written by a killed run of this load
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LoadReport:
    load_id: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # this attempt
    # complete | partial (some entities stopped at the reject limit, the rest loaded) | failed
    status: str = "running"
    failure: str | None = None  # rejects | source | store | not_empty
    error: str | None = None
    entities: dict[str, EntityReport] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the load did without missing columns
    directory: Path | None = None
    rejects: int = 0
    resumed_batches: int = 0
    started_at: str = ""
    ended_at: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "entities": {
                name: {**asdict(e), "rows_per_s": round(e.rows_per_s, 1)}
                for name, e in self.entities.items()
            },
            "directory": str(self.directory) if self.directory else None,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Item:
    entity: str
    index: int
    checked: Checked
    final: bool
    stopped: str | None = None  # set: the entity is over its reject limit; do not write


_DONE = object()


def load_identity(source: Source, root: Path | None, mapping: Path | None) -> tuple[str, dict]:
    """The load id and the manifest's description of the inputs."""
    inputs: list[dict[str, Any]] = []
    for path in source.inputs():
        name = str(path.relative_to(root)) if root and root.is_dir() else path.name
        inputs.append({"path": str(path.resolve()), "name": name, "sha256": mf.sha256_file(path),
                       "bytes": path.stat().st_size})
    mapping_sha = mf.sha256_file(mapping) if mapping else None
    load_id = mf.compute_load_id(
        source.format, [(i["name"], i["sha256"]) for i in inputs], mapping_sha
    )
    described = {
        "format": source.format,
        "path": str(root.resolve()) if root else None,
        "inputs": inputs,
        "mapping": {"path": str(mapping.resolve()), "sha256": mapping_sha} if mapping else None,
    }
    return load_id, described


def run_load(
    store: GraphStore,
    source: Source,
    options: LoadOptions,
    *,
    path: Path | None = None,
    mapping: Path | None = None,
    progress: ProgressSink | None = None,
) -> LoadReport:
    """Validate and write `source`; the report (and manifest) say how it went, never raise for
    bad data. `SourceError` for a malformed input is raised before anything is written."""
    started = time.monotonic()
    source.check()  # malformed files fail here, before any write
    load_id, described = load_identity(source, path, mapping)
    directory = options.loads_dir / load_id
    directory.mkdir(parents=True, exist_ok=True)
    report = LoadReport(load_id, directory=directory, started_at=mf.now_iso())
    missing = source.missing()
    report.notes = [m.note(options.ts_fallback) for m in missing]
    checkpoint = _checkpoint(directory, load_id, options)
    now = float(checkpoint["now"])
    document: dict[str, Any] = {
        "load_id": load_id,
        **described,
        "code_version": mf.code_version(),
        "options": {
            "batch_size": options.batch_size,
            "max_reject_rate": options.max_reject_rate,
            "min_rows_for_rate": options.min_rows_for_rate,
            "future_tolerance_s": options.future_tolerance_s,
            "ts_fallback": options.ts_fallback,
            "validation_clock": now,
        },
        "runs": (mf.read_json(directory / mf.MANIFEST) or {}).get("runs", []),
    }
    _save_manifest(directory, document, report)
    rejects = mf.RejectFile(directory / mf.REJECTS)
    try:
        store.ping()  # connect before two threads share the store
        validator = Validator(now, options.future_tolerance_s,
                              lambda entity, ids: existing_ids(store, entity, ids),
                              ts_fallback=options.ts_fallback)
        if any(m.entity == "donations" and m.column == "ts" for m in missing):
            validator.remember_posted()
        if not _start_initial(store, options, checkpoint, directory, report):
            return report
        _write_all(store, source, options, validator, checkpoint, directory, report, rejects,
                   progress)
        stopped = [e.stopped for e in report.entities.values() if e.stopped]
        if stopped:
            report.status, report.failure = "partial", "rejects"
            report.error = "; ".join(stopped)
        else:
            report.status = "complete"
        checkpoint["complete"] = True
        mf.write_json_atomic(directory / mf.CHECKPOINT, checkpoint)
    except SourceError as exc:
        report.status, report.failure, report.error = "failed", "source", str(exc)
    except StoreError as exc:
        report.status, report.failure, report.error = "failed", "store", str(exc)
    finally:
        rejects.close()
        report.rejects = rejects.count
        report.ended_at = mf.now_iso()
        report.seconds = time.monotonic() - started
        if report.status == "running":  # an unexpected exception is on its way up
            report.status, report.failure = "failed", "error"
        _save_manifest(directory, document, report)
    return report


def _start_initial(store: GraphStore, options: LoadOptions, checkpoint: dict[str, Any],
                   directory: Path, report: LoadReport) -> bool:
    """Decide once per load whether it CREATEs (checkpoint["initial"]); False: refused."""
    if not options.initial or "initial" in checkpoint:
        if checkpoint.get("initial"):  # a killed first load: its last batch may have landed
            checkpoint["initial"] = False
            report.notes.append("resumed a first load (--initial): the rest is merged")
        return True
    if not graph_is_empty(store):
        report.status, report.failure = "failed", "not_empty"
        report.error = ("--initial writes into an empty graph only, and this one holds "
                        "nodes: load without --initial (it merges), or into an empty store")
        return False
    checkpoint["initial"] = True
    mf.write_json_atomic(directory / mf.CHECKPOINT, checkpoint)
    return True


def _checkpoint(directory: Path, load_id: str, options: LoadOptions) -> dict[str, Any]:
    previous = mf.read_json(directory / mf.CHECKPOINT)
    if (
        options.resume
        and previous is not None
        and not previous.get("complete")
        and previous.get("batch_size") == options.batch_size
    ):
        return previous  # resume: same batches, same validation clock
    now = options.now if options.now is not None else time.time()
    return {"load_id": load_id, "batch_size": options.batch_size, "now": now, "done": {},
            "complete": False}


def _save_manifest(directory: Path, document: dict[str, Any], report: LoadReport) -> None:
    run = {"run_id": report.run_id, "started_at": report.started_at,
           "ended_at": report.ended_at or None, "status": report.status,
           "resumed_batches": report.resumed_batches}
    runs = [r for r in document["runs"] if r.get("run_id") != report.run_id] + [run]
    document["runs"] = runs
    summary = report.to_dict()
    document.update({
        "status": report.status,
        "failure": report.failure,
        "error": report.error,
        "started_at": report.started_at,
        "ended_at": report.ended_at or None,
        "entities": summary["entities"],
        "notes": summary["notes"],
        "rejects": {"file": mf.REJECTS, "count": report.rejects},
    })
    mf.write_json_atomic(directory / mf.MANIFEST, document)


def _write_all(
    store: GraphStore,
    source: Source,
    options: LoadOptions,
    validator: Validator,
    checkpoint: dict[str, Any],
    directory: Path,
    report: LoadReport,
    rejects: mf.RejectFile,
    progress: ProgressSink | None,
) -> None:
    items: queue.Queue[Any] = queue.Queue(maxsize=8)
    stop = threading.Event()
    # The repeat scan reads its entity once ahead of validation, in a thread of its own, so it
    # overlaps with writing the entities before it.
    scans = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-repeats")
    repeats = {
        entity: scans.submit(
            repeated_hashes, source_ids(source, entity, options.batch_size, stop), directory)
        for entity in source.entities() if entity in UNREFERENCED
    }
    producer = threading.Thread(
        target=_produce, args=(source, options, validator, repeats, items, stop), daemon=True,
        name="etl-validate",
    )
    for entity in source.entities():
        report.entities[entity] = EntityReport()
        if progress:
            progress.start(entity, source.row_hint(entity))
    producer.start()
    last = time.monotonic()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            _write_item(store, item, options, checkpoint, directory, report, rejects)
            # Wall time per entity: waiting for validation plus writing.
            now = time.monotonic()
            report.entities[item.entity].seconds += now - last
            last = now
            if progress:
                progress.advance(item.entity, item.checked.read)
    finally:
        stop.set()
        producer.join(timeout=10)
        scans.shutdown(wait=False, cancel_futures=True)


def _produce(source: Source, options: LoadOptions, validator: Validator,
             repeats: dict[str, Future[np.ndarray]], items: queue.Queue[Any],
             stop: threading.Event) -> None:
    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for entity in source.entities():
            if entity in repeats:
                validator.limit_duplicates_to(entity, repeats[entity].result())
            checked = validator.run(entity, source.batches(entity, options.batch_size))
            read = rejected = 0
            stopped: str | None = None
            for index, (batch, final) in enumerate(_with_last(checked)):
                read, rejected = read + batch.read, rejected + batch.rejected
                judged = read >= options.min_rows_for_rate or final
                if (stopped is None and judged and read
                        and rejected / read > options.max_reject_rate):
                    stopped = (
                        f"{entity}: {rejected} of {read} rows rejected "
                        f"({rejected / read:.1%}), more than the allowed "
                        f"{options.max_reject_rate:.1%}; batch {index + 1} and later were not "
                        f"written, the other entities were"
                    )
                if stopped is not None:
                    validator.withhold(entity, [row["id"] for row in batch.rows if "id" in row])
                if not put(_Item(entity, index, batch, final, stopped)):
                    return
        put(_DONE)
    except BaseException as exc:  # handed to the writer thread, which re-raises it
        put(exc)


def _with_last(batches: Iterator[Checked]) -> Iterator[tuple[Checked, bool]]:
    previous = next(batches, None)
    for batch in batches:
        yield previous, False  # type: ignore[misc]
        previous = batch
    if previous is not None:
        yield previous, True


def _write_item(
    store: GraphStore,
    item: _Item,
    options: LoadOptions,
    checkpoint: dict[str, Any],
    directory: Path,
    report: LoadReport,
    rejects: mf.RejectFile,
) -> None:
    entity, checked = item.entity, item.checked
    stats = report.entities[entity]
    stats.read += checked.read
    stats.rejected += checked.rejected
    stats.duplicates += checked.duplicates
    stats.approximate += checked.approximate
    stats.batches += 1
    stats.accepted += len(checked.rows)
    rejects.write(checked.rejects)
    if item.stopped is not None:
        stats.stopped = f"{item.stopped} (see {directory / mf.REJECTS})"
        stats.withheld += len(checked.rows)
        return
    done = checkpoint["done"]
    if item.index < done.get(entity, 0):
        stats.skipped_batches += 1
        report.resumed_batches += 1
        return
    try:
        result = write_batch(store, entity, checked.rows, report.load_id,
                             initial=checkpoint.get("initial", False))
    except StoreError as exc:
        if entity != "donations":
            raise
        kept = _drop_conflicting_donations(store, checked, stats, rejects)
        if kept is None:
            raise exc from None
        result = write_batch(store, entity, kept, report.load_id)
    stats.written += result.written
    stats.changed += result.changed
    stats.unmatched += result.rows - result.written
    done[entity] = item.index + 1
    mf.write_json_atomic(directory / mf.CHECKPOINT, checkpoint)


def _drop_conflicting_donations(
    store: GraphStore, checked: Checked, stats: EntityReport, rejects: mf.RejectFile
) -> list[dict[str, Any]] | None:
    """A donation id already stored between other nodes violates its uniqueness: reject those
    rows and keep the rest; None when no conflict explains the store's error."""
    stored = donation_endpoints(store, [row["id"] for row in checked.rows])
    keep = []
    conflicts = 0
    for row, line in zip(checked.rows, checked.lines, strict=True):
        endpoints = stored.get(row["id"])
        if endpoints is not None and endpoints != (row["donor_id"], row["nonprofit_id"]):
            conflicts += 1
            rejects.write([Reject(
                "donations", checked.source, line, "id",
                f"id already stored for a donation from donor {endpoints[0]!r} "
                f"to nonprofit {endpoints[1]!r}",
            )])
        else:
            keep.append(row)
    if not conflicts:
        return None
    stats.rejected += conflicts
    stats.accepted -= conflicts
    return keep
