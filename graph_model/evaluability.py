"""Whether a training run's holdout can judge its model (TF-free: the registry reads it too).

A temporal split of a small or young graph may leave no test pairs, or a handful of test donors
whose recall is noise. Such a model still trains and is registered, as unevaluated: the gate
refuses it and only `donor-match model promote --force` serves it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from graph_model.config import TrainConfig

# Fewer test donors than this and Recall@k moves by more than its own size from one donor to the
# next: the holdout cannot tell a model from popularity.
DEFAULT_MIN_TEST_DONORS = TrainConfig.min_test_donors


@dataclass(frozen=True)
class Evaluability:
    possible: bool
    reason: str | None  # why not, with the numbers
    test_donors: int
    test_pairs: int
    min_test_donors: int

    def to_json(self) -> dict[str, object]:
        return {"status": "evaluated" if self.possible else "unevaluated", **asdict(self)}


def assess(test_pairs: np.ndarray, min_test_donors: int, *, train_donations: int,
           test_donations: int, split_problem: str | None = None) -> Evaluability:
    """Judge a split by its warm test pairs (donor, nonprofit); `split_problem` says why there
    is no temporal split at all (e.g. every donation has the same timestamp)."""
    pairs = np.asarray(test_pairs).reshape(-1, 2)
    donors = len(np.unique(pairs[:, 0]))
    reason = None
    if split_problem is not None:
        reason = f"no temporal split is possible: {split_problem}"
    elif len(pairs) == 0:
        reason = (f"the temporal split leaves no test pairs: {test_donations} donations after "
                  f"the cutoff, none a new pair of a donor and a nonprofit that both gave or "
                  f"received before it ({train_donations} donations)")
    elif donors < min_test_donors:
        reason = (f"the temporal split leaves {donors} test donors ({len(pairs)} test pairs); "
                  f"at least {min_test_donors} are needed to judge a model")
    return Evaluability(reason is None, reason, donors, len(pairs), min_test_donors)


def unevaluated_reason(metrics: dict) -> str | None:
    """Why a version's holdout could not evaluate it, as its metrics record; None if it did."""
    evaluation = metrics.get("evaluation") or {}
    if evaluation.get("status") == "unevaluated":
        return str(evaluation.get("reason"))
    return None


def judge_metrics(metrics: dict, min_test_donors: int) -> list[str]:
    """The gate's reasons a version's recorded evaluation cannot judge it (empty: it can)."""
    if (reason := unevaluated_reason(metrics)) is not None:
        return [f"it is unevaluated: {reason}"]
    test = metrics.get("test") or {}
    pairs, donors = test.get("pairs"), test.get("donors")
    if not isinstance(pairs, int) or not isinstance(donors, int):
        return ["metrics.json does not say how many test pairs and donors judged it"]
    if pairs == 0:
        return ["its evaluation has no test pairs: nothing to judge it by"]
    if donors < min_test_donors:
        return [f"its evaluation has {donors} test donors; at least {min_test_donors} are "
                f"needed to judge it"]
    return []
