"""The model registry: versions on top of the artifact directories, promotion through a quality
gate, and rollback along the promotion history (TF-free and MLflow-free: the API uses it).

A version is a directory under the artifacts root (graph_model.artifacts); CURRENT names the one
the API serves and `promotions.jsonl` records every change of CURRENT. Promotion and rollback
move CURRENT; every API process follows it within seconds (donor_match.services.served_model).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graph_model.artifacts import (
    ModelArtifact,
    clear_current,
    current_version,
    load_artifact,
    read_history,
    registry_lock,
    set_current,
)
from graph_model.evaluability import DEFAULT_MIN_TEST_DONORS, judge_metrics

# The headline metrics the gate compares; both are in every version's metrics.json.
GATE_METRICS = ("recall", "ndcg")


class RegistryError(Exception):
    """A registry request that cannot be carried out (unknown version, nothing to roll back)."""


class UnknownVersionError(RegistryError):
    pass


@dataclass(frozen=True)
class GateReport:
    version: str
    reasons: list[str]  # why the version may not be served; empty when it passed
    compared_with: str | None  # the production version it was measured against, if any
    figures: dict[str, float] = field(default_factory=dict)
    # Among the reasons, those that even `promote --force` does not override (it does not load).
    blocking: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "passed": self.passed,
            "reasons": self.reasons,
            "compared_with": self.compared_with,
            "figures": self.figures,
        }


class GateFailedError(RegistryError):
    def __init__(self, report: GateReport) -> None:
        super().__init__(
            f"model {report.version} fails the quality gate: " + "; ".join(report.reasons)
        )
        self.report = report


@dataclass(frozen=True)
class VersionInfo:
    version: str
    snapshot_hash: str | None
    metrics: dict[str, Any]
    serving: bool
    promoted: bool  # served at some time (bootstrap, promotion or rollback)

    def headline(self, name: str, source: str = "model") -> float | None:
        """`recall` or `ndcg` at the version's own k, for `model` or `popularity`."""
        k = self.metrics.get("k")
        value = self.metrics.get(source, {}).get(f"{name}@{k}")
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class Change:
    action: str  # promote, rollback, or unchanged
    version: str
    previous: str | None
    gate: GateReport | None = None


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


