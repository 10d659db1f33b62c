"""Versioned model artifacts on disk (TF-free: the API reads them with numpy and json only).

Layout of `artifacts_root/<version>/`: saved_model/ (Keras SavedModel), donor_embeddings.npy,
nonprofit_embeddings.npy, donor_ids.json, nonprofit_ids.json, gifts.npz (the training donations as
donor and nonprofit positions: popularity for fallback ranking, supporters for explanations),
metrics.json, snapshot.json. `artifacts_root/CURRENT`
names the version to serve; `artifacts_root/promotions.jsonl` is the history of what CURRENT named
(graph_model.registry promotes and rolls back through the quality gate).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from graph_model.calibration import Platt
from graph_model.gifts import Supporters

CURRENT = "CURRENT"
SAVED_MODEL = "saved_model"
HISTORY = "promotions.jsonl"
GIFTS = "gifts.npz"
_LOCK = ".registry.lock"


@dataclass(frozen=True)
class ModelArtifact:
    path: Path
    version: str
    snapshot_hash: str
    donor_ids: list[str]
    nonprofit_ids: list[str]
    donor_embeddings: np.ndarray  # (donors, dim), row i belongs to donor_ids[i]
    nonprofit_embeddings: np.ndarray  # (nonprofits, dim)
    gift_donors: np.ndarray  # (training donations,) the donor position of each
    gift_nonprofits: np.ndarray  # (training donations,) its nonprofit position
    metrics: dict[str, Any]
    nonprofit_popularity: np.ndarray = field(init=False, repr=False, compare=False)
    supporters: Supporters = field(init=False, repr=False, compare=False)
    _donor_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: the fields derived from the others are set once, here.
        count = len(self.nonprofit_ids)
        popularity = np.bincount(self.gift_nonprofits, minlength=count)
        object.__setattr__(self, "nonprofit_popularity", popularity)
        supporters = Supporters(self.gift_donors, self.gift_nonprofits, count)
        object.__setattr__(self, "supporters", supporters)
        object.__setattr__(self, "_donor_index", {d: i for i, d in enumerate(self.donor_ids)})

    def donor_position(self, donor_id: str) -> int | None:
        """The donor's row in the model, or None for a donor it was not trained with."""
        return self._donor_index.get(donor_id)

    def scores(self, donor_id: str) -> np.ndarray:
        """The donor's score for every nonprofit (row i: nonprofit_ids[i]), by embedding dot
        product. Donors unknown to the model (joined after its snapshot) get the popularity
        ranking, scored by training donation count."""
        row = self.donor_position(donor_id)
        if row is None:
            return self.nonprofit_popularity.astype(np.float64)
        return (self.nonprofit_embeddings @ self.donor_embeddings[row]).astype(np.float64)

    def probabilities(self, donor_id: str, positions: Collection[int]) -> np.ndarray | None:
        """The calibrated probability (graph_model.calibration) that the donor gives to each
        nonprofit at `positions` within a holdout-length period: Platt scaling of the model's
        score, or of popularity for donors unknown to the model. None for a version trained
        before calibration existed (its metrics.json has none)."""
        calibration = self.metrics.get("calibration")
        if not calibration:
            return None
        at = np.fromiter(positions, dtype=np.intp)
        row = self.donor_position(donor_id)
        if row is None:
            return Platt.from_json(calibration["popularity"])(self.nonprofit_popularity[at])
        scores = self.nonprofit_embeddings[at] @ self.donor_embeddings[row]
        return Platt.from_json(calibration["model"])(scores)

    def recommend(
        self, donor_id: str, k: int, exclude: Collection[str] = ()
    ) -> list[tuple[str, float]]:
        """Top-k (nonprofit id, score), best first, skipping `exclude`."""
        scores = self.scores(donor_id)
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
    gift_donors: np.ndarray,
    gift_nonprofits: np.ndarray,
    metrics: dict[str, Any],
    serve_if_first: bool = True,
) -> Path:
    """Write a new version; returns the version directory.

    The version is built in a hidden staging directory and renamed into place, so readers never
    see a half-written version. CURRENT is pointed at it only when no version is served yet and
    `serve_if_first` (False for a version its holdout could not evaluate).
    """
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{snapshot_hash[:8]}"
    artifacts_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=artifacts_root))
    try:
        save_model(staging / SAVED_MODEL)
        np.save(staging / "donor_embeddings.npy", donor_embeddings.astype(np.float32))
        np.save(staging / "nonprofit_embeddings.npy", nonprofit_embeddings.astype(np.float32))
        np.savez(
            staging / GIFTS,
            donors=gift_donors.astype(np.int32),
            nonprofits=gift_nonprofits.astype(np.int32),
        )
        _write_json(staging / "donor_ids.json", donor_ids)
        _write_json(staging / "nonprofit_ids.json", nonprofit_ids)
        _write_json(staging / "metrics.json", metrics)
        shutil.copyfile(snapshot_dir / "snapshot.json", staging / "snapshot.json")
        final = artifacts_root / version
        staging.rename(final)  # fails rather than overwrite an existing version
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    with registry_lock(artifacts_root):
        # The first version of an empty registry is served at once (there is nothing to compare
        # it with); later ones are candidates until `donor-match model promote` passes the gate.
        if serve_if_first and current_version(artifacts_root) is None:
            set_current(artifacts_root, version, action="bootstrap")
    return final


