"""Drift monitoring: the latest snapshot against the served model's training snapshot (PSI per
feature, model scores included) and the online feedback rate, as Prometheus metrics.

The alert rules (deploy/prometheus/alerts.yml) read `donor_match_drift_psi{feature}` and
`donor_match_feedback_rate{action}`, pushed under job `donor-match-drift` (the Pushgateway adds
`push_time_seconds`, which `DriftReportStale` watches).

Feedback rate = FEEDBACK events of an action in the window / matches served in the window, both
from the graph: the API writes FEEDBACK relationships (neo4j/api/record_feedback.cypher) and
hourly served-match counts (donor_match/services/served_matches.py). The batch job reaches only
the store and the Pushgateway, and the graph outlives API restarts, which in-process Prometheus
counters do not; `donor_match_matches_served_total` on /metrics remains the live view.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prometheus_client import CollectorRegistry, Gauge, generate_latest, push_to_gateway

from graph_model.artifacts import ModelArtifact, current_artifact_dir, load_artifact
from graph_store import GraphStore, statement

JOB = "donor-match-drift"
BINS = 10
# Empty bins get this share, so PSI stays finite when a category or range appears or vanishes.
EPSILON = 1e-4
# Scores are computed for at most this many donations per snapshot (a uniform sample).
MAX_SCORED = 50_000
FEEDBACK_ACTIONS = ("clicked", "donated", "dismissed")


class DriftError(Exception):
    """Drift cannot be computed (no model served, its training snapshot is gone)."""


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (counts or shares):
    sum over bins of (actual - expected) * ln(actual / expected)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e = np.maximum(e / max(e.sum(), 1e-12), EPSILON)
    a = np.maximum(a / max(a.sum(), 1e-12), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> float:
    """PSI over the reference's quantile bins (so each holds about 1/bins of the reference)."""
    if len(reference) == 0 or len(current) == 0:
        return 0.0 if len(reference) == len(current) else float("inf")
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    return psi(np.histogram(reference, edges)[0], np.histogram(current, edges)[0])


def categorical_psi(reference: list[str], current: list[str]) -> float:
    categories = sorted(set(reference) | set(current))
    index = {c: i for i, c in enumerate(categories)}

    def counts(values: list[str]) -> np.ndarray:
        return np.bincount([index[v] for v in values], minlength=len(categories))

    return psi(counts(reference), counts(current))


@dataclass(frozen=True)
class Features:
    """What drift is measured on, from one snapshot (and the served model for scores)."""

    donation_amount: np.ndarray
    donations_per_donor: np.ndarray
    nonprofit_degree: np.ndarray  # donations per nonprofit
    donor_region: list[str]
    donor_cause: list[str]  # one entry per stated donor interest
    score: np.ndarray  # the served model's score of the snapshot's donations


def features(snapshot_dir: Path, model: ModelArtifact, seed: int = 0) -> Features:
    def read(name: str, columns: list[str]) -> dict[str, list[Any]]:
        return pq.read_table(snapshot_dir / f"{name}.parquet", columns=columns).to_pydict()

    donations = pq.read_table(
        snapshot_dir / "donations.parquet", columns=["donor_id", "nonprofit_id", "amount"]
    )
    donors = read("donors", ["id", "region_id"])
    nonprofits = read("nonprofits", ["id"])
    per_donor = pc.value_counts(donations["donor_id"]).field("counts").to_numpy()
    per_nonprofit = dict(
        zip(
            *[
                pc.value_counts(donations["nonprofit_id"]).field(f).to_pylist()
                for f in ("values", "counts")
            ],
            strict=True,
        )
    )
    # Donors and nonprofits without donations count as 0: their share is part of the shift.
    donations_per_donor = np.concatenate(
        [per_donor, np.zeros(max(len(donors["id"]) - len(per_donor), 0))]
    )
    degree = np.array([per_nonprofit.get(n, 0) for n in nonprofits["id"]], dtype=np.float64)

    donor_row = {d: i for i, d in enumerate(model.donor_ids)}
    nonprofit_row = {n: i for i, n in enumerate(model.nonprofit_ids)}
    pairs = [
        (donor_row.get(d), nonprofit_row.get(n))
        for d, n in zip(
            donations["donor_id"].to_pylist(), donations["nonprofit_id"].to_pylist(), strict=True
        )
    ]
    known = np.array(
        [(d, n) for d, n in pairs if d is not None and n is not None], dtype=np.int64
    ).reshape(-1, 2)
    if len(known) > MAX_SCORED:
        known = known[np.random.default_rng(seed).choice(len(known), MAX_SCORED, replace=False)]
    score = np.einsum(
        "ij,ij->i", model.donor_embeddings[known[:, 0]], model.nonprofit_embeddings[known[:, 1]]
    )
    return Features(
        donation_amount=donations["amount"].to_numpy(zero_copy_only=False).astype(np.float64),
        donations_per_donor=donations_per_donor.astype(np.float64),
        nonprofit_degree=degree,
        donor_region=[r or "" for r in donors["region_id"]],
        donor_cause=[c or "" for c in read("donor_causes", ["cause_id"])["cause_id"]],
        score=score.astype(np.float64),
    )


