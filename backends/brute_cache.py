"""BruteKVCache: the O(t) scan every hard-max head could do, kept as the yardstick.

It stores every key and value and scores them all on each query, exactly as the machine
semantics read (``q0*k0 + q1*k1`` per key, maximisers = scores equal to the maximum, sums
in time order).  It needs no exactness contract: it *is* the float64 semantics, so it checks
:class:`~rasp2d.backends.hull_cache.HullKVCache` and gives the speed baseline.  The scan
itself is :func:`rasp2d.backends.hull_kernels.brute_query` (shared with the jitted step).
"""

from __future__ import annotations

import numpy as np

from rasp2d.backends.hull_cache import tie_code
from rasp2d.backends.hull_kernels import brute_query
from rasp2d.backends.model_file import LATEST


class BruteKVCache:
    """Same interface as :class:`~rasp2d.backends.hull_cache.HullKVCache`, O(t) per query."""

    def __init__(self, tie: int | str = LATEST, capacity: int = 64):
        self.tie = tie_code(tie)
        self._keys = np.zeros((1, 2, capacity))  # component-major, as brute_query wants
        self._values = np.zeros((1, 2, capacity))
        self._n = 0
        self._last_time = -1

    def insert(self, key, value, time: int | None = None) -> None:
        t = self._last_time + 1 if time is None else int(time)
        if t <= self._last_time:
            raise ValueError(f"insertion time {t} is not after the previous one ({self._last_time})")
        if self._n == self._keys.shape[2]:
            self._keys = np.concatenate([self._keys, np.zeros_like(self._keys)], axis=2)
            self._values = np.concatenate([self._values, np.zeros_like(self._values)], axis=2)
        self._keys[0, :, self._n] = (float(key[0]), float(key[1]))
        self._values[0, :, self._n] = (float(value[0]), float(value[1]))
        self._n += 1
        self._last_time = t  # insertion order is time order, so the index stands for time

    def query(self, direction) -> tuple[float, float]:
        if self._n == 0:
            raise ValueError("query on an empty cache: insert at least one key first")
        o0, o1 = brute_query(self._keys, self._values, 0, self._n,
                             float(direction[0]), float(direction[1]), self.tie)
        return float(o0), float(o1)

    def __len__(self) -> int:
        return self._n

    def nbytes(self) -> int:
        """Bytes of stored entries (key and value: 4 float64 per insertion)."""
        return self._n * 4 * 8
