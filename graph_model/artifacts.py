"""Versioned model artifacts on disk (TF-free: the API reads them with numpy and json only).

Layout of `artifacts_root/<version>/`: saved_model/ (Keras SavedModel), donor_embeddings.npy,
nonprofit_embeddings.npy, donor_ids.json, nonprofit_ids.json, nonprofit_popularity.npy (training
donation counts, for fallback ranking), metrics.json, snapshot.json. `artifacts_root/CURRENT`
names the version to serve.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

CURRENT = "CURRENT"
SAVED_MODEL = "saved_model"


@dataclass(frozen=True)
class ModelArtifact:
    path: Path
    version: str
    snapshot_hash: str
    donor_ids: list[str]
    nonprofit_ids: list[str]
    donor_embeddings: np.ndarray  # (donors, dim), row i belongs to donor_ids[i]
    nonprofit_embeddings: np.ndarray  # (nonprofits, dim)
    nonprofit_popularity: np.ndarray  # (nonprofits,) training donation counts
    metrics: dict[str, Any]
    _donor_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_donor_index", {d: i for i, d in enumerate(self.donor_ids)})

    def recommend(
        self, donor_id: str, k: int, exclude: Collection[str] = ()
    ) -> list[tuple[str, float]]:
        """Top-k (nonprofit id, score) by embedding dot product, skipping `exclude`.

        Donors unknown to the model (joined after its snapshot) get the popularity ranking,
        scored by training donation count.
        """
        row = self._donor_index.get(donor_id)
        if row is None:
            scores = self.nonprofit_popularity.astype(np.float64)
        else:
            scores = self.nonprofit_embeddings @ self.donor_embeddings[row]
        order = np.argsort(-scores, kind="stable")
        excluded = set(exclude)
        ranked = (i for i in order if self.nonprofit_ids[i] not in excluded)
        return [(self.nonprofit_ids[i], float(scores[i])) for i in islice(ranked, k)]


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_artifact(
    artifacts_root: Path,
    *,
    snapshot_dir: Path,
    snapshot_hash: str,
    save_model: Callable[[Path], None],
    donor_ids: list[str],
    nonprofit_ids: list[str],
    donor_embeddings: np.ndarray,
    nonprofit_embeddings: np.ndarray,
    nonprofit_popularity: np.ndarray,
    metrics: dict[str, Any],
) -> Path:
    """Write a new version and point CURRENT at it; returns the version directory.

    The version is built in a hidden staging directory and renamed into place, so readers never
    see a half-written version; CURRENT is replaced atomically after the rename.
    """
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{snapshot_hash[:8]}"
    artifacts_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=artifacts_root))
    try:
        save_model(staging / SAVED_MODEL)
        np.save(staging / "donor_embeddings.npy", donor_embeddings.astype(np.float32))
        np.save(staging / "nonprofit_embeddings.npy", nonprofit_embeddings.astype(np.float32))
        np.save(staging / "nonprofit_popularity.npy", nonprofit_popularity)
        _write_json(staging / "donor_ids.json", donor_ids)
        _write_json(staging / "nonprofit_ids.json", nonprofit_ids)
        _write_json(staging / "metrics.json", metrics)
        shutil.copyfile(snapshot_dir / "snapshot.json", staging / "snapshot.json")
        final = artifacts_root / version
        staging.rename(final)  # fails rather than overwrite an existing version
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pointer = artifacts_root / f".{CURRENT}.{os.getpid()}"
    pointer.write_text(version + "\n")
    os.replace(pointer, artifacts_root / CURRENT)
    return final


def current_artifact_dir(artifacts_root: Path) -> Path | None:
    """The version directory CURRENT names, or None if there is none yet."""
    try:
        version = (artifacts_root / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    path = artifacts_root / version
    return path if version and path.is_dir() else None


def load_artifact(path: Path) -> ModelArtifact:
    """Load a version directory without TensorFlow (the SavedModel is left on disk)."""
    return ModelArtifact(
        path=path,
        version=path.name,
        snapshot_hash=json.loads((path / "snapshot.json").read_text())["hash"],
        donor_ids=json.loads((path / "donor_ids.json").read_text()),
        nonprofit_ids=json.loads((path / "nonprofit_ids.json").read_text()),
        donor_embeddings=np.load(path / "donor_embeddings.npy"),
        nonprofit_embeddings=np.load(path / "nonprofit_embeddings.npy"),
        nonprofit_popularity=np.load(path / "nonprofit_popularity.npy"),
        metrics=json.loads((path / "metrics.json").read_text()),
    )
