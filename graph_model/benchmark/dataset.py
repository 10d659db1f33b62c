"""Datasets in the LightGCN format: `train.txt` and `test.txt`, one line per user.

Each line is `user item item ...` (space separated, ids from 0); a user line may list no items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp


class DatasetError(ValueError):
    """A dataset directory or file that is not in the expected format."""


@dataclass(frozen=True)
class InteractionDataset:
    """Binary user x item interactions, split into train and test (CSR, float32 ones)."""

    name: str
    train: sp.csr_matrix
    test: sp.csr_matrix

    @property
    def num_users(self) -> int:
        return self.train.shape[0]

    @property
    def num_items(self) -> int:
        return self.train.shape[1]


def _read_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing (expected a LightGCN-format interaction file)")
    users: list[int] = []
    items: list[np.ndarray] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            ids = np.array(fields, dtype=np.int64)
        except ValueError as exc:
            raise DatasetError(f"{path}:{number}: ids must be integers: {line[:80]!r}") from exc
        if (ids < 0).any():
            raise DatasetError(f"{path}:{number}: ids must be >= 0: {line[:80]!r}")
        users.extend([int(ids[0])] * (len(ids) - 1))
        items.append(ids[1:])
    user_array = np.array(users, dtype=np.int64)
    item_array = np.concatenate(items) if items else np.zeros(0, np.int64)
    return user_array, item_array


def _matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.csr_matrix(
        (np.ones(len(users), np.float32), (users, items)), shape=shape, dtype=np.float32
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # a repeated (user, item) line is one interaction
    return matrix


def load_dataset(directory: Path) -> InteractionDataset:
    """Read `train.txt` and `test.txt`; users and items are counted over both files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"{directory}: not a directory (expected train.txt and test.txt)")
    train_users, train_items = _read_pairs(directory / "train.txt")
    test_users, test_items = _read_pairs(directory / "test.txt")
    if len(train_users) == 0:
        raise DatasetError(f"{directory / 'train.txt'}: no interactions")
    all_users = np.concatenate([train_users, test_users])
    all_items = np.concatenate([train_items, test_items])
    shape = (int(all_users.max()) + 1, int(all_items.max()) + 1)
    return InteractionDataset(
        name=directory.resolve().name,
        train=_matrix(train_users, train_items, shape),
        test=_matrix(test_users, test_items, shape),
    )