def feature_psi(reference: Features, current: Features) -> dict[str, float]:
    return {
        "donation_amount": numeric_psi(reference.donation_amount, current.donation_amount),
        "donations_per_donor": numeric_psi(
            reference.donations_per_donor, current.donations_per_donor
        ),
        "nonprofit_degree": numeric_psi(reference.nonprofit_degree, current.nonprofit_degree),
        "donor_region": categorical_psi(reference.donor_region, current.donor_region),
        "donor_cause": categorical_psi(reference.donor_cause, current.donor_cause),
        "score": numeric_psi(reference.score, current.score),
    }


@dataclass(frozen=True)
class Feedback:
    window_s: int
    matches_served: int
    events: dict[str, int]  # by action, lower case

    @property
    def rates(self) -> dict[str, float]:
        """Events per match served; empty when nothing was served (a rate of 0 would be a
        false FeedbackRateDrop, an absent series is only stale)."""
        if self.matches_served <= 0:
            return {}
        return {a: self.events.get(a, 0) / self.matches_served for a in FEEDBACK_ACTIONS}


def feedback(store: GraphStore, window_s: int, now: float | None = None) -> Feedback:
    now = time.time() if now is None else now
    since = int(now) - window_s
    # Served counts are kept per hour; start at the hour holding `since`, as feedback does.
    since -= since % 3600
    served = store.read(statement("drift/matches_served"), {"since": since})
    events = store.read(statement("drift/feedback_counts"), {"since": since})
    return Feedback(
        window_s=window_s,
        matches_served=int(served[0]["served"]) if served else 0,
        events={str(row["action"]).lower(): int(row["events"]) for row in events},
    )


@dataclass(frozen=True)
class DriftReport:
    model_version: str
    reference_snapshot: str
    snapshot: str
    psi: dict[str, float]
    feedback: Feedback

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["feedback"]["rates"] = self.feedback.rates
        return out


def drift_report(
    snapshot_dir: Path, models_dir: Path, snapshots_root: Path, store: GraphStore, window_s: int
) -> DriftReport:
    """Compare `snapshot_dir` with the served model's training snapshot under `snapshots_root`."""
    model_dir = current_artifact_dir(models_dir)
    if model_dir is None:
        raise DriftError(f"no model is served from {models_dir}: nothing to compare against")
    model = load_artifact(model_dir)
    # export_snapshot names snapshot directories by the first 16 hex digits of their hash.
    reference_dir = snapshots_root / model.snapshot_hash[:16]
    if not (reference_dir / "snapshot.json").is_file():
        raise DriftError(
            f"the served model {model.version} was trained on snapshot "
            f"{model.snapshot_hash[:16]}, which is not under {snapshots_root} any more"
        )
    current_hash = json.loads((snapshot_dir / "snapshot.json").read_text())["hash"]
    return DriftReport(
        model_version=model.version,
        reference_snapshot=model.snapshot_hash,
        snapshot=current_hash,
        psi=feature_psi(features(reference_dir, model), features(snapshot_dir, model)),
        feedback=feedback(store, window_s),
    )


def metrics_registry(report: DriftReport) -> CollectorRegistry:
    registry = CollectorRegistry()
    drift = Gauge(
        "donor_match_drift_psi",
        "PSI of a feature: latest snapshot against the served model's training snapshot.",
        ["feature"],
        registry=registry,
    )
    for name, value in report.psi.items():
        drift.labels(name).set(value)
    rate = Gauge(
        "donor_match_feedback_rate",
        "Feedback events per match served in the window.",
        ["action"],
        registry=registry,
    )
    for action, value in report.feedback.rates.items():
        rate.labels(action).set(value)
    Gauge(
        "donor_match_feedback_matches_served",
        "Matches served in the feedback window.",
        registry=registry,
    ).set(report.feedback.matches_served)
    return registry


def export(report: DriftReport, pushgateway_url: str | None) -> str:
    """Push the metrics when a Pushgateway is configured; returns them in the text format."""
    registry = metrics_registry(report)
    if pushgateway_url:
        push_to_gateway(pushgateway_url, job=JOB, registry=registry, timeout=30)
    return generate_latest(registry).decode()
