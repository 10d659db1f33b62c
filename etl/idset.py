"""A set of many ids in bounded memory: 64-bit hashes kept in sorted runs (like an LSM tree).

A Python set of 10M id strings takes about a gigabyte; this takes 80 MB. Membership is by hash,
so two distinct ids collide with probability about n²/2⁶⁵ (3e-6 at 10M ids); the loader uses it
for duplicate detection and referential checks, where that risk is documented and accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class IdSet:
    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []  # sorted, unique int64 arrays; sizes decrease

    @staticmethod
    def hashes(ids: Sequence[str]) -> np.ndarray:
        # str hashes are stable within one process, which is all a load needs.
        return np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            position = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            found |= run[position] == hashes
        return found

    def add(self, hashes: np.ndarray) -> None:
        fresh = np.unique(hashes)
        if self._runs:
            fresh = fresh[~self.contains(fresh)]
        if len(fresh) == 0:
            return
        self._runs.append(fresh)
        # Merge runs of similar size, so there are O(log n) runs to search. Runs are disjoint
        # (only new hashes are added), so a merge is a concatenation sorted in place: no
        # de-duplication and no temporary copies beyond the merged run itself.
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newest, older = self._runs.pop(), self._runs.pop()
            merged = np.concatenate((older, newest))
            del newest, older
            merged.sort()
            self._runs.append(merged)


class IdMap:
    """Id hashes -> a pair of int64 payloads, in sorted runs like `IdSet` (16 more bytes an id).

    The loader keeps, per accepted id, a hash of the row's values and where the row was read:
    enough to tell a repeated row (a duplicate) from a different one (a conflict), and to name
    the line it repeats, without holding the rows.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted keys, (n, 2) payloads)

    def get(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found per hash, payload per hash; rows of zeros where not found)."""
        found = np.zeros(len(hashes), dtype=bool)
        payload = np.zeros((len(hashes), 2), dtype=np.int64)
        for keys, values in self._runs:
            position = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
            hit = keys[position] == hashes
            payload[hit] = values[position[hit]]
            found |= hit
        return found, payload

    def add(self, hashes: np.ndarray, payload: np.ndarray) -> None:
        """Add hashes not yet present (the caller checks), distinct, with their payloads."""
        if len(hashes) == 0:
            return
        order = np.argsort(hashes, kind="stable")
        self._runs.append((hashes[order], payload.reshape(-1, 2)[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (new_keys, new_values), (old_keys, old_values) = self._runs.pop(), self._runs.pop()
            keys = np.concatenate((old_keys, new_keys))
            order = np.argsort(keys, kind="stable")
            self._runs.append((keys[order], np.concatenate((old_values, new_values))[order]))
