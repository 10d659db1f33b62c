"""`donor-match evaluate`: every model side by side in one harness, written as an HTML report.

One run: the cold-start split of a snapshot (graph_model.split.cold_start_split), the TF-GNN model
trained on it (its training history and TensorBoard logs kept), popularity and BPR-MF baselines,
all ranked and measured by graph_model.evaluate on the warm, cold-donor and cold-nonprofit slices,
plus the impact sweep and example explanations. Output in `out_dir`: report.html, results.json,
PNG figures, tensorboard/.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pyarrow.parquet as pq

from donor_match.domain import Cause
from donor_match.reasons import Home
from graph_model.calibration import calibrate
from graph_model.config import TrainConfig
from graph_model.evaluate import (
    MAX_K,
    Evaluation,
    bpr_mf,
    evaluate_models,
    impact_sweep,
    popularity_scores,
)
from graph_model.ranking import explain, impact_adjusted, top_k
from graph_model.snapshot import Snapshot, read_snapshot
from graph_model.split import Split, cold_start_split

MODELS = ("gnn", "bpr_mf", "popularity")
SLICES = ("warm", "cold_donors", "cold_nonprofits")
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
FIGURES = ("training.png", "recall_at_k.png", "baselines.png", "cold_start.png", "impact.png")
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class EvaluateConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    cold_donor_fraction: float = 0.1
    cold_nonprofit_fraction: float = 0.05
    mf_dim: int = 32
    mf_epochs: int = 40
    examples: int = 3  # donors whose top matches the report explains


def impact_proxy(popularity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(impact in [0, 1], under-funded mask) from training donations when no funding need is known.

    Snapshots carry no funding need, so the report uses being under-served as the impact: a
    nonprofit that received fewer gifts has more unmet need (1 - log1p(count) / log1p(max)).
    Under-funded: at or below the median count of gifts.
    """
    logged = np.log1p(np.asarray(popularity, dtype=np.float64))
    top = logged.max() if logged.size else 0.0
    impact = 1.0 - logged / top if top > 0 else np.ones_like(logged)
    return impact, popularity <= np.median(popularity)


