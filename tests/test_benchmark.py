"""The public-benchmark harness: protocol on a hand-computed example, end to end on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

import graph_model  # noqa: F401  (selects tf_keras before TensorFlow loads)
from entrypoints.cli import app
from graph_model.benchmark.dataset import DatasetError, load_dataset
from graph_model.benchmark.filters import GFCF, propagate, spectral
from graph_model.benchmark.harness import BenchmarkConfig, run_benchmark
from graph_model.benchmark.metrics import evaluate_ranking

TINY_MODEL = {"rank": 8, "fit_users": 100, "folds": 2}
MODELS = [
    "popularity",
    "GF-CF (filter alone)",
    "normalised filter (initialisation)",
    "TF-GNN filter (shipped)",
]


def _write(directory: Path, train: dict[int, list[int]], test: dict[int, list[int]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, lists in (("train.txt", train), ("test.txt", test)):
        lines = [" ".join(str(x) for x in [user, *items]) for user, items in lists.items()]
        (directory / name).write_text("\n".join(lines) + "\n")
    return directory


def test_loads_the_lightgcn_format_with_empty_user_lines(tmp_path: Path) -> None:
    data = load_dataset(_write(tmp_path / "d", {0: [0, 3], 1: [1], 2: []}, {0: [1], 2: [4, 4]}))
    assert (data.num_users, data.num_items) == (3, 5)
    assert data.train.toarray().tolist()[0] == [1, 0, 0, 1, 0]
    assert data.train[2].nnz == 0
    assert data.test[2].toarray().tolist() == [[0, 0, 0, 0, 1]]  # a repeated item counts once


def test_bad_datasets_are_refused_with_the_file_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset(tmp_path / "missing")
    directory = _write(tmp_path / "d", {0: [1]}, {0: [2]})
    (directory / "test.txt").write_text("0 x\n")
    with pytest.raises(DatasetError, match=r"test\.txt:1: ids must be integers"):
        load_dataset(directory)
    (directory / "test.txt").unlink()
    with pytest.raises(DatasetError, match=r"test\.txt: missing"):
        load_dataset(directory)


def test_recall_and_ndcg_on_a_hand_computed_ranking() -> None:
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 0]], np.float32))
    test = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], np.float32))
    scores = np.array([[9, 1, 5, 4, 3], [2, 9, 8, 1, 0], [0, 0, 0, 0, 9]], np.float32)
    result = evaluate_ranking(lambda users: scores[users], train, test, k=2, chunk_size=1)
    # User 0: train item 0 (score 9) is excluded, top 2 = [2, 3], one hit at rank 2 of 2 test
    # items: recall 1/2, NDCG (1/log2 3) / (1 + 1/log2 3). User 1: items 1, 2 excluded, top 2 =
    # [0, 3], its one test item at rank 1: recall 1, NDCG 1. User 2 has no test items: skipped.
    assert result.users == 2
    assert result.recall == pytest.approx((0.5 + 1.0) / 2)
    ndcg_0 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert result.ndcg == pytest.approx((ndcg_0 + 1.0) / 2)


def test_gfcf_matches_its_dense_definition() -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 20)) < 0.3).astype(np.float32)
    train = sp.csr_matrix(dense)
    spec = spectral(train, 5)
    users = np.arange(30)
    d_u = dense.sum(1)
    d_i = dense.sum(0)
    with np.errstate(divide="ignore"):
        inv_u = np.where(d_u > 0, d_u**-0.5, 0)
        inv_i = np.where(d_i > 0, d_i**-0.5, 0)
    norm = inv_u[:, None] * dense * inv_i[None, :]
    _, _, vt = np.linalg.svd(norm)
    ideal = dense @ np.diag(inv_i) @ vt[:5].T @ vt[:5] @ np.diag(np.sqrt(d_i))
    expected = dense @ norm.T @ norm + 0.3 * ideal
    np.testing.assert_allclose(GFCF(train, spec)(users), expected, atol=1e-4)
    second = propagate(spec, train[users], 2)[1]
    np.testing.assert_allclose(second, dense @ np.linalg.matrix_power(norm.T @ norm, 2), atol=1e-4)


def test_the_model_computes_its_dense_definition() -> None:
    from graph_model.benchmark.model import ModelConfig, NormalisedFilterModel, user_signals

    rng = np.random.default_rng(1)
    dense = (rng.random((30, 20)) < 0.3).astype(np.float32)
    dense[7] = 0  # a user without items scores 0 everywhere
    train = sp.csr_matrix(dense)
    model = NormalisedFilterModel(spectral(train, 5, exponent=0.34), ModelConfig())
    model.set_parameters([1.5, 0.7, 0.2, -0.1])
    signals = user_signals(model, train, np.arange(30))
    scores = model.scores(signals.states, signals.linear).numpy()

    d_u, d_i = dense.sum(1), dense.sum(0)
    with np.errstate(divide="ignore"):
        inv_u = np.where(d_u > 0, d_u**-0.34, 0)
        inv_i = np.where(d_i > 0, d_i**-0.34, 0)
    norm = inv_u[:, None] * dense * inv_i[None, :]
    _, values, vt = np.linalg.svd(norm)
    relative = values[:5] / values[0]
    response = relative**1.5
    weighted = dense * inv_i[None, :]
    with np.errstate(divide="ignore"):
        low = (weighted @ vt[:5].T) * response @ vt[:5] * d_i**0.2
        linear = weighted @ norm.T @ norm * d_i**-0.1

    def rows(values: np.ndarray) -> np.ndarray:
        return values / np.maximum(values.sum(1, keepdims=True), 1e-12)

    expected = rows(low) + 0.7 * rows(linear)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert not scores[7].any()


def test_the_fit_follows_a_diagonal_ridge_of_the_degree_powers() -> None:
    """Where the two powers only pay together (the signals are row-normalised and added, so one
    trades against the other), the search still finds the optimum: every single-power step
    from the start is worse (fails with a search along one axis at a time)."""
    from graph_model.benchmark.model import ModelConfig, NormalisedFilterModel, fit

    train = sp.csr_matrix((np.random.default_rng(2).random((12, 9)) < 0.4).astype(np.float32))
    model = NormalisedFilterModel(spectral(train, 3, exponent=0.34), ModelConfig())

    def ridge() -> float:
        low, linear = model.degree_powers.numpy()
        return -((low - linear - 0.4) ** 2) - 10 * (low + linear) ** 2

    start = ridge()
    for single in ([0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]):
        model.degree_powers.assign(single)
        assert ridge() < start
    model.degree_powers.assign([0.0, 0.0])
    history = fit(model, ridge, ModelConfig(step=0.1))
    np.testing.assert_allclose(model.degree_powers.numpy(), [0.2, -0.2], atol=1e-6)
    assert history[0] == pytest.approx(start) and history[-1] == pytest.approx(0.0, abs=1e-9)
    assert history == sorted(history)


def test_hidden_edges_go_to_items_as_popular_as_the_kept_ones() -> None:
    from graph_model.benchmark.model import hide_edges

    rng = np.random.default_rng(2)
    # Long-tailed item popularity, as in interaction data.
    popularity = 1.0 / np.arange(1, 301) ** 0.8
    rows = [rng.choice(300, 12, replace=False, p=popularity / popularity.sum()) for _ in range(800)]
    train = sp.csr_matrix(
        (np.ones(800 * 12, np.float32), (np.repeat(np.arange(800), 12), np.concatenate(rows))),
        shape=(800, 300),
    )
    keep, hidden = hide_edges(train, 0.1, np.random.default_rng(0))

    assert keep.nnz + hidden.nnz == train.nnz
    assert not keep.multiply(hidden).nnz
    assert 0.08 < hidden.nnz / train.nnz < 0.12
    assert (np.diff(keep.indptr) > 0).all()

    def gap(keep: sp.csr_matrix, hidden: sp.csr_matrix) -> float:
        log_kept = np.log(np.maximum(np.asarray(keep.sum(axis=0)).ravel(), 1.0))
        return float(log_kept[hidden.indices].mean() - log_kept[keep.indices].mean())

    uniform = np.random.default_rng(0).random(train.nnz) < 0.1
    coo = train.tocoo()
    uniform_gap = gap(
        sp.csr_matrix((coo.data[~uniform], (coo.row[~uniform], coo.col[~uniform])), train.shape),
        sp.csr_matrix((coo.data[uniform], (coo.row[uniform], coo.col[uniform])), train.shape),
    )
    # Uniform hiding sends hidden edges to less popular items; the tilt removes that (up to the
    # step of a single edge).
    assert uniform_gap < -0.02
    assert abs(gap(keep, hidden)) < 0.005


def _clustered(tmp_path: Path, seed: int = 0) -> Path:
    """4 communities of users and items; users interact mostly within their community."""
    rng = np.random.default_rng(seed)
    users, items, groups = 160, 80, 4
    train: dict[int, list[int]] = {}
    test: dict[int, list[int]] = {}
    for user in range(users):
        group = user % groups
        own = np.arange(group, items, groups)
        chosen = np.unique(
            np.concatenate([rng.choice(own, 10, replace=False), rng.choice(items, 2)])
        )
        rng.shuffle(chosen)
        train[user], test[user] = sorted(chosen[:8].tolist()), sorted(chosen[8:].tolist())
    test[users - 1] = []  # a user without test items
    return _write(tmp_path / "clustered", train, test)


def test_harness_runs_every_model_side_by_side(tmp_path: Path) -> None:
    data = load_dataset(_clustered(tmp_path))
    messages: list[str] = []
    result = run_benchmark(
        data, BenchmarkConfig(svd_rank=8, chunk_size=64, model=TINY_MODEL), messages.append
    )
    by_name = {model.name: model for model in result.models}
    assert list(by_name) == MODELS
    assert result.evaluated_users == data.num_users - 1
    # The fit keeps only improvements on the held-out edges, starting from the initialisation.
    assert result.held_out_scores == sorted(set(result.held_out_scores))
    assert len(result.parameters) == 4
    popularity = by_name["popularity"]
    # Community structure is invisible to popularity and plain to a graph filter.
    for name in MODELS[1:]:
        assert by_name[name].recall > popularity.recall + 0.2, name
    for model in result.models:
        assert 0 <= model.ndcg <= 1 and model.fit_s >= 0 and model.eval_s > 0
    # Real counts: 159 users have train edges to hide, fewer than fit_users (100 per fold here
    # is within them, so the log says 100 for each of the 2 folds).
    assert "fitting on the hidden edges of 100, 100 users in 2 folds" in messages
    assert result.fit_users == [100, 100]
    # The fitted parameters ship only with a gain beyond the fold-to-fold noise.
    assert result.shipped in {"fitted", "initialisation"} and result.shipped_reason
    assert len(result.fold_gains) == 2
    shipped, initial = by_name["TF-GNN filter (shipped)"], by_name[MODELS[2]]
    if result.shipped == "initialisation":
        assert (shipped.recall, shipped.ndcg) == (initial.recall, initial.ndcg)
        assert result.parameters != result.fitted_parameters or result.fold_gains == [0.0, 0.0]
    assert any(message.startswith(f"shipping the {result.shipped}") for message in messages)


def test_a_gain_counts_only_beyond_the_fold_to_fold_noise() -> None:
    from graph_model.benchmark.harness import significant_gain

    assert significant_gain([0.010, 0.012, 0.011])[0]
    noisy, why = significant_gain([0.05, -0.01, 0.02])
    assert not noisy and "within the fold-to-fold noise" in why
    assert not significant_gain([-0.01, -0.02, -0.01])[0]
    assert not significant_gain([0.03])[0]  # one fold: no noise estimate, no claim
    assert significant_gain([0.01, 0.01])[0]  # no spread at all: a consistent gain


def test_a_small_dataset_logs_its_real_user_count(tmp_path: Path) -> None:
    """fit_users above the users with edges to hide: the log gives the real count."""
    data = load_dataset(_clustered(tmp_path))
    messages: list[str] = []
    result = run_benchmark(
        data,
        BenchmarkConfig(svd_rank=8, chunk_size=64, model={**TINY_MODEL, "fit_users": 16000}),
        messages.append,
    )
    logged = next(m for m in messages if m.startswith("fitting on the hidden edges of"))
    assert "16000" not in logged
    assert all(0 < users <= data.num_users for users in result.fit_users)
    assert logged == (
        f"fitting on the hidden edges of {result.fit_users[0]}, {result.fit_users[1]} users "
        "in 2 folds"
    )


def test_cli_benchmark_prints_json(tmp_path: Path) -> None:
    # In process (Typer's runner), so TensorFlow is not imported a second time.
    runner = CliRunner()
    done = runner.invoke(app, ["benchmark", "--dataset", str(_clustered(tmp_path)), "--json"])
    assert done.exit_code == 0, done.output[-2000:]
    report = json.loads(done.stdout)
    assert report["users"] == 160 and report["evaluated_users"] == 159
    assert [m["name"] for m in report["models"]] == MODELS
    missing = runner.invoke(app, ["benchmark", "--dataset", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "not a directory" in missing.stderr
