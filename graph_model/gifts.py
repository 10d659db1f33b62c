"""Who gave where, in the graph a model version was trained on (TF-free: the API imports this).

A match's collaborative evidence — how many donors who gave where this donor gave also gave to
the matched nonprofit — is read from here rather than walked in the store per request: at 1M
donors the store walk (donor → nonprofits → their donors → those donors' gifts) cost 6 to 10 ms
of store time a page; these array lookups cost tens of microseconds. The count is that of the
graph the served model learned from, the evidence its scores rest on; the donor's own gifts come
fresh from the store, so a new gift brings its nonprofit's supporters in at once.
"""

from __future__ import annotations

from collections.abc import Collection, Set

import numpy as np


class Supporters:
    """The distinct donors of every nonprofit, as compressed rows (nonprofit → sorted donors)."""

    def __init__(self, donors: np.ndarray, nonprofits: np.ndarray, num_nonprofits: int) -> None:
        """donors, nonprofits: positions of each gift (repeated gifts count once)."""
        if donors.shape != nonprofits.shape:
            raise ValueError(f"{donors.shape} donors for {nonprofits.shape} nonprofits")
        # One sortable key per (nonprofit, donor): sorted, the donors of each nonprofit in order.
        span = int(donors.max()) + 1 if len(donors) else 1
        keys = np.unique(nonprofits.astype(np.int64) * span + donors)
        self._donors = (keys % span).astype(np.int32)
        self._start = np.zeros(num_nonprofits + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // span, minlength=num_nonprofits), out=self._start[1:])

    def of(self, nonprofit: int) -> np.ndarray:
        """The donors (positions, ascending) who gave to `nonprofit`."""
        return self._donors[self._start[nonprofit] : self._start[nonprofit + 1]]

    def similar_donors(
        self, supported: Set[int], candidates: list[int], donor: int | None
    ) -> list[int]:
        """For each candidate nonprofit: how many donors gave to it and to one of the
        `supported` nonprofits other than the candidate itself; `donor` (the one the matches
        are for, None when the model does not know it) never counts."""
        base = self._peers(supported, donor)
        members = [self.of(c) for c in candidates]
        # One membership test for the whole page rather than one per candidate.
        hits = np.isin(np.concatenate(members), base) if members else np.empty(0, dtype=bool)
        owner = np.repeat(np.arange(len(candidates)), [len(m) for m in members])
        counts = np.bincount(owner[hits], minlength=len(candidates)).tolist()
        for i, candidate in enumerate(candidates):
            if candidate in supported:  # its own supporters are not evidence for it
                peers = self._peers(supported - {candidate}, donor)
                counts[i] = int(np.isin(members[i], peers).sum())
        return counts

    def _peers(self, nonprofits: Collection[int], donor: int | None) -> np.ndarray:
        if not nonprofits:
            return np.empty(0, dtype=np.int32)
        peers = np.unique(np.concatenate([self.of(n) for n in nonprofits]))
        return peers[peers != donor] if donor is not None else peers