def _scores(
    snapshot: Snapshot,
    split: Split,
    config: EvaluateConfig,
    progress: Progress | None,
    out_dir: Path,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from graph_model.train import fit  # TensorFlow only when a model is trained

    started = time.monotonic()
    trained = fit(snapshot, split, config.train, progress, out_dir / "tensorboard")
    gnn_seconds = time.monotonic() - started
    num_donors, num_nonprofits = len(snapshot.donor_ids), len(snapshot.nonprofit_ids)
    started = time.monotonic()
    mf = bpr_mf(
        split.train_pairs.stacked(),
        num_donors,
        num_nonprofits,
        dim=config.mf_dim,
        epochs=config.mf_epochs,
        seed=config.train.seed,
    )
    mf_seconds = time.monotonic() - started
    scores = {
        "gnn": trained.donor_embeddings @ trained.nonprofit_embeddings.T,
        "bpr_mf": mf.scores(),
        "popularity": popularity_scores(split.popularity(num_nonprofits), num_donors),
    }
    info = {
        "history": trained.history.to_json(),
        "seconds": {"gnn": round(gnn_seconds, 2), "bpr_mf": round(mf_seconds, 2)},
    }
    return scores, info


def _explanations(
    snapshot: Snapshot,
    snapshot_dir: Path,
    split: Split,
    scores: np.ndarray,
    impact: np.ndarray,
    count: int,
) -> list[dict[str, Any]]:
    """Top-3 matches (impact weight 0.5) of the first warm and cold test donors, with reasons."""
    regions = pq.read_table(snapshot_dir / "regions.parquet").to_pydict()
    location = {
        r: (lat, lon)
        for r, lat, lon in zip(regions["id"], regions["lat"], regions["lon"], strict=True)
    }
    causes = pq.read_table(snapshot_dir / "causes.parquet").to_pydict()
    cause_names = dict(zip(causes["id"], causes["name"], strict=True))

    def home(region: str | None) -> Home:
        return Home(region, location.get(region) if region is not None else None)

    donor_causes: dict[int, list[str]] = {}
    for donor, cause in snapshot.donor_causes:
        donor_causes.setdefault(int(donor), []).append(snapshot.cause_ids[cause])
    nonprofit_causes: dict[int, list[str]] = {}
    for nonprofit, cause in snapshot.nonprofit_causes:
        nonprofit_causes.setdefault(int(nonprofit), []).append(snapshot.cause_ids[cause])
    column = {nonprofit: i for i, nonprofit in enumerate(snapshot.nonprofit_ids)}
    given: dict[int, list[str]] = {}
    supporters: dict[str, list[str]] = {}
    for donor, nonprofit in zip(split.train_pairs.donor, split.train_pairs.nonprofit, strict=True):
        given.setdefault(int(donor), []).append(snapshot.nonprofit_ids[nonprofit])
        supporters.setdefault(snapshot.nonprofit_ids[nonprofit], []).append(
            snapshot.donor_ids[donor]
        )
    out = []
    examples = [("warm", d) for d in np.unique(split.test_pairs[:, 0])[:count]]
    examples += [("cold", d) for d in np.unique(split.cold_donor_pairs[:, 0])[:count]]
    for kind, donor in examples:
        row = np.array(scores[donor], dtype=np.float64)
        row[[column[n] for n in given.get(int(donor), [])]] = -np.inf
        stated = donor_causes.get(int(donor), [])
        gave_to = given.get(int(donor), [])
        causes = set(stated)
        for name in gave_to:
            causes.update(nonprofit_causes.get(column[name], []))
        matches = []
        for nonprofit in top_k(impact_adjusted(row, impact, 0.5), 3)[0]:
            why = explain(
                donor=snapshot.donor_ids[donor],
                donor_causes=sorted(causes),
                nonprofit_causes=[
                    Cause(c, cause_names.get(c, c))
                    for c in nonprofit_causes.get(int(nonprofit), [])
                ],
                donor_nonprofits=gave_to,
                supporters_of=supporters,
                nonprofit=snapshot.nonprofit_ids[nonprofit],
                donor_home=home(_region(snapshot, snapshot.donor_region[donor])),
                nonprofit_home=home(_region(snapshot, snapshot.nonprofit_region[nonprofit])),
            )
            matches.append(
                {
                    "nonprofit": snapshot.nonprofit_ids[nonprofit],
                    "reasons": why.summary(),
                    **asdict(why),
                }
            )
        out.append({"donor": snapshot.donor_ids[donor], "kind": kind, "matches": matches})
    return out


def run_evaluation(
    snapshot_dir: Path,
    out_dir: Path,
    config: EvaluateConfig = EvaluateConfig(),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate every model on every slice; write report.html, results.json and the PNGs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    snapshot = read_snapshot(snapshot_dir)
    num_donors, num_nonprofits = len(snapshot.donor_ids), len(snapshot.nonprofit_ids)
    split = cold_start_split(
        snapshot.donations,
        num_donors,
        num_nonprofits,
        holdout_fraction=config.train.holdout_fraction,
        cold_donor_fraction=config.cold_donor_fraction,
        cold_nonprofit_fraction=config.cold_nonprofit_fraction,
        seed=config.train.seed,
    )
    scores, info = _scores(snapshot, split, config, progress, out_dir)
    popularity = split.popularity(num_nonprofits)
    exclude = split.train_pairs.stacked()
    slices = {
        "warm": split.test_pairs,
        "cold_donors": split.cold_donor_pairs,
        "cold_nonprofits": split.cold_nonprofit_pairs,
    }
    k = config.train.k
    # Cold nonprofits are ranked among nonprofits without training donations only: with fewer
    # of them than k, "all cold ones first" would otherwise score full recall.
    cold_candidates = popularity == 0
    evaluations = evaluate_models(
        scores, slices, exclude, popularity, k=k, candidates={"cold_nonprofits": cold_candidates}
    )
    # Calibration of each model's scores into probabilities (as the API shows them), fitted on
    # half of the warm test donors and measured on the other half.
    calibration = {}
    for model, matrix in scores.items():
        platt, report = calibrate(
            matrix.__getitem__,
            split.test_pairs,
            exclude,
            num_nonprofits,
            donors=max(1, config.train.eval_donors // 2),
            k=k,
            seed=config.train.seed,
            feature="log1p" if model == "popularity" else "score",
        )
        calibration[model] = {**platt.to_json(), **report}
    impact, underfunded = impact_proxy(popularity)
    sweep = impact_sweep(
        scores["gnn"], split.test_pairs, exclude, impact, underfunded, weights=WEIGHTS, k=k
    )
    results: dict[str, Any] = {
        "snapshot_hash": snapshot.hash,
        "k": k,
        "config": asdict(config),
        "split": {
            "cutoff_ts": split.cutoff_ts,
            "train_pairs": len(split.train_pairs),
            **{f"{name}_pairs": len(pairs) for name, pairs in slices.items()},
            "held_out_donors": len(split.held_out_donors),
            "held_out_nonprofits": len(split.held_out_nonprofits),
            "cold_nonprofit_candidates": int(cold_candidates.sum()),
        },
        "metrics": {
            model: {name: e.summary() for name, e in by_slice.items()}
            for model, by_slice in evaluations.items()
        },
        "recall_curves": {
            model: {name: e.recall for name, e in by_slice.items()}
            for model, by_slice in evaluations.items()
        },
        "calibration": calibration,
        "impact_sweep": [asdict(point) for point in sweep],
        "explanations": _explanations(
            snapshot, snapshot_dir, split, scores["gnn"], impact, config.examples
        ),
        "seconds": info["seconds"],
    }
    (out_dir / "history.json").write_text(json.dumps(info["history"]) + "\n")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    _plot(out_dir, info["history"], evaluations, sweep, k)
    (out_dir / "report.html").write_text(_html(results))
    return results


def _plot(
    out_dir: Path,
    history: dict[str, Any],
    evaluations: dict[str, dict[str, Evaluation]],
    sweep: list,
    k: int,
) -> None:
    fig, loss_ax = plt.subplots(figsize=(7, 4))
    loss_ax.plot(
        [p["step"] for p in history["loss"]],
        [p["loss"] for p in history["loss"]],
        color="tab:blue",
        lw=1,
    )
    loss_ax.set(xlabel="step", ylabel="BPR loss", title="GNN training")
    recall_ax = loss_ax.twinx()
    steps = [e["step"] for e in history["evaluations"]]
    recall_ax.plot(
        steps,
        [e[f"recall@{k}"] for e in history["evaluations"]],
        "o-",
        color="tab:orange",
        label=f"warm Recall@{k}",
    )
    recall_ax.set_ylabel(f"Recall@{k}")
    recall_ax.legend(loc="lower right")
    _save(fig, out_dir / "training.png")

    fig, axes = plt.subplots(1, len(SLICES), figsize=(15, 4), sharey=True)
    for ax, name in zip(axes, SLICES, strict=True):
        for model in MODELS:
            curve = evaluations[model][name].recall
            ax.plot(range(1, len(curve) + 1), curve, label=model)
        ax.set(title=name.replace("_", " "), xlabel="K", xlim=(1, MAX_K))
    axes[0].set_ylabel("Recall@K")
    axes[0].legend()
    _save(fig, out_dir / "recall_at_k.png")

    metrics = (f"recall@{k}", f"ndcg@{k}", "mrr", f"coverage@{k}", f"popularity_bias@{k}")
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(MODELS)
    for i, model in enumerate(MODELS):
        summary = evaluations[model]["warm"].summary()
        ax.bar(
            np.arange(len(metrics)) + i * width, [summary[m] for m in metrics], width, label=model
        )
    ax.set_xticks(np.arange(len(metrics)) + width * (len(MODELS) - 1) / 2, metrics)
    ax.set(title="warm donors: models side by side")
    ax.legend()
    _save(fig, out_dir / "baselines.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    for i, model in enumerate(MODELS):
        values = [evaluations[model][name].recall[k - 1] for name in SLICES]
        ax.bar(np.arange(len(SLICES)) + i * width, values, width, label=model)
    ax.set_xticks(
        np.arange(len(SLICES)) + width * (len(MODELS) - 1) / 2,
        [s.replace("_", " ") for s in SLICES],
    )
    ax.set(ylabel=f"Recall@{k}", title="cold-start slices")
    ax.legend()
    _save(fig, out_dir / "cold_start.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    weights = [p.weight for p in sweep]
    for attribute, label in (
        ("recall", f"Recall@{k}"),
        ("coverage", f"coverage@{k}"),
        ("underfunded_share", "under-funded share of lists"),
    ):
        ax.plot(weights, [getattr(p, attribute) for p in sweep], "o-", label=label)
    ax.set(xlabel="impact weight", title="impact-aware ranking (GNN, warm donors)")
    ax.legend()
    _save(fig, out_dir / "impact.png")


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(results: dict[str, Any]) -> str:
    k = results["k"]
    columns = [f"recall@{k}", f"ndcg@{k}", "mrr", f"coverage@{k}", f"popularity_bias@{k}", "users"]
    sections = []
    for name in SLICES:
        rows = [[model] + [results["metrics"][model][name][c] for c in columns] for model in MODELS]
        sections.append(f"<h3>{name.replace('_', ' ')}</h3>" + _table(["model", *columns], rows))
    sweep = _table(
        ["impact weight", f"Recall@{k}", f"coverage@{k}", "under-funded share"],
        [
            [p["weight"], p["recall"], p["coverage"], p["underfunded_share"]]
            for p in results["impact_sweep"]
        ],
    )
    examples = "".join(
        f"<h4>{html.escape(e['donor'])} ({e['kind']} donor)</h4><ul>"
        + "".join(
            f"<li>{html.escape(m['nonprofit'])}: {html.escape('; '.join(m['reasons']))}</li>"
            for m in e["matches"]
        )
        + "</ul>"
        for e in results["explanations"]
    )
    calibration = _table(
        [
            "model",
            f"ECE@{k} calibrated",
            f"ECE@{k} min-max",
            "ECE (all pairs)",
            f"mean probability@{k}",
            f"hit rate@{k}",
        ],
        [
            [
                model,
                c[f"ece@{k}"],
                c[f"ece@{k}_minmax"],
                c["ece"],
                c[f"mean_probability@{k}"],
                c[f"hit_rate@{k}"],
            ]
            for model, c in results["calibration"].items()
        ],
    )
    split = _table(["split", "value"], [[key, value] for key, value in results["split"].items()])
    figures = "".join(f'<p><img src="{name}" alt="{name}"></p>' for name in FIGURES)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>donor-match evaluation</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
</style></head><body>
<h1>donor-match evaluation</h1>
<p>Snapshot {html.escape(results["snapshot_hash"])}. Full ranking over all nonprofits, each donor's
training nonprofits excluded. Warm: test pairs after the cutoff between nodes with training
donations. Cold donors: donors without any training donation (held out whole, or new after the
cutoff), ranked from stated causes and region only. Cold nonprofits: nonprofits without training
donations, ranked among the nonprofits without training donations only (cold_nonprofit_candidates
of them). Popularity bias: share of list entries among the top 1% most donated-to nonprofits.</p>
{split}
<h2>Models side by side</h2>{"".join(sections)}
<h2>Calibration</h2><p>Probability that a warm donor gives to a nonprofit for the first time
in the holdout period: Platt scaling of each model's score, fitted on half of the warm test donors;
expected calibration error (10 equal-mass bins) on the other half, over each donor's top {k} (what a
first page of matches shows) and over all pairs, beside the per-donor min-max rescaling the API
showed as a probability before.</p>{calibration}
<h2>Impact sweep</h2><p>Ranking by r &middot; ((1 - w) + w &middot; impact), r the per-donor
min-max normalised GNN score; impact here is being under-served (fewer training gifts) since
snapshots carry no funding need; under-funded: at or below the median number of gifts.</p>{sweep}
<h2>Why these matches (impact weight 0.5)</h2>{examples}
<h2>Figures</h2>{figures}
</body></html>
"""


def _region(snapshot: Snapshot, index: int) -> str | None:
    """A region id, or None for a donor or nonprofit without a region (index -1)."""
    return snapshot.region_ids[index] if index >= 0 else None
