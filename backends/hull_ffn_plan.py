"""FFN units regrouped so a decoding step touches only the units that can be non-zero.

Compiled FFN layers are mostly piecewise-linear functions of one scalar: a staircase
``x // 256`` is a thousand units ``relu(s - 256 k)`` of the same ``s``, a one-hot decoder is
hats ``relu(s - k + 1) - 2 relu(s - k) + relu(s - k - 1)``, a selector is ``relu(flag - c) * w``.
Evaluating every unit's gate per token is what made the WASM machine slow (~8K units, ~1K
active).  Units whose gates share one *direction* ``r`` (the non-constant part of the gate
row, up to an integer factor) form a group: ``gate_u = a_u * s + c_u`` with ``s = r . x``, so
for an integer ``s`` the set of active units (``gate > 0``) changes only at integer
breakpoints, and one binary search over them finds it.

Group kinds:

* ``TABLE``: every unit's value is a constant.  Between two breakpoints the group's whole
  output is affine in ``s``: ``delta[o] += s * A + B`` for a few entries ``(o, A, B)`` per
  interval, precomputed with exact integer arithmetic.
* ``SELECT``: values read the stream.  Units with ``a > 0`` are active on a prefix of their
  list sorted by threshold, units with ``a < 0`` on a suffix of theirs; only those are
  evaluated (``gate = a s + c``, the value row's dot, the out row's scatter).
* ``CHANNEL``: a SELECT group whose units share a few value rows ("channels"): the
  WASM machine's look-ups by address are hats ``relu(s-k+1) - 2 relu(s-k) + relu(s-k-1)``
  times a stream value, hundreds of units of which a third are active at any ``s`` and
  cancel.  Per channel and output dimension the summed gates are one piecewise-linear
  function of ``s``, so between two breakpoints the group adds ``(s A + B) * (value . x)``
  for a few entries ``(channel, dim, A, B)``.  That equals the unit-by-unit sum when every
  gate, value, product and partial sum the units would form is an integer below 2^53: the
  step checks that every dimension the values read is an integer, and with their largest
  magnitude ``m`` that ``(P |s| + Q) m < 2^52`` (``P``, ``Q`` per interval: the largest
  ``sum |w a| |v|_1`` and ``sum |w c| |v|_1`` over one output's active units; half of 2^53
  covers the check's own rounding), else it runs the SELECT path.
* ``LINEAR``: units whose gate is a positive constant ``c`` (no input) and whose value reads
  the stream: ``delta += out * (c * value . x)``, a linear map.  Such units are copies and
  erasures of residual dimensions (hundreds per layer in the WASM machine), and most of
  them read a dimension that is zero at this position.  A unit whose value dimensions are
  all zero adds ``+-0`` to ``delta`` (which changes no sum: ``delta`` starts at ``+0`` and
  never holds ``-0``), so LINEAR groups (the units of one constant-gate direction that read
  the same value dimensions) are woken by their *value* dimensions, like other groups by
  their gate inputs.  They need no guard: their gate is the constant ``c`` that a SELECT
  group of no input would use.
* ``MOVE``: a LINEAR unit that reads one dimension ``j`` and writes one, with gate constant,
  value weight and out weight all signed powers of two (the placement's *clear* units, which
  erase a dead value so its dimension can be reused, and plain copies): it adds ``k x_j`` to
  its output, bit for bit what the unit computes.  Moves are no group: the layer's wake
  entry of ``j`` lists them and adds them inline when ``x_j`` is non-zero (in the WASM
  machine they were ~40% of the groups run per token, each a queue entry and two row walks).

Exactness.  A group is used only when the step could not tell it apart from evaluating its
units one by one: all its gate weights and constants are integers, and at run time the
inputs of ``r`` are integers with ``sum |r_j x_j| <= bound``.  ``bound`` is chosen here so that
under it every gate, product and sum the unit-by-unit evaluation would form is an integer
below 2^53, i.e. computed exactly, so it equals ``a s + c`` and the table's ``s A + B``.
When the guard fails (a fractional input, or a huge one) the step evaluates the group's
units one by one, as before.  Units that fit no group stay ``generic``.

Constant dimensions (the constant one of the embedding) are folded into ``c``: a dimension
that the embedding sets to the same value for every token, that has no position feature
and that no earlier sublayer writes holds that value when the layer reads it.

Skipping.  Most groups add nothing when their inputs are zero (``s = 0``); those run only
when one of their input dimensions is non-zero.  A SELECT (or CHANNEL) group whose gates
are active at ``s = 0`` still adds nothing when every dimension its values read is zero
(each unit adds ``gate * +-0``, for a finite stream), so it is woken by those dimensions.  TABLE groups that do add something at
``s = 0`` are *folded*: the layer adds their summed output at ``s = 0`` as one constant, and
their tables hold the change from it (see :func:`_fold_zero` for the exactness budget).

Families.  A compiled byte decoder is hundreds of TABLE groups of one layer with the *same*
table whose directions lie on a line: ``r_k = D + t_k E`` (the WASM machine's
``word - k 2^24 ...`` staircases).  Their scores ``s_k = D.x + t_k (E.x)`` are monotone in
``t_k``, so a ``FAMILY`` group (appended after the real groups, which stay for the fallback)
computes the two dots once and, per breakpoint of the shared table, counts the members past
it with one binary search over ``t``; interval ``i`` then adds ``A sum(s_k) + B n_i``, with
``sum(s_k) = n_i D.x + (sum t_k) E.x`` from prefix sums of ``t``.  Its guard
``sum_j (|D_j| + max|t| |E_j|) |x_j| <= bound`` covers every member's guard and keeps every
product and partial sum of that aggregate an integer below 2^53, so the family adds exactly
what its members would add one by one; when it fails, the members run one by one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from rasp2d.backends.hull_kernels import GROUP_CHANNEL as CHANNEL
from rasp2d.backends.hull_kernels import GROUP_FAMILY as FAMILY
from rasp2d.backends.hull_kernels import GROUP_LINEAR as LINEAR
from rasp2d.backends.hull_kernels import GROUP_SELECT as SELECT
from rasp2d.backends.hull_kernels import GROUP_TABLE as TABLE
from rasp2d.backends.model_file import CompiledModel

EXACT = 2**53  # integers strictly below this are exact float64 values, and so are their sums


@dataclass(frozen=True)
class UnitRef:
    layer: int
    unit: int


@dataclass(frozen=True, eq=False)
class FfnPlan:
    """Flat arrays read by the jitted step; unit numbers index :attr:`units` (the order in
    which :mod:`rasp2d.backends.sparse_program` lays out the unit rows)."""

    units: tuple[UnitRef, ...]  # every live unit, layer by layer, groups first
    layer_groups: np.ndarray  # [L + 1] int64
    layer_generic: np.ndarray  # [L + 1] int64: range into generic_units
    generic_units: np.ndarray  # [n] int64: units evaluated one by one, always
    group_kind: np.ndarray  # [NG] int64: TABLE, SELECT, FAMILY or LINEAR
    group_bound: np.ndarray  # [NG] float64: guard on sum |r_j x_j|
    group_units: np.ndarray  # [NG, 2] int64: the group's unit range (the fallback)
    in_ptr: np.ndarray  # [NG + 1] int64: the direction r as sparse (dim, weight); LINEAR:
    #                     the value dimensions that wake the group (weights 0, unused)
    in_dim: np.ndarray  # int64
    in_w: np.ndarray  # float64
    bp_ptr: np.ndarray  # [NG + 1] int64: TABLE breakpoints (sorted); interval k = #bp <= s
    bp: np.ndarray  # float64
    iv_ptr: np.ndarray  # [bp_ptr[-1] + NG + 1] int64: entries of interval k of group g are
    #                     iv_ptr[bp_ptr[g] + g + k] : iv_ptr[bp_ptr[g] + g + k + 1]
    ent_dim: np.ndarray  # int64
    ent_a: np.ndarray  # float64: delta[dim] += s * a + b
    ent_b: np.ndarray  # float64
    ent_unit: np.ndarray  # int64: CHANNEL entries: the unit whose value row is the channel
    #                       (delta[dim] += (s * a + b) * value . x); -1 in TABLE entries
    iv_p: np.ndarray  # [len(iv_ptr) - 1] float64: CHANNEL intervals' exactness check P, Q
    iv_q: np.ndarray  # float64                   (0 for other groups' intervals)
    ch_vptr: np.ndarray  # [NG + 1] int64: ch_vdim[ch_vptr[g]:ch_vptr[g + 1]] the values read
    ch_vdim: np.ndarray  # int64
    rise_ptr: np.ndarray  # [NG + 1] int64: SELECT (and LINEAR) units with a > 0 (LINEAR and
    #                       constant gates: a = 0, t = -inf), sorted by threshold t:
    rise_t: np.ndarray  # float64        active iff s >= t
    rise_unit: np.ndarray  # int64
    rise_a: np.ndarray  # float64
    rise_c: np.ndarray  # float64
    fall_ptr: np.ndarray  # [NG + 1] int64: SELECT units with a < 0, sorted by threshold t:
    fall_t: np.ndarray  # float64        active iff s < t
    fall_unit: np.ndarray  # int64
    fall_a: np.ndarray  # float64
    fall_c: np.ndarray  # float64
    # TABLE groups folded at s = 0: the layer adds zl (their summed output when every input
    # is zero) first; their tables hold the change from that; a folded group the guard sends
    # unit by unit subtracts its own share z (exact integers: see _fold_zero)
    z_ptr: np.ndarray  # [NG + 1] int64
    z_dim: np.ndarray  # int64
    z_b: np.ndarray  # float64
    zl_ptr: np.ndarray  # [L + 1] int64
    zl_dim: np.ndarray  # int64
    zl_val: np.ndarray  # float64
    # groups to evaluate per token: those that add something when s = 0 always, the others
    # only when one of their input dimensions is non-zero ("woken" through that dimension)
    always_ptr: np.ndarray  # [L + 1] int64
    always_groups: np.ndarray  # int64
    wake_ptr: np.ndarray  # [L + 1] int64: layer l's wake dims are wake_dim[wake_ptr[l]:...]
    wake_dim: np.ndarray  # int64
    wake_gptr: np.ndarray  # [len(wake_dim) + 1] int64: groups woken by wake_dim[e]
    wake_groups: np.ndarray  # int64
    # FAMILY groups (see the module docstring): members fam_member[fam_mptr[g]:fam_mptr[g+1]]
    # sorted by t (fam_t); prefix sums of t at fam_tcum[fam_tptr[g] + i]; the input
    # entries of g (in_ptr) hold D in in_w, E in fam_ew and the guard weight in fam_cw;
    # fam_rep[g] is the member whose table they share (-1 for other groups)
    fam_mptr: np.ndarray  # [NG + 1] int64
    fam_member: np.ndarray  # int64
    fam_t: np.ndarray  # float64
    fam_tcum: np.ndarray  # float64
    fam_tptr: np.ndarray  # [NG] int64
    fam_rep: np.ndarray  # [NG] int64
    fam_ew: np.ndarray  # [len(in_dim)] float64
    fam_cw: np.ndarray  # [len(in_dim)] float64
    # MOVEs (see the module docstring), by wake entry: wake_dim[e] non-zero adds
    # mv_k[m] * x[wake_dim[e]] to delta[mv_dst[m]] for m in mv_ptr[e]:mv_ptr[e + 1]
    mv_ptr: np.ndarray  # [len(wake_dim) + 1] int64
    mv_dst: np.ndarray  # int64
    mv_k: np.ndarray  # float64

    @property
    def n_groups(self) -> int:
        return int(self.group_kind.shape[0])

    def table_bytes(self) -> int:
        return sum(getattr(self, f).nbytes for f in self.__dataclass_fields__
                   if isinstance(getattr(self, f), np.ndarray))


FOLD_INPUT_CAP = 2**36  # guard of folded tables: leaves room for ~2^17 / |A| of them per dim
NEVER = 1 << 62  # first_writes of a dimension nothing writes


def first_writes(model: CompiledModel) -> np.ndarray:
    """Per dimension, the first sublayer that may add to it (``2l``: layer ``l``'s attention,
    ``2l + 1``: its FFN), or NEVER.  Until then it holds what the embedding put there."""
    first = np.full(model.d_model, NEVER, dtype=np.int64)
    for l in reversed(range(model.n_layers)):
        live = model.W_gate[l].any(1) & model.W_val[l].any(1)
        first[model.W_out[l][:, live].any(axis=1)] = 2 * l + 1
        first[np.abs(model.W_o[l]).sum(axis=(1, 2)) > 0] = 2 * l
    return first


def constant_dims(model: CompiledModel, first: np.ndarray, sublayer: int) -> dict[int, Fraction]:
    """Dimensions that hold the same non-zero value for every token and position when
    ``sublayer`` reads them: dim -> value (no position feature, nothing wrote them yet)."""
    out = {}
    for j in range(model.d_model):
        col = model.embed[:, j]
        if first[j] < sublayer or model.pos_embed[:, j].any() or not np.all(col == col[0]):
            continue
        if col[0] != 0:
            out[j] = Fraction(float(col[0]))
    return out


def _int(x) -> int | None:
    f = Fraction(float(x)) if not isinstance(x, Fraction) else x
    return int(f) if f.denominator == 1 else None


@dataclass
class _Unit:
    ref: UnitRef
    a: int
    c: int
    const_abs: int  # sum over constant dims of |W_gate[u, j] * value_j|: partial-sum bound
    value: int | None  # constant value (TABLE), None when the value row reads the stream
    value_abs: int  # sum of |W_val[u, j] * value_j| (constant values)
    out: dict[int, int] | None  # integer out row, None when it has fractional weights
    value_dims: tuple[int, ...]  # every dimension the value row reads


def _limit(constraints) -> int:
    """Largest integer S >= 0 with K + M * S < EXACT for every (K, M), or -1 if none."""
    best = EXACT
    for k, m in constraints:
        if k >= EXACT:
            return -1
        if m > 0:
            best = min(best, (EXACT - 1 - k) // m)
    return best


def _table(units: list[_Unit], cap: int):
    """Breakpoints and per-interval entries of a TABLE group, or None past ``cap`` entries."""
    rise, fall = [], []
    for u in units:
        if u.a > 0:
            rise.append((math.floor(Fraction(-u.c, u.a)) + 1, u))
        elif u.a < 0:
            fall.append((math.ceil(Fraction(-u.c, u.a)), u))
    bps = sorted({t for t, _ in rise} | {t for t, _ in fall})
    A: dict[int, int] = {}
    B: dict[int, int] = {}

    def add(u: _Unit, sign: int) -> None:
        for o, w in u.out.items():
            A[o] = A.get(o, 0) + sign * u.a * u.value * w
            B[o] = B.get(o, 0) + sign * u.c * u.value * w

    for u in units:  # interval 0 (s below every breakpoint): falling units and a == 0 ones
        if u.a < 0 or (u.a == 0 and u.c > 0):
            add(u, 1)
    at_rise: dict[int, list[_Unit]] = {}
    at_fall: dict[int, list[_Unit]] = {}
    for t, u in rise:
        at_rise.setdefault(t, []).append(u)
    for t, u in fall:
        at_fall.setdefault(t, []).append(u)
    intervals = []
    total = 0
    for k in range(len(bps) + 1):
        if k:
            for u in at_rise.get(bps[k - 1], ()):
                add(u, 1)
            for u in at_fall.get(bps[k - 1], ()):
                add(u, -1)
        entries = [(o, A[o], B.get(o, 0)) for o in sorted(A) if A[o] or B.get(o, 0)]
        total += len(entries)
        if total > cap:
            return None
        intervals.append(entries)
    return bps, intervals


def _table_bound(units: list[_Unit], intervals) -> int:
    cons = []
    per_dim: dict[int, list[int]] = {}
    for u in units:
        cons.append((u.const_abs, abs(u.a)))  # the gate's dot
        cons.append((u.value_abs, 0))  # the value's dot
        cons.append((abs(u.c) * abs(u.value), abs(u.a) * abs(u.value)))  # relu(g) * v
        for o, w in u.out.items():
            k, m = per_dim.get(o, [0, 0])
            per_dim[o] = [k + abs(w * u.value * u.c), m + abs(w * u.value * u.a)]
    cons += [tuple(km) for km in per_dim.values()]  # any partial sum of the out products
    cons += [(abs(b), abs(a)) for entries in intervals for _, a, b in entries]
    return _limit(cons)


def _interval_spans(bps) -> list[tuple[int, int] | None]:
    """Per interval ``k`` of a table, the integers ``s`` it holds (``bps[k-1] <= s < bps[k]``)
    as ``(lo, hi)``, or None for the two unbounded end intervals."""
    return [None if k == 0 or k == len(bps) else (bps[k - 1], bps[k] - 1)
            for k in range(len(bps) + 1)]


def _fold_zero(bps, intervals, members: list[_Unit], bound: int, budget: dict[int, int], dims):
    """Rewrite a TABLE relative to its output at ``s = 0`` (which the layer then adds as a
    constant for every token), or None when that could break exactness.

    Returns (relative intervals, new bound, zero output).  ``budget`` holds, per output dim,
    a bound on the magnitudes already folded in this layer; the group is folded only if
    every partial sum of the layer's constant, its corrections and the group's own terms
    stays an integer below 2^53, so adding them in any order gives the exact sum.

    An entry of a bounded interval is at most ``|a| max(|lo|, |hi|) + |b|`` whatever the
    guard allows, so only the two end intervals depend on the bound; the bound is capped at
    FOLD_INPUT_CAP only when an end interval grows with ``s`` (else a byte staircase over a
    wide word would be refused the table whenever its bytes are large)."""
    k0 = sum(1 for t in bps if t <= 0)
    zero = {o: b for o, a, b in intervals[k0] if b}
    rel = []
    for entries in intervals:
        cur = {o: (a, b - zero.get(o, 0)) for o, a, b in entries}
        for o, b in zero.items():
            cur.setdefault(o, (0, -b))
        rel.append([(o, a, b) for o, (a, b) in sorted(cur.items()) if a or b])
    spans = _interval_spans(bps)
    cons, fixed = [], []
    for span, entries in zip(spans, rel):
        for o, a, b in entries:
            if span is None:
                cons.append((abs(b), abs(a)))
            else:
                fixed.append((o, abs(a) * max(abs(span[0]), abs(span[1])) + abs(b)))
    if any(m >= EXACT for _, m in fixed):
        return None
    growing = any(a for span, entries in zip(spans, rel) if span is None for _, a, _ in entries)
    new_bound = min(bound, FOLD_INPUT_CAP if growing else EXACT - 1, _limit(cons))
    if new_bound < 0 or (dims and new_bound == 0):
        return None
    need: dict[int, int] = {}
    for o, m in fixed:
        need[o] = max(need.get(o, 0), m)
    for span, entries in zip(spans, rel):
        if span is None:
            for o, a, b in entries:
                need[o] = max(need.get(o, 0), abs(a) * new_bound + abs(b))
    for o, b in zero.items():
        need[o] = need.get(o, 0) + 2 * abs(b)
    if any(budget.get(o, 0) + m >= EXACT for o, m in need.items()):
        return None
    for o, m in need.items():
        budget[o] = budget.get(o, 0) + m
    return rel, new_bound, zero


def _channel_table(model: CompiledModel, members: list[_Unit], index, cap: int):
    """A SELECT group as channel entries per interval (module docstring, ``CHANNEL``):
    ``(bps, intervals of (unit, dim, A, B), per interval (P, Q), value dims)``, or None when
    the values or outputs are not integer rows, or the table is larger than ``cap`` entries
    or not smaller than the units it replaces."""
    rows = {}
    chan = []
    for u in members:
        v = model.W_val[u.ref.layer, u.ref.unit]
        nz = np.flatnonzero(v)
        w = [_int(v[j]) for j in nz]
        if u.out is None or any(x is None for x in w):
            return None
        key = tuple(zip((int(j) for j in nz), w))
        chan.append(rows.setdefault(key, index[id(u)]))
    v1 = {rep: sum(abs(w) for _, w in key) for key, rep in rows.items()}
    rise, fall = [], []
    for u, ch in zip(members, chan):
        if u.a > 0:
            rise.append((math.floor(Fraction(-u.c, u.a)) + 1, u, ch))
        elif u.a < 0:
            fall.append((math.ceil(Fraction(-u.c, u.a)), u, ch))
    bps = sorted({t for t, _, _ in rise} | {t for t, _, _ in fall})
    A: dict[tuple[int, int], int] = {}
    B: dict[tuple[int, int], int] = {}
    # per output dim, over its active units: sum |w a| |v|_1 and sum |w c| |v|_1 (a unit's
    # gate, value dot, product and out term are at most its share of P |s| + Q times m)
    P: dict[int, int] = {}
    Q: dict[int, int] = {}

    def add(u: _Unit, ch: int, sign: int) -> None:
        for o, w in u.out.items():
            A[ch, o] = A.get((ch, o), 0) + sign * u.a * w
            B[ch, o] = B.get((ch, o), 0) + sign * u.c * w
            P[o] = P.get(o, 0) + sign * abs(w * u.a) * v1[ch]
            Q[o] = Q.get(o, 0) + sign * abs(w * u.c) * v1[ch]

    active = 0
    for u, ch in zip(members, chan):
        if u.a < 0 or (u.a == 0 and u.c > 0):
            add(u, ch, 1)
            active += 1
    at: dict[int, list] = {}
    for t, u, ch in rise:
        at.setdefault(t, []).append((u, ch, 1))
    for t, u, ch in fall:
        at.setdefault(t, []).append((u, ch, -1))
    intervals, pq, total, active_total = [], [], 0, 0
    for i in range(len(bps) + 1):
        if i:
            for u, ch, sign in at[bps[i - 1]]:
                add(u, ch, sign)
                active += sign
        entries = [(ch, o, A[ch, o], B.get((ch, o), 0)) for ch, o in sorted(A)
                   if A[ch, o] or B.get((ch, o), 0)]
        total += len(entries)
        active_total += active
        if total > cap:
            return None
        intervals.append(entries)
        pq.append((max(P.values(), default=0), max(Q.values(), default=0)))
    if 2 * total > active_total:  # the table must save work where the units are active
        return None
    vdims = sorted({j for key in rows for j, _ in key})
    return bps, intervals, pq, vdims


FAMILY_MIN = 4  # fewer same-table groups gain nothing from one search per breakpoint


@dataclass(frozen=True)
class _Family:
    layer: int
    members: tuple[int, ...]  # group numbers, sorted by t
    t: tuple[int, ...]
    dims: tuple[int, ...]
    d: tuple[int, ...]  # the direction of t = 0
    e: tuple[int, ...]  # the line's step


def _line(rows: list[tuple[int, ...]]):
    """``(D, E, t)`` with ``rows[k] = D + t[k] E`` (integers, E primitive), or None."""
    d = rows[0]
    step = next((tuple(a - b for a, b in zip(r, d)) for r in rows if r != d), None)
    if step is None:
        return None
    g = math.gcd(*step)
    e = tuple(v // g for v in step)
    j = next(i for i, v in enumerate(e) if v)
    ts = []
    for r in rows:
        diff = [a - b for a, b in zip(r, d)]
        if diff[j] % e[j]:
            return None
        t = diff[j] // e[j]
        if any(dv != t * ev for dv, ev in zip(diff, e)):
            return None
        ts.append(t)
    return d, e, ts


def _families(layer_groups, kinds, constant, in_ptr, in_dim, in_w, bp_ptr, bp, iv_ptr,
              ent_dim, ent_a, ent_b) -> list[_Family]:
    """Same-table TABLE groups of one layer whose directions lie on a line (FAMILY_MIN+)."""
    out = []
    for l in range(len(layer_groups) - 1):
        classes: dict[tuple, list[int]] = {}
        for g in range(layer_groups[l], layer_groups[l + 1]):
            dims = tuple(in_dim[in_ptr[g]:in_ptr[g + 1]])
            if kinds[g] != TABLE or constant[g] or not dims:
                continue
            n_iv = bp_ptr[g + 1] - bp_ptr[g] + 1
            base = bp_ptr[g] + g
            table = tuple(tuple((ent_dim[e], ent_a[e], ent_b[e])
                                for e in range(iv_ptr[base + k], iv_ptr[base + k + 1]))
                          for k in range(n_iv))
            classes.setdefault((dims, tuple(bp[bp_ptr[g]:bp_ptr[g + 1]]), table), []).append(g)
        for (dims, bps, _), members in classes.items():
            if len(members) < max(FAMILY_MIN, len(bps) + 1):
                continue
            rows = [tuple(int(w) for w in in_w[in_ptr[g]:in_ptr[g + 1]]) for g in members]
            fit = _line(rows)
            if fit is None:
                continue
            d, e, ts = fit
            order = sorted(range(len(members)), key=lambda i: ts[i])
            out.append(_Family(l, tuple(members[i] for i in order), tuple(ts[i] for i in order),
                               dims, d, e))
    return out


def _power_of_two(v: int) -> bool:
    v = abs(v)
    return v > 0 and v & (v - 1) == 0


def _move_factor(model: CompiledModel, u: "_Unit") -> float | None:
    """``k`` when constant-gate unit ``u`` adds exactly ``k * x[j]`` to one dimension: its value
    reads the one dimension ``j`` and it writes one, with the gate constant, the value weight and
    the out weight all signed powers of two (each product the unit forms is then exact, so
    ``out * (c * (w * x))`` is ``(out * c * w) * x`` bit for bit, for any ``x``); else None."""
    if len(u.value_dims) != 1 or u.out is None or len(u.out) != 1 or u.a != 0:
        return None
    w = _int(model.W_val[u.ref.layer, u.ref.unit, u.value_dims[0]])
    o = next(iter(u.out.values()))
    if w is None or not (_power_of_two(u.c) and _power_of_two(w) and _power_of_two(o)):
        return None
    return float(u.c * w * o)


def plan_ffn(model: CompiledModel, table_cap: int = 16) -> FfnPlan:
    """Group every layer's live units; ``table_cap`` bounds a TABLE's entries per unit."""
    first_write = first_writes(model)
    units_out: list[UnitRef] = []
    layer_groups, layer_generic = [0], [0]
    generic: list[int] = []
    kinds, bounds, granges = [], [], []
    in_ptr, in_dim, in_w = [0], [], []
    bp_ptr, bp, iv_ptr = [0], [], [0]
    ent_dim, ent_a, ent_b, ent_unit = [], [], [], []
    iv_pq: dict[int, tuple[float, float]] = {}  # CHANNEL intervals: (P, Q)
    ch_vdims: dict[int, list[int]] = {}
    sel = {"rise": ([0], [], [], [], []), "fall": ([0], [], [], [], [])}
    constant, z_ptr, z_dim, z_b, zl_ptr, zl_dim, zl_val = [], [0], [], [], [0], [], []
    moves: list[dict[int, list[tuple[int, float]]]] = [{} for _ in range(model.n_layers)]
    for l in range(model.n_layers):
        consts = constant_dims(model, first_write, 2 * l + 1)
        const_idx = sorted(consts)
        G, V, O = model.W_gate[l], model.W_val[l], model.W_out[l]
        groups: dict[tuple, list[_Unit]] = {}
        loose: list[UnitRef] = []
        for u in range(model.d_ffn):
            if not (G[u].any() and V[u].any() and O[:, u].any()):
                continue
            ref = UnitRef(l, u)
            row = G[u]
            var = [j for j in np.flatnonzero(row) if j not in consts]
            c_frac = sum((Fraction(float(row[j])) * consts[j] for j in const_idx), Fraction(0))
            ints = [_int(row[j]) for j in var]
            c = _int(c_frac)
            if c is None or any(v is None for v in ints):
                loose.append(ref)
                continue
            if var:
                g = math.gcd(*ints)
                if ints[0] < 0:
                    g = -g
                key = (tuple(int(j) for j in var), tuple(v // g for v in ints))
                a = g
            else:
                if c <= 0:
                    continue  # relu of a non-positive constant: the unit never adds anything
                key, a = ((), ()), 0
            const_abs = sum(abs(Fraction(float(row[j])) * consts[j]) for j in const_idx)
            vrow = V[u]
            v_var = [j for j in np.flatnonzero(vrow) if j not in consts]
            value = value_abs = None
            if not v_var:
                vf = sum((Fraction(float(vrow[j])) * consts[j] for j in const_idx), Fraction(0))
                value = _int(vf)
                value_abs = sum(abs(Fraction(float(vrow[j])) * consts[j]) for j in const_idx)
            out_nz = np.flatnonzero(O[:, u])
            out_w = [_int(O[o, u]) for o in out_nz]
            out = None if any(w is None for w in out_w) else dict(zip((int(o) for o in out_nz), out_w))
            groups.setdefault(key, []).append(
                _Unit(ref, a, c, int(math.ceil(const_abs)), value,
                      0 if value_abs is None else int(math.ceil(value_abs)), out,
                      tuple(int(j) for j in np.flatnonzero(vrow))))
        layer_budget: dict[int, int] = {}  # per dim: bound on the partial sums of folded groups
        layer_zero: dict[int, int] = {}
        for (dims, weights), members in groups.items():
            gate_bound = _limit([(u.const_abs, abs(u.a)) for u in members])
            if gate_bound < 0:
                loose += [u.ref for u in members]
                continue
            if not dims:  # LINEAR sub-groups (below) are contiguous unit ranges
                members = sorted(members, key=lambda u: u.value_dims)
            first = len(units_out)
            units_out += [u.ref for u in members]
            index = {id(u): first + i for i, u in enumerate(members)}
            table = None
            if all(u.value is not None and u.out is not None for u in members):
                table = _table(members, table_cap * len(members) + 64)
            bound = _table_bound(members, table[1]) if table is not None else -1
            zero: dict[int, int] = {}
            folded_here = False
            if bound >= 0:
                kinds.append(TABLE)
                bps, intervals = table
                folded = _fold_zero(bps, intervals, members, bound, layer_budget, dims)
                if folded is not None:
                    intervals, bound, zero = folded
                    folded_here = True
                    for o, b in zero.items():
                        layer_zero[o] = layer_zero.get(o, 0) + b
                bp += [float(t) for t in bps]
                for entries in intervals:
                    for o, a, b in entries:
                        ent_dim.append(o)
                        ent_a.append(float(a))
                        ent_b.append(float(b))
                        ent_unit.append(-1)
                    iv_ptr.append(len(ent_dim))
            elif not dims:
                for vdims, sub_members in itertools.groupby(members, key=lambda u: u.value_dims):
                    sub_members = list(sub_members)
                    factors = [_move_factor(model, u) for u in sub_members]
                    rest = [u for u, k in zip(sub_members, factors) if k is None]
                    moved = [(u, k) for u, k in zip(sub_members, factors) if k is not None]
                    for u, k in moved:
                        moves[l].setdefault(vdims[0], []).append((next(iter(u.out)), k))
                    if moved:  # moved units keep a place in units_out (the folds need their
                        # outputs), after the LINEAR group's remaining units (a range)
                        start = index[id(sub_members[0])]
                        for i, u in enumerate(rest + [u for u, _ in moved]):
                            units_out[start + i] = u.ref
                            index[id(u)] = start + i
                    if not rest:
                        continue
                    sub_members = rest
                    lo = index[id(sub_members[0])]
                    kinds.append(LINEAR)
                    bounds.append(float(gate_bound))
                    granges.append((lo, lo + len(sub_members)))
                    ptr, ts, us, aa, cc = sel["rise"]
                    for u in sub_members:
                        ts.append(-math.inf)
                        us.append(index[id(u)])
                        aa.append(0.0)
                        cc.append(float(u.c))
                    sel["rise"][0].append(len(ts))
                    sel["fall"][0].append(len(sel["fall"][1]))
                    iv_ptr.append(len(ent_dim))  # one empty interval keeps iv_ptr's layout
                    bp_ptr.append(len(bp))
                    constant.append(False)
                    z_ptr.append(len(z_dim))
                    in_dim += list(vdims)
                    in_w += [0.0] * len(vdims)
                    in_ptr.append(len(in_dim))
                continue
            else:
                bound = gate_bound
                chans = _channel_table(model, members, index, table_cap * len(members) + 64)
                kinds.append(SELECT if chans is None else CHANNEL)
                rise = sorted((math.floor(Fraction(-u.c, u.a)) + 1, index[id(u)], u)
                              for u in members if u.a > 0)
                fall = sorted((math.ceil(Fraction(-u.c, u.a)), index[id(u)], u)
                              for u in members if u.a < 0)
                # a == 0 (constant gate c > 0): always active, a rising unit with t = -inf
                rise = [(-math.inf, index[id(u)], u) for u in members if u.a == 0] + rise
                for name, lst in (("rise", rise), ("fall", fall)):
                    ptr, ts, us, aa, cc = sel[name]
                    for t, i, u in lst:
                        ts.append(float(t))
                        us.append(i)
                        aa.append(float(u.a))
                        cc.append(float(u.c))
                if chans is None:
                    iv_ptr.append(len(ent_dim))  # one empty interval keeps iv_ptr's layout
                else:
                    cbps, cintervals, cpq, vdims = chans
                    bp += [float(t) for t in cbps]
                    for entries, (pk, qk) in zip(cintervals, cpq):
                        for ch, o, a, b in entries:
                            ent_dim.append(o)
                            ent_a.append(float(a))
                            ent_b.append(float(b))
                            ent_unit.append(ch)
                        iv_ptr.append(len(ent_dim))
                        iv_pq[len(iv_ptr) - 2] = (float(pk), float(qk))
                    ch_vdims[len(kinds) - 1] = vdims
            for name in ("rise", "fall"):
                sel[name][0].append(len(sel[name][1]))
            bp_ptr.append(len(bp))
            constant.append(folded_here and not dims)
            for o, b in sorted(zero.items()):
                z_dim.append(o)
                z_b.append(float(b))
            z_ptr.append(len(z_dim))
            bounds.append(float(bound))
            granges.append((first, len(units_out)))
            in_dim += list(dims)
            in_w += [float(w) for w in weights]
            in_ptr.append(len(in_dim))
        layer_groups.append(len(kinds))
        for o, b in sorted(layer_zero.items()):
            if b:
                zl_dim.append(o)
                zl_val.append(float(b))
        zl_ptr.append(len(zl_dim))
        for ref in sorted(loose, key=lambda r: r.unit):
            generic.append(len(units_out))
            units_out.append(ref)
        layer_generic.append(len(generic))

    def arr(x, dtype):
        return np.array(x, dtype=dtype)

    n_real = len(kinds)
    families = _families(layer_groups, kinds, constant, in_ptr, in_dim, in_w, bp_ptr, bp,
                         iv_ptr, ent_dim, ent_a, ent_b)
    in_member = set()
    fam_mptr, fam_member, fam_t, fam_tcum = [0] * (n_real + 1), [], [], []
    fam_rep, fam_tptr = [-1] * n_real, [0] * n_real
    fam_ew, fam_cw = [0.0] * len(in_dim), [0.0] * len(in_dim)
    layer_fams: list[list[int]] = [[] for _ in range(model.n_layers)]
    for fam in families:
        rep = fam.members[0]
        n = len(fam.members)
        table = range(iv_ptr[bp_ptr[rep] + rep], iv_ptr[bp_ptr[rep + 1] + rep + 1])
        max_a = max([abs(int(ent_a[e])) for e in table] + [1])
        max_b = max([abs(int(ent_b[e])) for e in table] + [0])
        # the aggregate's terms are at most 2 n G |A| + n |B| (see the module docstring)
        fbound = min(min(int(bounds[g]) for g in fam.members),
                     (EXACT - 1 - n * max_b) // (2 * n * max_a))
        if fbound <= 0:
            continue
        in_member.update(fam.members)
        tmax = max(abs(t) for t in fam.t)
        g = len(kinds)
        layer_fams[fam.layer].append(g)
        kinds.append(FAMILY)
        bounds.append(float(fbound))
        granges.append((0, 0))
        in_dim += list(fam.dims)
        in_w += [float(v) for v in fam.d]
        fam_ew += [float(v) for v in fam.e]
        fam_cw += [float(abs(dv) + tmax * abs(ev)) for dv, ev in zip(fam.d, fam.e)]
        in_ptr.append(len(in_dim))
        bp_ptr.append(len(bp))
        iv_ptr.append(len(ent_dim))  # one empty interval keeps iv_ptr's layout
        for name in ("rise", "fall"):
            sel[name][0].append(len(sel[name][1]))
        z_ptr.append(len(z_dim))
        constant.append(False)
        fam_member += list(fam.members)
        fam_t += [float(t) for t in fam.t]
        fam_mptr.append(len(fam_member))
        fam_tptr.append(len(fam_tcum))
        fam_tcum += [float(sum(fam.t[:i])) for i in range(n + 1)]
        fam_rep.append(rep)
    if not fam_tcum:
        fam_tcum = [0.0]

    def idle_at_zero(g: int) -> bool:
        """Does group g add nothing when its inputs are zero (s = 0)?"""
        if kinds[g] == FAMILY:
            return idle_at_zero(fam_rep[g])
        if kinds[g] == LINEAR:
            return True  # every value dimension zero: each unit adds +-0
        if kinds[g] == TABLE:
            base = bp_ptr[g] + g + sum(1 for t in bp[bp_ptr[g]:bp_ptr[g + 1]] if t <= 0)
            return not any(ent_b[iv_ptr[base]:iv_ptr[base + 1]])  # s A + 0 at s = 0
        r0, r1 = sel["rise"][0][g], sel["rise"][0][g + 1]
        f0, f1 = sel["fall"][0][g], sel["fall"][0][g + 1]
        return (not any(t <= 0 for t in sel["rise"][1][r0:r1])
                and not any(t > 0 for t in sel["fall"][1][f0:f1]))

    def value_dims(g: int) -> list[int]:
        """Every dimension the value rows of group g's units read."""
        lo, hi = granges[g]
        return sorted({int(j) for r in units_out[lo:hi]
                       for j in np.flatnonzero(model.W_val[r.layer, r.unit])})

    always_ptr, always, wake_ptr, wake_dim, wake_gptr, wake_groups = [0], [], [0], [], [0], []
    mv_ptr, mv_dst, mv_k = [0], [], []
    for l in range(model.n_layers):
        by_dim: dict[int, list[int]] = {}
        run = [g for g in range(layer_groups[l], layer_groups[l + 1]) if g not in in_member]
        for g in run + layer_fams[l]:
            dims = in_dim[in_ptr[g]:in_ptr[g + 1]]
            if constant[g]:
                continue  # its whole output is in the layer's constant (zl_*)
            if not (idle_at_zero(g) and dims) and kinds[g] in (SELECT, CHANNEL):
                dims = value_dims(g)  # gates active at s = 0, but zero values add nothing
            if (idle_at_zero(g) or kinds[g] in (SELECT, CHANNEL)) and dims:
                for j in dims:
                    by_dim.setdefault(j, []).append(g)
            else:
                always.append(g)
        always_ptr.append(len(always))
        for j in sorted(set(by_dim) | set(moves[l])):
            wake_dim.append(j)
            wake_groups += by_dim.get(j, [])
            wake_gptr.append(len(wake_groups))
            for o, k in moves[l].get(j, []):
                mv_dst.append(o)
                mv_k.append(k)
            mv_ptr.append(len(mv_dst))
        wake_ptr.append(len(wake_dim))

    i64, f64 = np.int64, np.float64
    n_all = len(kinds)
    ch_vptr = [0]
    ch_vdim: list[int] = []
    for g in range(n_all):
        ch_vdim += ch_vdims.get(g, [])
        ch_vptr.append(len(ch_vdim))
    return FfnPlan(
        units=tuple(units_out), layer_groups=arr(layer_groups, i64),
        layer_generic=arr(layer_generic, i64), generic_units=arr(generic, i64),
        group_kind=arr(kinds, i64), group_bound=arr(bounds, f64),
        group_units=arr(granges, i64).reshape(-1, 2),
        in_ptr=arr(in_ptr, i64), in_dim=arr(in_dim, i64), in_w=arr(in_w, f64),
        bp_ptr=arr(bp_ptr, i64), bp=arr(bp, f64), iv_ptr=arr(iv_ptr, i64),
        ent_dim=arr(ent_dim, i64), ent_a=arr(ent_a, f64), ent_b=arr(ent_b, f64),
        ent_unit=arr(ent_unit, i64),
        iv_p=arr([iv_pq.get(i, (0.0, 0.0))[0] for i in range(len(iv_ptr) - 1)], f64),
        iv_q=arr([iv_pq.get(i, (0.0, 0.0))[1] for i in range(len(iv_ptr) - 1)], f64),
        ch_vptr=arr(ch_vptr, i64), ch_vdim=arr(ch_vdim, i64),
        rise_ptr=arr(sel["rise"][0], i64), rise_t=arr(sel["rise"][1], f64),
        rise_unit=arr(sel["rise"][2], i64), rise_a=arr(sel["rise"][3], f64),
        rise_c=arr(sel["rise"][4], f64),
        fall_ptr=arr(sel["fall"][0], i64), fall_t=arr(sel["fall"][1], f64),
        fall_unit=arr(sel["fall"][2], i64), fall_a=arr(sel["fall"][3], f64),
        fall_c=arr(sel["fall"][4], f64),
        z_ptr=arr(z_ptr, i64), z_dim=arr(z_dim, i64), z_b=arr(z_b, f64),
        zl_ptr=arr(zl_ptr, i64), zl_dim=arr(zl_dim, i64), zl_val=arr(zl_val, f64),
        always_ptr=arr(always_ptr, i64), always_groups=arr(always, i64),
        wake_ptr=arr(wake_ptr, i64), wake_dim=arr(wake_dim, i64),
        wake_gptr=arr(wake_gptr, i64), wake_groups=arr(wake_groups, i64),
        fam_mptr=arr(fam_mptr, i64), fam_member=arr(fam_member, i64), fam_t=arr(fam_t, f64),
        fam_tcum=arr(fam_tcum, f64), fam_tptr=arr(fam_tptr, i64), fam_rep=arr(fam_rep, i64), fam_ew=arr(fam_ew, f64),
        fam_cw=arr(fam_cw, f64),
        mv_ptr=arr(mv_ptr, i64), mv_dst=arr(mv_dst, i64), mv_k=arr(mv_k, f64),
    )