class Registry:
    def __init__(
        self,
        root: Path,
        tolerance: float = 0.05,
        loader: Callable[[Path], ModelArtifact] = load_artifact,
        min_test_donors: int = DEFAULT_MIN_TEST_DONORS,
    ) -> None:
        """`tolerance`: how far (relative) a candidate's Recall/NDCG may fall below the
        production model's before promotion is refused. `loader` is the API's artifact loader,
        so a version that passes the gate is one the API can serve. `min_test_donors`: fewer
        and its evaluation cannot judge a version."""
        if not 0 <= tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
        self.root = root
        self.tolerance = tolerance
        self.min_test_donors = min_test_donors
        self._loader = loader

    def current(self) -> str | None:
        return current_version(self.root)

    def versions(self) -> list[VersionInfo]:
        """Every complete version, oldest first (version names start with their UTC time)."""
        if not self.root.is_dir():
            return []
        served = self.current()
        ever = {event["version"] for event in read_history(self.root)}
        found = []
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or not (path / "metrics.json").is_file():
                continue  # staging directories, CURRENT, the history, the lock
            found.append(self._info(path, served, ever))
        return found

    def version(self, version: str) -> VersionInfo:
        path = self.root / version
        if "/" in version or version.startswith(".") or not (path / "metrics.json").is_file():
            raise UnknownVersionError(f"no model version {version!r} under {self.root}")
        return self._info(path, self.current(), {e["version"] for e in read_history(self.root)})

    def _info(self, path: Path, served: str | None, ever: set[str]) -> VersionInfo:
        try:
            snapshot_hash = _read_json(path / "snapshot.json")["hash"]
        except (OSError, ValueError, KeyError):
            snapshot_hash = None
        try:
            metrics = _read_json(path / "metrics.json")
        except (OSError, ValueError):
            metrics = {}
        return VersionInfo(
            path.name,
            snapshot_hash,
            metrics,
            path.name == served,
            path.name in ever or path.name == served,
        )

    def find(self, snapshot_hash: str, config: dict[str, Any]) -> VersionInfo | None:
        """The newest version trained on this snapshot with this configuration, if any."""
        config = json.loads(json.dumps(config))  # as metrics.json holds it (tuples are lists)
        matches = [
            v
            for v in self.versions()
            if v.snapshot_hash == snapshot_hash and v.metrics.get("config") == config
        ]
        return matches[-1] if matches else None

    def gate(self, version: str) -> GateReport:
        """Check a version: it loads as the API loads it, its evaluation can judge it (test pairs
        and enough test donors), it beats the popularity baseline of its own evaluation, and is
        not worse than the production model beyond the tolerance."""
        info = self.version(version)
        figures: dict[str, float] = {}
        try:
            artifact = self._loader(self.root / version)
            blocking = _unservable(artifact)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            blocking = [f"its artifacts do not load ({type(exc).__name__}: {exc})"]
        reasons = list(blocking)
        unjudged = judge_metrics(info.metrics, self.min_test_donors)
        reasons += unjudged
        for name in GATE_METRICS if not unjudged else ():
            model, popularity = info.headline(name), info.headline(name, "popularity")
            if model is None or popularity is None:
                reasons.append(f"metrics.json has no model and popularity {name}@k")
                continue
            figures[f"{name}@{info.metrics['k']}"] = model
            figures[f"popularity_{name}@{info.metrics['k']}"] = popularity
            if model < popularity:
                reasons.append(
                    f"{name}@{info.metrics['k']} {model:.4f} is worse than the popularity "
                    f"baseline's {popularity:.4f}"
                )
        production = self.current()
        compared_with = None
        if (not unjudged and production is not None and production != version
                and (self.root / production).is_dir()):
            compared_with = production
            # The two were evaluated on their own snapshots' holdouts, so the comparison is
            # approximate; the tolerance absorbs that noise and stops real regressions.
            reasons += self._regressions(info, self.version(production), figures)
        return GateReport(version, reasons, compared_with, figures, blocking)

    def _regressions(
        self, candidate: VersionInfo, production: VersionInfo, figures: dict[str, float]
    ) -> list[str]:
        reasons = []
        for name in GATE_METRICS:
            new, old = candidate.headline(name), production.headline(name)
            if new is None or old is None:
                continue  # a missing candidate figure is reported above
            figures[f"production_{name}@{production.metrics.get('k')}"] = old
            floor = old * (1 - self.tolerance)
            if new < floor:
                reasons.append(
                    f"{name} {new:.4f} is worse than production {production.version}'s "
                    f"{old:.4f} beyond the {self.tolerance:.0%} tolerance (floor {floor:.4f})"
                )
        return reasons

    def promote(self, version: str, *, force: bool = False) -> Change:
        """Serve `version` if it passes the gate; raises GateFailedError (nothing changes) if
        not. `force` serves it despite the gate's judgement (an unevaluated model, say), never
        one whose artifacts do not load; the history records it as force-promote. Promoting
        the version already served changes nothing."""
        with registry_lock(self.root):
            previous = self.current()
            if previous == version:
                self.version(version)
                return Change("unchanged", version, previous)
            report = self.gate(version)
            if not report.passed and (not force or report.blocking):
                raise GateFailedError(report)
            set_current(self.root, version,
                        action="promote" if report.passed else "force-promote")
            return Change("promote", version, previous, report)

    def withdraw(self, version: str) -> bool:
        """Stop serving a version that was served only because it was the first (bootstrap)
        and then failed its gate; True if CURRENT was removed."""
        with registry_lock(self.root):
            history = read_history(self.root)
            if (
                self.current() != version
                or len(history) != 1
                or history[0]["action"] != "bootstrap"
            ):
                return False
            clear_current(self.root, version)
            return True

    def served_stack(self) -> list[str]:
        """The promotion history as a stack: promotions push, rollbacks and withdrawals pop."""
        stack: list[str] = []
        for event in read_history(self.root):
            if event["action"] in {"rollback", "withdraw"}:
                if stack:
                    stack.pop()
            else:
                if not stack and event.get("previous"):
                    # CURRENT was set before there was a history (by hand, or an older release).
                    stack.append(event["previous"])
                stack.append(event["version"])
        return stack

    def rollback(self) -> Change:
        """Serve the version promoted before the current one again (it must still load)."""
        with registry_lock(self.root):
            stack = self.served_stack()
            current = self.current()
            if len(stack) < 2 or stack[-1] != current:
                raise RegistryError(
                    f"nothing to roll back to: {current or 'no version'} is served and the "
                    f"promotion history ({self.root / 'promotions.jsonl'}) has no earlier one"
                )
            target = stack[-2]
            try:
                _raise_unservable(self._loader(self.root / target))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise RegistryError(
                    f"cannot roll back to {target}: it does not load: {exc}"
                ) from exc
            set_current(self.root, target, action="rollback")
            return Change("rollback", target, current)


def _unservable(artifact: ModelArtifact) -> list[str]:
    """What would make the API serve nonsense from an artifact that did load."""
    problems = []
    donors, nonprofits = artifact.donor_embeddings, artifact.nonprofit_embeddings
    if donors.shape[0] != len(artifact.donor_ids):
        problems.append(f"{donors.shape[0]} donor embeddings for {len(artifact.donor_ids)} ids")
    if nonprofits.shape[0] != len(artifact.nonprofit_ids):
        problems.append(
            f"{nonprofits.shape[0]} nonprofit embeddings for {len(artifact.nonprofit_ids)} ids"
        )
    if donors.ndim != 2 or nonprofits.ndim != 2 or donors.shape[1] != nonprofits.shape[1]:
        problems.append("donor and nonprofit embeddings differ in dimension")
    if not (np.isfinite(donors).all() and np.isfinite(nonprofits).all()):
        problems.append("embeddings contain NaN or infinity (training diverged)")
    return problems


def _raise_unservable(artifact: ModelArtifact) -> None:
    problems = _unservable(artifact)
    if problems:
        raise ValueError("; ".join(problems))
