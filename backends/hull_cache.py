"""HullKVCache: one hard-max attention head's keys and values as a 2D convex hull.

With 2-dimensional keys the maximisers of ``q . k`` form one face of the keys' convex hull,
so a query is a search along a hull chain: O(log h + k) for h distinct hull points and k
distinct maximising points, instead of the O(t) scan of :class:`BruteKVCache`.  Ties follow
the machine semantics exactly: maximisers are the keys whose score *equals* the maximum;
``latest`` returns the value of the most recent one, ``average`` the mean of all of them
(sums kept exactly, per distinct point, so repeated keys cost O(1)).

The algorithms and their exactness contract are documented in
:mod:`rasp2d.backends.hull_kernels`; this module owns the growable pool arrays and gives
single heads a Python API (used by tests and by anyone who wants one cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasp2d.backends import hull_kernels as hk
from rasp2d.backends.model_file import AVERAGE, LATEST, TIE_NAMES


class ExactnessError(ValueError):
    """The inputs break the exact-integer contract under which the hull cache is exact."""


ERROR_TEXT = {
    hk.ERR_KEY_NOT_INTEGER: "a key coordinate is not an integer (the hull cache needs integer "
                            "keys, which the compiler always emits)",
    hk.ERR_KEY_RANGE: "a key coordinate exceeds 2^52 in magnitude; keep keys within +-2^52",
    hk.ERR_QUERY_NOT_INTEGER: "a query coordinate is not an integer",
    hk.ERR_SCORE_RANGE: "|q_x|*max|k_x| + |q_y|*max|k_y| reaches 2^53, so scores q.k would not "
                        "be exact float64 integers; shrink the key or query range",
    hk.ERR_VALUE_NOT_INTEGER: "an `average` head got a non-integer value; averages are exact "
                              "only over integer values",
    hk.ERR_SUM_RANGE: "an `average` head's running sum of |value| reaches 2^53, so the sum "
                      "would no longer be exact",
    hk.ERR_CAPACITY: "internal error: the hull pool ran out of rows (reserve() was not called)",
}


def tie_code(tie: int | str) -> int:
    if isinstance(tie, str):
        for code, name in TIE_NAMES.items():
            if name == tie:
                return code
        raise ValueError(f"unknown tie rule {tie!r}; use 'latest' or 'average'")
    if tie not in (LATEST, AVERAGE):
        raise ValueError(f"unknown tie rule {tie!r}; use LATEST ({LATEST}) or AVERAGE ({AVERAGE})")
    return int(tie)


class HullPool:
    """Pool arrays shared by ``n_heads`` hull heads, grown by doubling before they fill up."""

    def __init__(self, ties, node_capacity: int = 64, point_capacity: int = 32):
        ties = [tie_code(t) for t in ties]
        self.n_heads = len(ties)
        (self.nodes, self.points, self.point_info, self.head_i, self.head_f,
         self.meta) = hk.new_pool_arrays(max(self.n_heads, 1), max(node_capacity, 2),
                                         max(point_capacity, 1))
        for g, tie in enumerate(ties):
            hk.init_head(self.head_i, self.head_f, g, tie)

    def reserve(self, heads: int | None = None) -> None:
        """Make room for one insertion into each of ``heads`` heads (default: all)."""
        n = self.n_heads if heads is None else heads
        meta = self.meta
        need_nodes = int(meta[hk.NODE_HW]) + 2 * n
        if need_nodes > self.nodes.shape[0]:
            self.nodes = _grown(self.nodes, need_nodes)
        need_points = int(meta[hk.POINT_HW]) + n
        if need_points > self.points.shape[0]:
            self.points = _grown(self.points, need_points)
            self.point_info = _grown(self.point_info, need_points)

    @property
    def live_nodes(self) -> int:
        return int(self.meta[hk.NODES_LIVE])

    @property
    def live_points(self) -> int:
        return int(self.meta[hk.POINTS_LIVE])

    def live_bytes(self) -> int:
        """Bytes of pool rows in use (a node is 7 int32, a point 5 float64 + 2 int32)."""
        return (self.live_nodes * self.nodes.itemsize * hk.NODE_COLS
                + self.live_points * (self.points.itemsize * hk.POINT_COLS
                                      + self.point_info.itemsize * 2))

    def allocated_bytes(self) -> int:
        return sum(a.nbytes for a in (self.nodes, self.points, self.point_info, self.head_i,
                                      self.head_f, self.meta))


def _grown(a: np.ndarray, need: int) -> np.ndarray:
    """A copy of ``a`` with at least ``need`` rows (doubling); rows past the old end are
    uninitialised: the kernels write every field of a row when they allocate it."""
    out = np.empty((max(need, 2 * a.shape[0]),) + a.shape[1:], dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


def raise_for(code: int, where: str = "") -> None:
    if code != hk.OK:
        raise ExactnessError(f"{where}{ERROR_TEXT.get(code, f'error code {code}')}")


@dataclass(frozen=True)
class HeadStats:
    inserts: int
    hull_points: int  # distinct points on the hull (those a non-zero query can return)


class HullKVCache:
    """One head's cache: ``insert(key, value)``, then ``query(direction)`` -> value.

    ``time`` orders insertions for ``latest`` ties; it defaults to the insertion count and
    must increase strictly.  Keys, queries (and ``average`` values) must be integers within
    the limits of :mod:`rasp2d.backends.hull_kernels`; otherwise :class:`ExactnessError`.
    """

    def __init__(self, tie: int | str = LATEST):
        self.tie = tie_code(tie)
        self._pool = HullPool([self.tie])
        self._last_time = -1

    def insert(self, key, value, time: int | None = None) -> None:
        t = self._last_time + 1 if time is None else int(time)
        if t <= self._last_time:
            raise ValueError(f"insertion time {t} is not after the previous one ({self._last_time})")
        pool = self._pool
        pool.reserve(1)
        code = hk.hull_insert(pool.nodes, pool.points, pool.point_info, pool.head_i, pool.head_f,
                              pool.meta, 0, float(key[0]), float(key[1]), float(value[0]),
                              float(value[1]), float(t))
        raise_for(code)
        self._last_time = t

    def query(self, direction) -> tuple[float, float]:
        if self._last_time < 0:
            raise ValueError("query on an empty cache: insert at least one key first")
        pool = self._pool
        o0, o1, code = hk.hull_query(pool.nodes, pool.points, pool.head_i, pool.head_f, 0,
                                     float(direction[0]), float(direction[1]))
        raise_for(code)
        return float(o0), float(o1)

    def __len__(self) -> int:
        return int(self._pool.head_f[0, hk.N_INSERTS])

    def stats(self) -> HeadStats:
        return HeadStats(len(self), self._pool.live_points)

    def nbytes(self) -> int:
        return self._pool.live_bytes()
