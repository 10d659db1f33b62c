"""`donor-match train` shows progress with an ETA (training a large graph takes many minutes)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import TimeRemainingColumn

from entrypoints.cli import common


def test_the_training_progress_bar_has_an_eta(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=120, force_terminal=False))
    progress = common.progress_bars()
    assert any(isinstance(column, TimeRemainingColumn) for column in progress.columns)
    with progress:
        task = progress.add_task("train", total=200)
        progress.update(task, completed=100)
    rendered = out.getvalue()
    assert "100/200" in rendered and "eta" in rendered
