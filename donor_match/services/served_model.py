"""The model version the API serves: whatever `CURRENT` in the models directory names.

Promoting or rolling back moves `CURRENT`; every API process notices within `recheck_s` and
switches without a restart. A version that fails to load is logged and the previous one kept.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path
from typing import Protocol

from graph_model.artifacts import ModelArtifact, current_artifact_dir, load_artifact

log = logging.getLogger(__name__)


class ModelSource(Protocol):
    """Where matching gets the model version to serve (`ServedModel`, or a fixed one in tests)."""

    def current(self) -> ModelArtifact | None: ...


class ServedModel:
    def __init__(self, models_dir: Path, recheck_s: float = 5.0) -> None:
        self._models_dir = models_dir
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._model: ModelArtifact | None = None
        self._checked = float("-inf")
        self._refresh()

    def current(self) -> ModelArtifact | None:
        if time.monotonic() - self._checked >= self._recheck_s:
            self._refresh()
        return self._model

    def _refresh(self) -> None:
        with self._lock:
            self._checked = time.monotonic()
            path = current_artifact_dir(self._models_dir)
            if path is None or (self._model is not None and self._model.path == path):
                return
            try:
                self._model = load_artifact(path)
            except Exception as exc:
                # Whatever a damaged version raises (a truncated zip: BadZipFile, not OSError),
                # the process keeps serving the previous one; at start, none (UNAVAILABLE).
                log.error("model %s does not load; still serving %s: %s", path.name,
                          self._model.version if self._model else "nothing", exc)
                return
            log.info("serving model %s", self._model.version)
            # The model's ids and index (millions of objects at 1M donors) live until the next
            # promotion: out of the cycle collector's sight, or each of its full collections
            # walks them all, a pause of tens of milliseconds in the middle of requests.
            gc.collect()
            gc.freeze()