@contextmanager
def registry_lock(artifacts_root: Path) -> Iterator[None]:
    """Serialise changes of CURRENT and the history (CLI, pipeline and API may all promote)."""
    artifacts_root.mkdir(parents=True, exist_ok=True)
    with open(artifacts_root / _LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_version(artifacts_root: Path) -> str | None:
    """The version CURRENT names (whether or not its directory exists), or None."""
    try:
        return (artifacts_root / CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def set_current(artifacts_root: Path, version: str, *, action: str) -> None:
    """Point CURRENT at `version` atomically and append the change to the history.

    Call with `registry_lock` held. `action` is bootstrap, promote or rollback.
    """
    previous = current_version(artifacts_root)
    pointer = artifacts_root / f".{CURRENT}.{os.getpid()}"
    pointer.write_text(version + "\n")
    os.replace(pointer, artifacts_root / CURRENT)
    _append_history(artifacts_root, action, version, previous)


def clear_current(artifacts_root: Path, version: str) -> None:
    """Remove CURRENT (it names `version`) and record that; call with `registry_lock` held."""
    (artifacts_root / CURRENT).unlink()
    _append_history(artifacts_root, "withdraw", None, version)


def _append_history(
    artifacts_root: Path, action: str, version: str | None, previous: str | None
) -> None:
    event = {
        "ts": datetime.now(UTC).isoformat(timespec="seconds"),
        "action": action,
        "version": version,
        "previous": previous,
    }
    with open(artifacts_root / HISTORY, "a") as history:
        history.write(json.dumps(event, sort_keys=True) + "\n")


def read_history(artifacts_root: Path) -> list[dict[str, Any]]:
    """Every change of CURRENT, oldest first."""
    try:
        lines = (artifacts_root / HISTORY).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def current_artifact_dir(artifacts_root: Path) -> Path | None:
    """The version directory CURRENT names, or None if there is none yet."""
    version = current_version(artifacts_root)
    if version is None:
        return None
    path = artifacts_root / version
    return path if path.is_dir() else None


def _mapped(path: Path) -> np.ndarray:
    """A read-only array memory-mapped from `path`: the API's worker processes share one copy
    in memory and in the CPU's caches (every page of matches reads all nonprofit embeddings).
    As a plain ndarray over the mapping rather than numpy's memmap subclass, whose Python-level
    hooks run on every row taken and every product (~2% of the samples in a profile of the
    loaded API)."""
    return np.asarray(np.load(path, mmap_mode="r"))


def load_artifact(path: Path) -> ModelArtifact:
    """Load a version directory without TensorFlow (the SavedModel is left on disk)."""
    with np.load(path / GIFTS) as gifts:
        gift_donors, gift_nonprofits = gifts["donors"], gifts["nonprofits"]
    fields = dict(
        donor_ids=json.loads((path / "donor_ids.json").read_text()),
        nonprofit_ids=json.loads((path / "nonprofit_ids.json").read_text()),
        donor_embeddings=_mapped(path / "donor_embeddings.npy"),
        nonprofit_embeddings=_mapped(path / "nonprofit_embeddings.npy"),
        gift_donors=gift_donors,
        gift_nonprofits=gift_nonprofits,
    )
    _check_consistent(path.name, **fields)
    return ModelArtifact(
        path=path,
        version=path.name,
        snapshot_hash=json.loads((path / "snapshot.json").read_text())["hash"],
        metrics=json.loads((path / "metrics.json").read_text()),
        **fields,
    )


def _check_consistent(
    version: str, donor_ids: Any, nonprofit_ids: Any, donor_embeddings: np.ndarray,
    nonprofit_embeddings: np.ndarray, gift_donors: np.ndarray, gift_nonprofits: np.ndarray,
) -> None:
    """Refuse a version whose files do not fit together (a damaged or half-copied artifact):
    served, it would fail on requests instead (an index past the embeddings, a product of
    mismatched dimensions), or on loading with errors the loader does not expect."""

    def refuse(what: str) -> None:
        raise ValueError(f"model {version} is damaged: {what}")

    for name, ids in (("donor_ids", donor_ids), ("nonprofit_ids", nonprofit_ids)):
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            refuse(f"{name}.json is not a list of ids")
    for name, table, ids in (("donor", donor_embeddings, donor_ids),
                             ("nonprofit", nonprofit_embeddings, nonprofit_ids)):
        if table.ndim != 2 or table.shape[0] != len(ids) or table.dtype.kind != "f":
            refuse(f"{name} embeddings of shape {table.shape} ({table.dtype}) for {len(ids)} ids")
    if donor_embeddings.shape[1] != nonprofit_embeddings.shape[1]:
        refuse(f"donor and nonprofit embeddings of dimensions {donor_embeddings.shape[1]} and "
               f"{nonprofit_embeddings.shape[1]}")
    for name, positions, count in (("donors", gift_donors, len(donor_ids)),
                                   ("nonprofits", gift_nonprofits, len(nonprofit_ids))):
        if positions.ndim != 1 or positions.shape != gift_donors.shape:
            refuse(f"gifts' {name} of shape {positions.shape}")
        if positions.dtype.kind not in "iu" or (
            positions.size and not 0 <= int(positions.min()) <= int(positions.max()) < count
        ):
            refuse(f"gifts' {name} are not positions among {count} ids")
