"""Rich progress bars with rows/s for long ETL steps (the CLI's view of a load)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text


class RateColumn(ProgressColumn):
    """Rows per second over rich's recent-speed window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s", style="progress.data.speed")


class CountColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        done = int(task.completed)
        total = "" if task.total is None else f"/{int(task.total):,}"
        return Text(f"{done:,}{total} rows", style="progress.download")


def rate_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), CountColumn(), RateColumn(),
        TimeElapsedColumn(), console=console,
    )


class RichProgress:
    """One bar per entity: a `ProgressSink` for etl.pipeline, and `advance` is the
    `(entity, rows)` callback the synthetic stream and the anonymizer take."""

    def __init__(self, console: Console, step: str = "load") -> None:
        self.progress = rate_progress(console)
        self.step = step
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.progress.__exit__(kind, value, traceback)

    def start(self, entity: str, total: int | None) -> None:
        self._tasks[entity] = self.progress.add_task(f"{self.step} {entity}", total=total)

    def advance(self, entity: str, rows: int) -> None:
        if entity not in self._tasks:
            self.start(entity, None)
        self.progress.advance(self._tasks[entity], rows)


def summary_table(report: dict) -> Table:
    """Accepted/rejected per entity, as the CLI prints it after a load."""
    table = Table("entity", "read", "accepted", "rejected", "duplicates", "written", "changed",
                  "rows/s", title=f"load {report['load_id']}: {report['status']}")
    for name, e in report["entities"].items():
        written = f"{e['written']:,}" + (" (stopped)" if e.get("stopped") else "")
        table.add_row(name, f"{e['read']:,}", f"{e['accepted']:,}", f"{e['rejected']:,}",
                      f"{e.get('duplicates', 0):,}", written, f"{e['changed']:,}",
                      f"{e['rows_per_s']:,.0f}")
    return table


def summary_notes(report: dict) -> list[str]:
    """What the load did without missing columns, with repeats and at the reject limit."""
    notes = list(report.get("notes", []))
    for name, e in report["entities"].items():
        if e.get("duplicates"):
            notes.append(f"{name}: {e['duplicates']:,} rows repeated an earlier row exactly "
                         f"and were skipped (not rejects)")
        if e.get("approximate"):
            notes.append(f"{name}: {e['approximate']:,} rows have an approximate date "
                         f"(ts_approximate)")
        if e.get("stopped"):
            notes.append(f"{name} stopped at the reject limit: {e['stopped']}; "
                         f"{e.get('withheld', 0):,} accepted rows were not written")
    return notes
