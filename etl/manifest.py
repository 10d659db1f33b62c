"""Per-load records under `<loads dir>/<load id>/`: manifest, checkpoint and reject file.

The load id is derived from what is loaded (format, input names and checksums, mapping, ETL
version), so re-running or resuming the same load reuses its id and its checkpoint, and the
`load_id` stamped on nodes and edges is the same whether a load ran once or was killed and re-run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from etl.sources.base import Reject

# Bump when what a load writes for the same input changes (statements, validation rules).
ETL_VERSION = "2"
MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.json"
REJECTS = "rejects.csv"
REJECT_COLUMNS = ("entity", "file", "line", "column", "reason")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def code_version() -> dict[str, str | None]:
    try:
        package = metadata.version("donor-match")
    except metadata.PackageNotFoundError:
        package = None
    return {"etl": ETL_VERSION, "package": package, "git": _git_commit()}


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def compute_load_id(fmt: str, inputs: Iterable[tuple[str, str]], mapping_sha: str | None) -> str:
    """`inputs` are (name relative to the load's path, sha256) pairs."""
    identity = {
        "format": fmt,
        "inputs": sorted(inputs),
        "mapping": mapping_sha,
        "etl": ETL_VERSION,
    }
    text = json.dumps(identity, sort_keys=True).encode()
    return "load-" + hashlib.sha256(text).hexdigest()[:16]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    # Write beside and rename: a kill mid-write leaves the previous version, never half of one.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


class RejectFile:
    """The reject file of one run, renamed into place when the run ends (however it ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._handle = self._partial.open("w", newline="", encoding="utf-8",
                                          errors="backslashreplace")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(REJECT_COLUMNS)
        self.count = 0

    def write(self, rejects: Iterable[Reject]) -> None:
        for reject in rejects:
            self._writer.writerow(
                (reject.entity, reject.source, reject.line, reject.column, reject.reason)
            )
            self.count += 1

    def close(self) -> None:
        self._handle.close()
        os.replace(self._partial, self.path)
