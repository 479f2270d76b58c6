"""A CompiledModel flattened for a jitted decoding step: only what can change the output.

Compiled weights are very sparse: most FFN units read one or two residual dimensions, and
most heads are padding of the standard shape (``n_heads = d_model / 2``) with ``W_o == 0``.
A decoding step that walks dense matrices would spend nearly all its time multiplying
zeros, so the model is rewritten once as a bank of sparse rows (CSR: ``ptr``/``idx``/``val``)
plus index tables of the heads and units that are actually used, and three plans that let
the step skip work whose result is known:

* FFN units grouped by gate direction (:mod:`rasp2d.backends.hull_ffn_plan`): a group finds
  its active units (or its whole output) with one binary search.
* Heads whose keys depend on the position only (``lookup(indices, ...)``, ``prev``): their keys
  lie on a known quadratic curve of the position, so the step answers them in closed form
  (see :func:`rasp2d.backends.hull_kernels.position_query`) instead of keeping a hull.
* The unembedding as a dense block over the few dimensions it reads, evaluated only for the
  non-zero ones; and, when its rows are integer combinations of two integer rows ``P``
  (the compiled ``token(expr)`` output: ``logit_t = 2 t e - t^2``), as a static 2D
  hard-max: ``logit_t = alpha P[0, t] + beta P[1, t]`` with ``(alpha, beta) = M^T x``, so
  the argmax is the maximising face of the points ``P[:, t]``' convex hull in direction
  ``(alpha, beta)``, found by a binary search along a chain, its lowest token id kept per
  point (:class:`UnembedHull`).  The step uses it only while every term is an exact
  integer, so the answer, ties included, is the dense argmax's.

Row bank layout (``bases`` holds the first row of each block):

* rows ``0, 1``: the position features' rows of ``pos_embed`` (``pos``, ``pos^2``);
* head ``g`` (used heads only, layer by layer): rows ``bases[HEADS] + 8g + j`` for
  ``j`` = q0, q1, k0, k1, v0, v1 (read the residual) and out0, out1 (columns of ``W_o``:
  where the head's two outputs are added);
* unit ``u`` (live FFN units, in the order of ``ffn.units``): rows ``bases[UNITS] + 3u + j``
  for gate, value, out.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from rasp2d.backends.hull_ffn_plan import FfnPlan, first_writes, plan_ffn
from rasp2d.backends.hull_kernels import HEAD_HULL, HEAD_POSITION, HEAD_ROWS, KEY_LIMIT, UNIT_ROWS
from rasp2d.backends.model_file import CompiledModel, file_digest


@dataclass(frozen=True, eq=False)
class UnembedHull:
    """The unembedding block ``ublock [C, V] = M @ P`` (integers) as a static point set.

    Chains hold the distinct points of ``P`` on the upper and lower hull (sorted by x,
    collinear points kept: they tie), each with the lowest token id at that point.  The
    exactness check of the step: ``x[ucols]`` integers with ``sum_c uabs[c] |x_c|`` (every
    dense logit's terms), ``sum_c |M[c, i]| |x_c|`` and ``|alpha| pabs[0] + |beta| pabs[1]``
    all below 2^52 (half of 2^53: room for the check's own rounding)."""

    usable: bool  # False: the block is no such product, the step uses it densely
    m: np.ndarray  # [C, 2] float64
    uabs: np.ndarray  # [C] float64: max_t |ublock[c, t]|
    pabs: np.ndarray  # [2] float64: max_t |P[i, t]|
    chain_ptr: np.ndarray  # [3] int64: upper chain = [0:1], lower chain = [1:2] (ranges)
    chain_x: np.ndarray  # float64
    chain_y: np.ndarray  # float64
    chain_id: np.ndarray  # int64: lowest token id at the point
    extreme_id: np.ndarray  # [2] int64: lowest id with the largest x, with the smallest x


def _chain(pts: list[tuple[int, int]], sign: int) -> list[tuple[int, int]]:
    """Monotone-chain upper (sign 1) or lower (sign -1) hull of sorted distinct points,
    collinear points kept (they tie with their neighbours on a perpendicular query)."""
    out: list[tuple[int, int]] = []
    for p in pts:
        while len(out) >= 2:
            (ox, oy), (ax, ay) = out[-2], out[-1]
            cross = (ax - ox) * (p[1] - oy) - (ay - oy) * (p[0] - ox)
            if sign * cross > 0:  # a -> p turns the wrong way: a lies inside
                out.pop()
            else:
                break
        out.append(p)
    return out


def unembed_hull(block: np.ndarray) -> UnembedHull:
    """Factor ``block`` (``[C, V]``) as ``M @ P`` with integer ``M`` ``[C, 2]`` and
    ``P`` ``[2, V]`` (two of its rows), exactly, and build the static chains; an unusable
    hull when the block is not integer or has rank above 2."""
    C, V = block.shape
    none = UnembedHull(False, np.zeros((C, 2)), np.zeros(C), np.zeros(2),
                       np.zeros(3, dtype=np.int64), np.zeros(0), np.zeros(0),
                       np.zeros(0, dtype=np.int64), np.zeros(2, dtype=np.int64))
    if C == 0 or V == 0 or not np.all(block == np.round(block)) or \
            np.abs(block).max() >= 2.0**52:
        return none
    rows = [[int(v) for v in r] for r in block]
    basis: list[list[int]] = []
    for r in rows:
        if not any(r):
            continue
        if not basis:
            basis.append(r)
        elif len(basis) == 1:
            b = basis[0]
            j = next(i for i, v in enumerate(b) if v)
            if any(r[i] * b[j] != b[i] * r[j] for i in range(V)):  # not a multiple of b
                basis.append(r)
    basis = [[v // math.gcd(*b) for v in b] for b in basis]  # primitive: more M integer
    if not basis:  # every logit is 0
        basis.append([0] * V)
    if len(basis) == 1:
        basis.append([0] * V)
    p0, p1 = basis
    # columns i, k with a non-singular 2x2 minor solve each row for (m0, m1)
    minor = None
    if any(p1):
        for i in range(V):
            for k in range(i + 1, V):
                det = p0[i] * p1[k] - p0[k] * p1[i]
                if det:
                    minor = (i, k, det)
                    break
            if minor:
                break
    m = np.zeros((C, 2))
    for c, r in enumerate(rows):
        if not any(r):
            m0 = m1 = Fraction(0)
        elif minor is None:  # rank 1: r = m0 p0
            j = next(i for i, v in enumerate(p0) if v)
            m0, m1 = Fraction(r[j], p0[j]), Fraction(0)
        else:
            i, k, det = minor
            m0 = Fraction(r[i] * p1[k] - r[k] * p1[i], det)
            m1 = Fraction(p0[i] * r[k] - p0[k] * r[i], det)
        if m0.denominator != 1 or m1.denominator != 1 or \
                any(int(m0) * a + int(m1) * b != v for a, b, v in zip(p0, p1, r)):
            return none
        m[c] = (int(m0), int(m1))
    lowest: dict[tuple[int, int], int] = {}
    for t in range(V):
        lowest.setdefault((p0[t], p1[t]), t)
    pts = sorted(lowest)
    upper, lower = _chain(pts, 1), _chain(pts, -1)
    xs = [p[0] for p in pts]
    hi_x, lo_x = max(xs), min(xs)
    chain = upper + lower
    return UnembedHull(
        True, m, np.abs(block).max(axis=1).astype(np.float64),
        np.array([max(abs(v) for v in p0), max(abs(v) for v in p1)], dtype=np.float64),
        np.array([0, len(upper), len(chain)], dtype=np.int64),
        np.array([p[0] for p in chain], dtype=np.float64),
        np.array([p[1] for p in chain], dtype=np.float64),
        np.array([lowest[p] for p in chain], dtype=np.int64),
        np.array([min(t for p, t in lowest.items() if p[0] == hi_x),
                  min(t for p, t in lowest.items() if p[0] == lo_x)], dtype=np.int64))


@dataclass(frozen=True, eq=False)
class SparseProgram:
    d_model: int
    n_layers: int
    vocab_size: int
    embed: np.ndarray  # [V, d] float64 (one row copied per token)
    ptr: np.ndarray  # [rows + 1] uint64
    idx: np.ndarray  # [nnz] uint32: residual dimension (unsigned: no negative-index wraparound)
    val: np.ndarray  # [nnz] float64: weight
    bases: np.ndarray  # [3] int64: first row of the head, unit and (empty) unembedding blocks
    layer_heads: np.ndarray  # [L + 1] int64: used heads of layer l are layer_heads[l]:layer_heads[l+1]
    layer_units: np.ndarray  # [L + 1] int64
    head_tie: np.ndarray  # [G] int64
    head_origin: np.ndarray  # [G, 2] int64: (layer, head) in the CompiledModel
    head_mode: np.ndarray  # [G] int64: HEAD_HULL or HEAD_POSITION
    head_slot: np.ndarray  # [G] int64: a position head's row in the value store, else -1
    head_kcoef: np.ndarray  # [G, 2, 3] float64: key component c = k[c,0] + k[c,1] p + k[c,2] p^2
    head_pmax: np.ndarray  # [G] float64: last position at which that formula is exact
    fold_ptr: np.ndarray  # [2L + 1] int64: dims sublayer s writes: fold_idx[fold_ptr[s]:...]
    fold_idx: np.ndarray  # int64 (s = 2l: layer l's attention, 2l + 1: its FFN)
    ucols: np.ndarray  # [C] int64: dimensions the unembedding reads
    ublock: np.ndarray  # [C, V] float64: their columns of the unembedding
    uhull: UnembedHull
    ffn: FfnPlan

    @property
    def n_used_heads(self) -> int:
        return int(self.head_tie.shape[0])

    @property
    def n_position_heads(self) -> int:
        return int((self.head_mode == HEAD_POSITION).sum())

    @property
    def n_used_units(self) -> int:
        return int(self.layer_units[-1])

    @property
    def nnz(self) -> int:
        return int(self.val.shape[0]) + int(np.count_nonzero(self.ublock))


def _position_key(model: CompiledModel, first: np.ndarray, layer: int, krows: np.ndarray):
    """(coefficients [2, 3], last exact position) when both key rows of a head of ``layer``
    read only dimensions that still hold a fixed function ``c + p1 pos + p2 pos^2`` of the
    position (nothing has written them yet), else None."""
    coef = np.zeros((2, 3))
    bound_terms = []  # per component: (|const| part, |pos| part, |pos^2| part) of sum |w x|
    for comp in range(2):
        row = krows[comp]
        sums = [Fraction(0)] * 3
        absum = [Fraction(0)] * 3
        for j in np.flatnonzero(row):
            col = model.embed[:, j]
            if first[j] < 2 * layer or not np.all(col == col[0]):
                return None
            w = Fraction(float(row[j]))
            parts = (Fraction(float(col[0])), Fraction(float(model.pos_embed[0, j])),
                     Fraction(float(model.pos_embed[1, j])))
            if any(p.denominator != 1 for p in parts) or w.denominator != 1:
                return None
            for i in range(3):
                sums[i] += w * parts[i]
                absum[i] += abs(w * parts[i])
        coef[comp] = [float(s) for s in sums]
        bound_terms.append(absum)
    # largest position p with every |w x| partial sum below 2^52 (exact integers), and p^2
    # exact where a key reads the pos^2 feature
    if not all(a <= KEY_LIMIT for a, _, _ in bound_terms):
        return None
    squares = any(c for _, _, c in bound_terms)
    lo, hi = 0, 2**52
    while lo < hi:
        p = (lo + hi + 1) // 2
        ok = (not squares or p * p <= KEY_LIMIT) and \
            all(a + b * p + c * p * p <= KEY_LIMIT for a, b, c in bound_terms)
        lo, hi = (p, hi) if ok else (lo, p - 1)
    return coef, float(lo)


_BUILDERS = ("sparse_program.py", "hull_ffn_plan.py", "hull_kernels.py")


def sparse_program(model: CompiledModel) -> SparseProgram:
    """The sparse form of ``model``.  Building it plans every FFN group with exact rational
    arithmetic (5 s for the WASM machine, longer than most programs run), so for a model
    loaded from a file (``model.digest`` set) it is kept in :func:`rasp2d.cache.cache_dir`,
    keyed by the model's content and the source of the code that builds it."""
    if model.digest is None:
        return build_sparse_program(model)
    path = _cache_path(model.digest)
    program = _read_cached(path)
    if program is None:
        program = build_sparse_program(model)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                pickle.dump(program, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)  # atomic: a concurrent reader sees no file or the whole file
        except OSError:  # a read-only or full cache folder only costs the next run a rebuild
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return program


def sparse_program_of_file(path: str | Path) -> SparseProgram:
    """:func:`sparse_program` of the model in ``path``; when its sparse form is cached, the
    dense weights are never built (they take a second or two: 1.2 GB for the WASM machine)."""
    digest = file_digest(path)
    if digest is not None:
        program = _read_cached(_cache_path(digest))
        if program is not None:
            return program
    return sparse_program(CompiledModel.load(path))


def _cache_path(digest: str) -> Path:
    from rasp2d.cache import cache_dir
    here = Path(__file__).resolve().parent
    code = hashlib.sha256(b"".join((here / f).read_bytes() for f in _BUILDERS)).hexdigest()
    return cache_dir() / f"sparse-{digest[:20]}-{code[:12]}.pkl"


def _read_cached(path: Path) -> SparseProgram | None:
    try:
        with open(path, "rb") as fh:
            program = pickle.load(fh)
    except Exception:  # noqa: BLE001 - missing, truncated or from other code: rebuild it
        return None
    return program if isinstance(program, SparseProgram) else None


def build_sparse_program(model: CompiledModel) -> SparseProgram:
    model.validate()
    first = first_writes(model)
    ffn = plan_ffn(model)
    rows: list[np.ndarray] = [model.pos_embed[0], model.pos_embed[1]]
    layer_heads, layer_units, ties, origin = [0], [0], [], []
    modes, slots, kcoefs, pmaxes = [], [], [], []
    head_rows: list[np.ndarray] = []
    fold: list[np.ndarray] = []
    unit_layer_count = np.zeros(model.n_layers, dtype=np.int64)
    for ref in ffn.units:
        unit_layer_count[ref.layer] += 1
    for l in range(model.n_layers):
        attn_writes = np.zeros(model.d_model, dtype=bool)
        for h in range(model.n_heads):
            out = model.W_o[l, :, h, :]  # [d, 2]
            if not out.any():
                continue  # padding head: whatever it attends to, nothing is written
            attn_writes |= out.any(axis=1)
            head_rows += [model.W_q[l, h, 0], model.W_q[l, h, 1], model.W_k[l, h, 0],
                          model.W_k[l, h, 1], model.W_v[l, h, 0], model.W_v[l, h, 1],
                          out[:, 0], out[:, 1]]
            ties.append(int(model.tie[l, h]))
            origin.append((l, h))
            pk = _position_key(model, first, l, model.W_k[l, h])
            if pk is None:
                modes.append(HEAD_HULL)
                slots.append(-1)
                kcoefs.append(np.zeros((2, 3)))
                pmaxes.append(0.0)
            else:
                modes.append(HEAD_POSITION)
                slots.append(sum(1 for m in modes if m == HEAD_POSITION) - 1)
                kcoefs.append(pk[0])
                pmaxes.append(pk[1])
        layer_heads.append(len(ties))
        layer_units.append(layer_units[-1] + int(unit_layer_count[l]))
        ffn_writes = np.zeros(model.d_model, dtype=bool)
        fold += [np.flatnonzero(attn_writes), ffn_writes]  # FFN filled below
    unit_rows: list[np.ndarray] = []
    for i, ref in enumerate(ffn.units):
        out = model.W_out[ref.layer, :, ref.unit]
        unit_rows += [model.W_gate[ref.layer, ref.unit], model.W_val[ref.layer, ref.unit], out]
        fold[2 * ref.layer + 1] = fold[2 * ref.layer + 1] | (out != 0)
    for l in range(model.n_layers):
        fold[2 * l + 1] = np.flatnonzero(fold[2 * l + 1])
    target = _write_targets(model, ffn, head_rows, layer_heads, fold)
    fold = [dims[target[s, dims] >= model.d_model] for s, dims in enumerate(fold)]
    bases = np.array([len(rows), len(rows) + len(head_rows),
                      len(rows) + len(head_rows) + len(unit_rows)], dtype=np.int64)
    rows += head_rows + unit_rows
    ptr = np.zeros(len(rows) + 1, dtype=np.uint64)  # unsigned: no wraparound code
    idx_parts, val_parts = [], []
    sublayer = {}  # bank row -> the sublayer whose output it writes (out rows only)
    for l in range(model.n_layers):
        for g in range(layer_heads[l], layer_heads[l + 1]):
            sublayer[bases[0] + HEAD_ROWS * g + 6] = sublayer[bases[0] + HEAD_ROWS * g + 7] = 2 * l
    for u, ref in enumerate(ffn.units):
        sublayer[bases[1] + UNIT_ROWS * u + 2] = 2 * ref.layer + 1
    for r, row in enumerate(rows):
        nz = np.flatnonzero(row)
        idx_parts.append(target[sublayer[r], nz] if r in sublayer else nz)
        val_parts.append(row[nz])
        ptr[r + 1] = ptr[r] + nz.size
    ffn = _retarget_ffn(ffn, target)
    cat = lambda parts, dtype: (np.concatenate(parts).astype(dtype) if parts  # noqa: E731
                                else np.zeros(0, dtype=dtype))
    ucols = np.flatnonzero(model.unembed.any(axis=0))
    fold_ptr = np.zeros(2 * model.n_layers + 1, dtype=np.int64)
    for s, dims in enumerate(fold):
        fold_ptr[s + 1] = fold_ptr[s] + dims.size
    G = len(ties)
    ublock = np.ascontiguousarray(model.unembed[:, ucols].T, dtype=np.float64)
    return SparseProgram(
        d_model=model.d_model, n_layers=model.n_layers, vocab_size=len(model.vocab),
        embed=np.ascontiguousarray(model.embed, dtype=np.float64),
        ptr=ptr, idx=cat(idx_parts, np.uint32), val=cat(val_parts, np.float64), bases=bases,
        layer_heads=np.array(layer_heads, dtype=np.int64),
        layer_units=np.array(layer_units, dtype=np.int64),
        head_tie=np.array(ties, dtype=np.int64),
        head_origin=np.array(origin, dtype=np.int64).reshape(-1, 2),
        head_mode=np.array(modes, dtype=np.int64),
        head_slot=np.array(slots, dtype=np.int64),
        head_kcoef=np.array(kcoefs, dtype=np.float64).reshape(G, 2, 3),
        head_pmax=np.array(pmaxes, dtype=np.float64),
        fold_ptr=fold_ptr, fold_idx=cat(fold, np.int64),
        ucols=ucols.astype(np.int64),
        ublock=ublock, uhull=unembed_hull(ublock), ffn=ffn,
    )


def _write_targets(model: CompiledModel, ffn: FfnPlan, head_rows: list[np.ndarray],
                   layer_heads: list[int], fold: list[np.ndarray]) -> np.ndarray:
    """``[2L, d]``: where sublayer ``s``'s writes to dimension ``o`` go in the step's ``[2d]``
    buffer: ``o`` (straight into the residual stream ``x``, its first half) or ``d + o`` (into
    ``delta``, added to ``x`` when the sublayer ends).

    Why: folding ``delta`` into ``x`` after every sublayer was ~12% of a WASM-machine token.
    A write may skip it when nothing in the sublayer reads the dimension (no reader sees a
    half-updated ``x``) and the manifest says a new value starts there (the dimension is then
    exactly 0 before the sublayer, so ``0 + a + b`` is bit for bit ``0 + (a + b)`` whatever
    the order of the writers).  Models without a manifest fold everything."""
    d, L = model.d_model, model.n_layers
    target = np.tile(np.arange(d, 2 * d, dtype=np.int64), (2 * L, 1))
    fresh = np.zeros((2 * L, d), dtype=bool)
    for slot in model.manifest.residual:
        if 1 <= slot.first_stage <= 2 * L:
            fresh[slot.first_stage - 1, slot.dim] = True
    read = np.zeros((2 * L, d), dtype=bool)
    for l in range(L):
        for g in range(layer_heads[l], layer_heads[l + 1]):
            for j in range(6):  # q0 q1 k0 k1 v0 v1
                read[2 * l] |= head_rows[HEAD_ROWS * g + j] != 0
    for ref in ffn.units:
        read[2 * ref.layer + 1] |= (model.W_gate[ref.layer, ref.unit] != 0) | \
            (model.W_val[ref.layer, ref.unit] != 0)
    for s, dims in enumerate(fold):
        direct = dims[fresh[s, dims] & ~read[s, dims]]
        target[s, direct] = direct
    return target


def _retarget_ffn(ffn: FfnPlan, target: np.ndarray) -> FfnPlan:
    """The plan's output dimensions (table entries, folded constants, moves) as targets in the
    step's ``[2d]`` buffer (see :func:`_write_targets`), by the layer that writes them."""
    ent_dim, z_dim, zl_dim, mv_dst = (np.full_like(a, -1) for a in (
        ffn.ent_dim, ffn.z_dim, ffn.zl_dim, ffn.mv_dst))
    for l in range(len(ffn.layer_groups) - 1):
        t = target[2 * l + 1]
        for g in range(ffn.layer_groups[l], ffn.layer_groups[l + 1]):
            # the group's intervals bp_ptr[g] + g ... bp_ptr[g + 1] + g, their entries
            e = slice(ffn.iv_ptr[ffn.bp_ptr[g] + g], ffn.iv_ptr[ffn.bp_ptr[g + 1] + g + 1])
            ent_dim[e] = t[ffn.ent_dim[e]]
            z = slice(ffn.z_ptr[g], ffn.z_ptr[g + 1])
            z_dim[z] = t[ffn.z_dim[z]]
        zl = slice(ffn.zl_ptr[l], ffn.zl_ptr[l + 1])
        zl_dim[zl] = t[ffn.zl_dim[zl]]
        mv = slice(ffn.mv_ptr[ffn.wake_ptr[l]], ffn.mv_ptr[ffn.wake_ptr[l + 1]])
        mv_dst[mv] = t[ffn.mv_dst[mv]]
    if any((a < 0).any() for a in (ent_dim, z_dim, zl_dim, mv_dst)):  # a write left unplaced
        raise AssertionError("FfnPlan layout changed: an output entry belongs to no layer")
    return replace(ffn, ent_dim=ent_dim, z_dim=z_dim, zl_dim=zl_dim, mv_dst=mv_dst)
