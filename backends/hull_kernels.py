"""All jitted code of the hull runtime: exact predicates, treap-backed hull chains, the brute
scan, and the per-token decoding step that inlines them.

Why one module: numba's on-disk cache (``cache=True``) is invalidated only when the file
*defining* a function changes, not when a function it inlines from another file changes.
Keeping every jitted function that is inlined into the decoding step in this one file means
an edit here can never leave a stale compiled step behind.  Hot helpers are inlined at
numba-IR level (``inline='always'``) and compiled without reference counting
(``_nrt=False``: they never allocate), which removes the per-call cost of passing arrays.

Hard-max attention with 2-dimensional keys asks, for a query direction ``q``, which keys
maximise ``q . k``.  Those keys all lie on one face of the keys' convex hull (a vertex or an
edge), so only hull points need to be kept and a query is a search along the hull's upper
chain (``q_y > 0``) or lower chain (``q_y < 0``).  :mod:`rasp2d.backends.hull_cache` wraps
the head operations for Python callers; :mod:`rasp2d.backends.hull_runtime` drives
:func:`decode_loop`.

Storage ("pool"): all heads of a model share one pool of plain arrays, so a whole decoding
step is one jitted function and memory is recycled across heads.

* ``nodes`` int32 ``[cap, 7]``: one row per chain node: left, right, parent (treap links),
  prev, next (chain order), point id, priority.  Each chain is a treap (a randomised
  binary search tree: expected depth O(log h)) ordered lexicographically by ``(x, y)``,
  threaded by prev/next so neighbours are O(1).
* ``points`` float64 ``[cap, 5]``: one row per distinct hull point: x, y and its running
  statistics: ``latest`` heads keep (time, v0, v1) of the point's most recent insertion,
  ``average`` heads keep (count, sum v0, sum v1).  Many identical keys therefore cost O(1)
  memory and O(1) or O(log h) time.
* ``point_info`` int32 ``[cap, 2]``: how many chains hold the point (0, 1 or 2), free-list link.
* ``head_i`` int64 ``[heads, 10]``: per chain root/first/last node and the last answer node
  (a finger: slowly moving answers cost O(1)), the last point touched (a fast path for
  repeated keys), the tie rule.
* ``head_f`` float64 ``[heads, 8]``: whole-head statistics (the answer to the zero query, for
  which every key ties), max |k_x|, max |k_y|, sum |v0|, sum |v1| (exactness guards).
* ``meta`` int64 ``[8]``: allocation high-water marks, free lists, PRNG state, live counts.

Exactness.  Keys and queries must be integers (float64 holding an integer) with
``|k| <= 2^52``, and every score ``q . k`` must be exact: the kernels check
``|q_x| max|k_x| + |q_y| max|k_y| < 2^53`` per query, which makes every product and sum in a
score an exactly representable integer.  Under that contract comparing scores with ``==`` and
``<=`` is exact, so ties are exact equality, as the machine semantics demand (the compiler
only emits integer keys, e.g. ``(2k, -k^2)`` with ``|k| <= 2^25``).  Hull maintenance needs the
sign of ``(a - o) x (b - o)``: coordinate differences are exact (integers of magnitude
``<= 2^53``) but their products are not, so :func:`orient` compares the two products with a
float filter (rounding is monotone, so different rounded products decide the comparison)
and, on equal rounded products, compares their exact rounding errors (Dekker's two-product).
Averages need exact sums: ``average`` heads require integer values with running sums of
``|v|`` below ``2^53``.  Violations are reported as error codes, never approximated.

Costs (h = distinct points on the hull, k = distinct points on the maximising face):
query O(log h + k) expected: O(1) + k when the answer is the previous answer or its
successor (look-ups of position i - c, stack tops, running maxima), else a finger search
from the chain's end, O(log d) expected for an answer d nodes from the end.  Insert:
expected amortised O(log h) (a search, O(1) expected rotations, and each point leaves a
chain at most once); O(1) when the key is beyond the chain's end (keys growing with the
position) or equals the head's previous key.  Memory: one point row (40 B + 8 B) per
distinct hull point plus one node row (28 B) per chain holding it; keys strictly inside
the hull cost nothing.  Treap priorities come from a fixed-seed xorshift, so runs repeat.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# node columns
LEFT, RIGHT, PARENT, PREV, NEXT, PT, PRIO = 0, 1, 2, 3, 4, 5, 6
NODE_COLS = 7
# point columns: x, y and statistics A, B, C (latest: time, v0, v1; average: count, s0, s1)
PX, PY, PA, PB, PC = 0, 1, 2, 3, 4
POINT_COLS = 5
# point_info columns
REFS, FREE_LINK = 0, 1
# head_i columns: roots (chain 0 = upper, 1 = lower), first, last nodes, last point, tie
ROOT0, FIRST0, LAST0, LAST_POINT, TIE, FINGER0 = 0, 2, 4, 6, 7, 8
HEAD_I_COLS = 10
# head_f columns: whole-head statistics (as point columns A, B, C), guards, insert count
GA, GB, GC, MAX_KX, MAX_KY, SUM_ABS_V0, SUM_ABS_V1, N_INSERTS = 0, 1, 2, 3, 4, 5, 6, 7
HEAD_F_COLS = 8
# meta slots
NODE_HW, NODE_FREE, POINT_HW, POINT_FREE, RNG, NODES_LIVE, POINTS_LIVE = 0, 1, 2, 3, 4, 5, 6
META_LEN = 8

LATEST_TIE = 0  # rasp2d.backends.model_file.LATEST
AVERAGE_TIE = 1  # rasp2d.backends.model_file.AVERAGE

EXACT_HALF = 2.0 ** 52  # CHANNEL tables' bound: 2^53 with room for the check's rounding
KEY_LIMIT = 2.0 ** 52  # |key coordinate| bound: differences stay exact integers
SCORE_LIMIT = 2.0 ** 53  # strict bound on |q_x k_x| + |q_y k_y|: scores are exact integers

# error codes (0 = fine); hull_cache.ERROR_TEXT words them for users
OK = 0
ERR_KEY_NOT_INTEGER = 1
ERR_KEY_RANGE = 2
ERR_QUERY_NOT_INTEGER = 3
ERR_SCORE_RANGE = 4
ERR_VALUE_NOT_INTEGER = 5
ERR_SUM_RANGE = 6
ERR_CAPACITY = 7

# row bank layout of rasp2d.backends.sparse_program (defined here: the jitted step reads it)
HEADS, UNITS, UNEMBED = 0, 1, 2  # index into `bases`
HEAD_ROWS = 8  # q0 q1 k0 k1 v0 v1 out0 out1
UNIT_ROWS = 3  # gate value out
# head modes of the decoding step (rasp2d.backends.sparse_program decides)
HEAD_HULL, HEAD_POSITION = 0, 1
# FFN group kinds (rasp2d.backends.hull_ffn_plan: TABLE, SELECT, FAMILY, LINEAR, CHANNEL)
GROUP_TABLE, GROUP_SELECT, GROUP_FAMILY, GROUP_LINEAR, GROUP_CHANNEL = 0, 1, 2, 3, 4
# decode_loop status codes
DONE, NEED_ROOM, FAILED = 0, 1, 2
# An array index known to be >= 0 is cast to this: numba adds a negative-index wraparound (a
# sign test and an add, with the array's length reloaded from the stack in this big function)
# to every signed index, and in the FFN's short loops that was about a fifth of the step
# (sudoku.c 1.25x from the FFN's indices, measured side by side in one process).
_U = np.uint64

_SPLITTER = 134217729.0  # 2^27 + 1, Veltkamp splitting constant


# ----------------------------------------------------------------------------- predicates
@njit(cache=True, _nrt=False, inline='always')
def _product_error(a, b, p):
    """Exact ``a*b - p`` for ``p = fl(a*b)`` (Dekker's two-product, no FMA needed)."""
    c = _SPLITTER * a
    ah = c - (c - a)
    al = a - ah
    c = _SPLITTER * b
    bh = c - (c - b)
    bl = b - bh
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(cache=True, _nrt=False, inline='always')
def compare_products(a, b, c, d):
    """Sign of ``a*b - c*d``, exact for finite doubles below ~2^996 in magnitude."""
    p = a * b
    q = c * d
    if p > q:
        return 1
    if p < q:
        return -1
    e = _product_error(a, b, p)
    f = _product_error(c, d, q)
    if e > f:
        return 1
    if e < f:
        return -1
    return 0


@njit(cache=True, _nrt=False, inline='always')
def orient(ox, oy, ax, ay, bx, by):
    """Sign of the cross product ``(a - o) x (b - o)``: +1 left turn, -1 right turn, 0 collinear.

    Exact when the coordinate differences are exact (integers with ``|coord| <= 2^52``)."""
    return compare_products(ax - ox, by - oy, ay - oy, bx - ox)


# ----------------------------------------------------------------------------- allocation
@njit(cache=True, _nrt=False, inline='always')
def _alloc_node(nodes, meta):
    x = meta[NODE_FREE]
    if x != -1:
        meta[NODE_FREE] = nodes[x, NEXT]
    else:
        x = meta[NODE_HW]
        meta[NODE_HW] = x + 1
    meta[NODES_LIVE] += 1
    s = meta[RNG]  # xorshift32: treap priorities, deterministic across runs
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    meta[RNG] = s
    nodes[x, LEFT] = -1
    nodes[x, RIGHT] = -1
    nodes[x, PARENT] = -1
    nodes[x, PREV] = -1
    nodes[x, NEXT] = -1
    nodes[x, PT] = -1
    nodes[x, PRIO] = s >> 1
    return x


@njit(cache=True, _nrt=False, inline='always')
def _free_node(nodes, meta, x):
    nodes[x, PT] = -1
    nodes[x, NEXT] = meta[NODE_FREE]
    meta[NODE_FREE] = x
    meta[NODES_LIVE] -= 1


@njit(cache=True, _nrt=False, inline='always')
def _alloc_point(points, point_info, meta):
    p = meta[POINT_FREE]
    if p != -1:
        meta[POINT_FREE] = point_info[p, FREE_LINK]
    else:
        p = meta[POINT_HW]
        meta[POINT_HW] = p + 1
    meta[POINTS_LIVE] += 1
    point_info[p, REFS] = 0
    point_info[p, FREE_LINK] = -1
    return p


@njit(cache=True, _nrt=False, inline='always')
def _release_point(point_info, head_i, meta, g, p):
    """Drop one chain's reference to point ``p`` of head ``g``; free it when no chain holds it."""
    point_info[p, REFS] -= 1
    if point_info[p, REFS] == 0:
        point_info[p, FREE_LINK] = meta[POINT_FREE]
        meta[POINT_FREE] = p
        meta[POINTS_LIVE] -= 1
        if head_i[g, LAST_POINT] == p:
            head_i[g, LAST_POINT] = -1


@njit(cache=True, _nrt=False, inline='always')
def has_room(nodes, points, meta, n_heads):
    """True when one insertion into each of ``n_heads`` heads cannot run out of pool rows."""
    return (meta[NODE_HW] + 2 * n_heads <= nodes.shape[0]
            and meta[POINT_HW] + n_heads <= points.shape[0])


# ----------------------------------------------------------------------------- treap
@njit(cache=True, _nrt=False, inline='always')
def _rotate_up(nodes, head_i, g, c, x):
    """Rotate ``x`` above its parent, keeping the in-order (chain) sequence."""
    p = nodes[x, PARENT]
    gp = nodes[p, PARENT]
    if nodes[p, LEFT] == x:
        b = nodes[x, RIGHT]
        nodes[p, LEFT] = b
        if b != -1:
            nodes[b, PARENT] = p
        nodes[x, RIGHT] = p
    else:
        b = nodes[x, LEFT]
        nodes[p, RIGHT] = b
        if b != -1:
            nodes[b, PARENT] = p
        nodes[x, LEFT] = p
    nodes[p, PARENT] = x
    nodes[x, PARENT] = gp
    if gp == -1:
        head_i[g, ROOT0 + c] = x
    elif nodes[gp, LEFT] == p:
        nodes[gp, LEFT] = x
    else:
        nodes[gp, RIGHT] = x


@njit(cache=True, _nrt=False, inline='always')
def _link(nodes, head_i, g, c, x, pred, succ):
    """Insert node ``x`` between chain neighbours ``pred`` and ``succ`` (either may be -1)."""
    if head_i[g, ROOT0 + c] == -1:
        head_i[g, ROOT0 + c] = x
    elif pred != -1 and nodes[pred, RIGHT] == -1:
        nodes[pred, RIGHT] = x
        nodes[x, PARENT] = pred
    else:  # succ is then the leftmost node of pred's right subtree: its left is free
        nodes[succ, LEFT] = x
        nodes[x, PARENT] = succ
    nodes[x, PREV] = pred
    nodes[x, NEXT] = succ
    if pred != -1:
        nodes[pred, NEXT] = x
    else:
        head_i[g, FIRST0 + c] = x
    if succ != -1:
        nodes[succ, PREV] = x
    else:
        head_i[g, LAST0 + c] = x
    while nodes[x, PARENT] != -1 and nodes[x, PRIO] > nodes[nodes[x, PARENT], PRIO]:
        _rotate_up(nodes, head_i, g, c, x)


@njit(cache=True, _nrt=False, inline='always')
def _unlink(nodes, point_info, head_i, meta, g, c, x):
    """Remove node ``x`` from chain ``c`` of head ``g`` and release its point."""
    while True:
        l = nodes[x, LEFT]
        r = nodes[x, RIGHT]
        if l == -1 and r == -1:
            break
        if l == -1:
            ch = r
        elif r == -1:
            ch = l
        elif nodes[l, PRIO] > nodes[r, PRIO]:
            ch = l
        else:
            ch = r
        _rotate_up(nodes, head_i, g, c, ch)
    p = nodes[x, PARENT]
    if p == -1:
        head_i[g, ROOT0 + c] = -1
    elif nodes[p, LEFT] == x:
        nodes[p, LEFT] = -1
    else:
        nodes[p, RIGHT] = -1
    a = nodes[x, PREV]
    b = nodes[x, NEXT]
    if a != -1:
        nodes[a, NEXT] = b
    else:
        head_i[g, FIRST0 + c] = b
    if b != -1:
        nodes[b, PREV] = a
    else:
        head_i[g, LAST0 + c] = a
    if head_i[g, FINGER0 + c] == x:
        head_i[g, FINGER0 + c] = -1
    _release_point(point_info, head_i, meta, g, nodes[x, PT])
    _free_node(nodes, meta, x)


@njit(cache=True, _nrt=False, inline='always')
def _locate(nodes, points, head_i, g, c, x, y):
    """Chain neighbours of ``(x, y)``: (last node < it, first node >= it), lexicographically."""
    last = head_i[g, LAST0 + c]
    if last == -1:
        return -1, -1
    p = nodes[last, PT]
    if points[p, PX] < x or (points[p, PX] == x and points[p, PY] < y):
        return last, -1  # appends (keys growing with position) skip the descent
    pred = -1
    succ = -1
    n = head_i[g, ROOT0 + c]
    while n != -1:
        p = nodes[n, PT]
        if points[p, PX] < x or (points[p, PX] == x and points[p, PY] < y):
            pred = n
            n = nodes[n, RIGHT]
        else:
            succ = n
            n = nodes[n, LEFT]
    return pred, succ


@njit(cache=True, _nrt=False, inline='always')
def _accepts(nodes, points, pred, succ, x, y, sign):
    """Does the chain keep a new point between ``pred`` and ``succ``?

    The upper chain (sign +1) turns clockwise: a point making a strict left turn with its
    neighbours lies strictly below the chain and can never be a maximiser for a query that
    uses this chain.  Collinear points are kept: they tie on a perpendicular query."""
    if pred == -1 or succ == -1:
        return True  # a new lexicographic extreme is always on the hull
    pa = nodes[pred, PT]
    pb = nodes[succ, PT]
    return sign * orient(points[pa, PX], points[pa, PY], x, y, points[pb, PX], points[pb, PY]) <= 0


@njit(cache=True, _nrt=False, inline='always')
def _chain_insert(nodes, points, point_info, head_i, meta, g, c, pred, succ, p):
    """Link point ``p`` into chain ``c`` between ``pred`` and ``succ``, then unlink the
    neighbours it buries (strictly inside the new chain), first on the left, then on the right.

    Every helper has a single call site, so inlining them all stays cheap to compile."""
    sign = 1 if c == 0 else -1
    x = _alloc_node(nodes, meta)
    nodes[x, PT] = p
    point_info[p, REFS] += 1
    _link(nodes, head_i, g, c, x, pred, succ)
    px = points[p, PX]
    py = points[p, PY]
    side = 0
    while side < 2:
        a = nodes[x, PREV + side]  # PREV, then NEXT
        b = -1 if a == -1 else nodes[a, PREV + side]
        if b == -1:
            side += 1
            continue
        pa = nodes[a, PT]
        pb = nodes[b, PT]
        if side == 0:  # turn b -> a -> p
            ox, oy, ux, uy, wx, wy = points[pb, PX], points[pb, PY], points[pa, PX], points[pa, PY], px, py
        else:  # turn p -> a -> b
            ox, oy, ux, uy, wx, wy = px, py, points[pa, PX], points[pa, PY], points[pb, PX], points[pb, PY]
        if sign * orient(ox, oy, ux, uy, wx, wy) <= 0:
            side += 1
            continue
        _unlink(nodes, point_info, head_i, meta, g, c, a)


# ----------------------------------------------------------------------------- head API
@njit(cache=True, _nrt=False)
def init_head(head_i, head_f, g, tie):
    for j in range(HEAD_I_COLS):
        head_i[g, j] = -1
    head_i[g, TIE] = tie
    for j in range(HEAD_F_COLS):
        head_f[g, j] = 0.0
    if tie == LATEST_TIE:
        head_f[g, GA] = -1.0


@njit(cache=True, _nrt=False, inline='always')
def _update_point(points, p, tie, v0, v1, t):
    if tie == LATEST_TIE:
        points[p, PA] = t
        points[p, PB] = v0
        points[p, PC] = v1
    else:
        points[p, PA] += 1.0
        points[p, PB] += v0
        points[p, PC] += v1


@njit(cache=True, _nrt=False, inline='always')
def _count_insert(head_i, head_f, g, kx, ky, v0, v1, t):
    """The exactness checks of an insertion and the whole-head statistics it updates (the
    answer to a query every key ties on, and the guards of later queries); shared by hull
    heads and position heads.  Returns an error code; on error nothing is changed."""
    if kx != math.floor(kx) or ky != math.floor(ky):
        return ERR_KEY_NOT_INTEGER
    ax = abs(kx)
    ay = abs(ky)
    if ax > KEY_LIMIT or ay > KEY_LIMIT:
        return ERR_KEY_RANGE
    tie = head_i[g, TIE]
    if tie == AVERAGE_TIE:
        if v0 != math.floor(v0) or v1 != math.floor(v1):
            return ERR_VALUE_NOT_INTEGER
        s0 = head_f[g, SUM_ABS_V0] + abs(v0)
        s1 = head_f[g, SUM_ABS_V1] + abs(v1)
        if not (s0 < SCORE_LIMIT and s1 < SCORE_LIMIT):
            return ERR_SUM_RANGE
        head_f[g, SUM_ABS_V0] = s0
        head_f[g, SUM_ABS_V1] = s1
    if ax > head_f[g, MAX_KX]:
        head_f[g, MAX_KX] = ax
    if ay > head_f[g, MAX_KY]:
        head_f[g, MAX_KY] = ay
    head_f[g, N_INSERTS] += 1.0
    if tie == LATEST_TIE:
        head_f[g, GA] = t
        head_f[g, GB] = v0
        head_f[g, GC] = v1
    else:
        head_f[g, GA] += 1.0
        head_f[g, GB] += v0
        head_f[g, GC] += v1
    return OK


@njit(cache=True, _nrt=False, inline='always')
def hull_insert(nodes, points, point_info, head_i, head_f, meta, g, kx, ky, v0, v1, t):
    """Insert key ``(kx, ky)`` with value ``(v0, v1)`` at time ``t`` into head ``g``.

    Returns an error code (0 = fine).  The caller guarantees room (:func:`has_room`)."""
    if nodes.shape[0] - meta[NODE_HW] < 2 or points.shape[0] - meta[POINT_HW] < 1:
        return ERR_CAPACITY
    code = _count_insert(head_i, head_f, g, kx, ky, v0, v1, t)
    if code != OK:
        return code
    tie = head_i[g, TIE]
    lp = head_i[g, LAST_POINT]
    if lp != -1 and points[lp, PX] == kx and points[lp, PY] == ky:
        _update_point(points, lp, tie, v0, v1, t)
        return OK
    # neighbours in both chains; a key already stored in either is just counted again
    pred0 = succ0 = pred1 = succ1 = -1
    for c in range(2):
        pred, succ = _locate(nodes, points, head_i, g, c, kx, ky)
        if succ != -1:
            p = nodes[succ, PT]
            if points[p, PX] == kx and points[p, PY] == ky:
                _update_point(points, p, tie, v0, v1, t)
                head_i[g, LAST_POINT] = p
                return OK
        if c == 0:
            pred0, succ0 = pred, succ
        else:
            pred1, succ1 = pred, succ
    up = _accepts(nodes, points, pred0, succ0, kx, ky, 1)
    lo = _accepts(nodes, points, pred1, succ1, kx, ky, -1)
    if not up and not lo:
        return OK  # strictly inside the hull: never a maximiser of a non-zero query
    p = _alloc_point(points, point_info, meta)
    points[p, PX] = kx
    points[p, PY] = ky
    points[p, PA] = t if tie == LATEST_TIE else 1.0
    points[p, PB] = v0
    points[p, PC] = v1
    for c in range(2):
        if (up if c == 0 else lo):
            _chain_insert(nodes, points, point_info, head_i, meta, g, c,
                          pred0 if c == 0 else pred1, succ0 if c == 0 else succ1, p)
    head_i[g, LAST_POINT] = p
    return OK


@njit(cache=True, _nrt=False, inline='always')
def _is_top(nodes, points, n, qx, qy):
    """Does the score stop rising after chain node ``n``?  False...False True...True along
    the chain; the first True node starts the maximising face."""
    nx = nodes[n, NEXT]
    if nx == -1:
        return True
    p = nodes[n, PT]
    p2 = nodes[nx, PT]
    return qx * points[p2, PX] + qy * points[p2, PY] <= qx * points[p, PX] + qy * points[p, PY]


@njit(cache=True, _nrt=False, inline='always')
def _search(nodes, points, head_i, g, c, qx, qy):
    """First node of chain ``c`` where the score stops rising.

    Finger search from the chain's end: climb the right spine while the answer can still
    lie left of the spine node, then descend.  Expected O(log d) for an answer d nodes from
    the end, at most ~2x a root descent otherwise."""
    a = head_i[g, LAST0 + c]
    n = head_i[g, ROOT0 + c]
    while True:
        par = nodes[a, PARENT]
        if par == -1:
            break
        pp = nodes[par, PT]
        pn = nodes[nodes[par, NEXT], PT]  # par is left of `a`, so it has a successor
        if qx * points[pn, PX] + qy * points[pn, PY] > qx * points[pp, PX] + qy * points[pp, PY]:
            n = nodes[par, RIGHT]  # scores still rise after par: the face is to its right
            break
        a = par
    best = -1
    while n != -1:
        p = nodes[n, PT]
        s = qx * points[p, PX] + qy * points[p, PY]
        nx = nodes[n, NEXT]
        if nx == -1:
            top = True
        else:
            p2 = nodes[nx, PT]
            top = qx * points[p2, PX] + qy * points[p2, PY] <= s
        if top:
            best = n
            n = nodes[n, LEFT]
        else:
            n = nodes[n, RIGHT]
    return best


@njit(cache=True, _nrt=False, inline='always')
def _face_value(nodes, points, best, tie, qx, qy):
    """Value of the face starting at chain node ``best``: its collinear run of equal scores."""
    p = nodes[best, PT]
    smax = qx * points[p, PX] + qy * points[p, PY]
    a = points[p, PA]
    b = points[p, PB]
    cc = points[p, PC]
    n = nodes[best, NEXT]
    while n != -1:  # the rest of the face: collinear points on a perpendicular edge
        p = nodes[n, PT]
        if qx * points[p, PX] + qy * points[p, PY] != smax:
            break
        if tie == LATEST_TIE:
            if points[p, PA] > a:
                a = points[p, PA]
                b = points[p, PB]
                cc = points[p, PC]
        else:
            a += points[p, PA]
            b += points[p, PB]
            cc += points[p, PC]
        n = nodes[n, NEXT]
    if tie == LATEST_TIE:
        return b, cc, OK
    return b / a, cc / a, OK


@njit(cache=True, _nrt=False, inline='always')
def _query_code(head_f, g, qx, qy):
    """The query's exactness contract: integer, and every score below 2^53."""
    if qx != math.floor(qx) or qy != math.floor(qy):
        return ERR_QUERY_NOT_INTEGER
    if not (abs(qx) * head_f[g, MAX_KX] + abs(qy) * head_f[g, MAX_KY] < SCORE_LIMIT):
        return ERR_SCORE_RANGE
    return OK


@njit(cache=True, _nrt=False, inline='always')
def _all_tie(head_f, g, tie):
    """Answer when every key ties: the latest value, or the mean of all of them."""
    if tie == LATEST_TIE:
        return head_f[g, GB], head_f[g, GC], OK
    return head_f[g, GB] / head_f[g, GA], head_f[g, GC] / head_f[g, GA], OK


@njit(cache=True, _nrt=False, inline='always')
def hull_query(nodes, points, head_i, head_f, g, qx, qy):
    """Value of head ``g`` for query direction ``(qx, qy)``: ``(o0, o1, error code)``."""
    code = _query_code(head_f, g, qx, qy)
    if code != OK:
        return 0.0, 0.0, code
    tie = head_i[g, TIE]
    if qx == 0.0 and qy == 0.0:  # every key scores 0: all of them tie
        return _all_tie(head_f, g, tie)
    # Along the chain that holds the face in direction q, scores rise strictly, stay level
    # on the face, then fall strictly.  Find the first node whose successor is not higher.
    c = 0 if (qy > 0.0 or (qy == 0.0 and qx < 0.0)) else 1
    best = -1
    f = head_i[g, FINGER0 + c]
    if f != -1:  # the previous answer or its successor (look-ups of i - c, stacks, maxima)
        if _is_top(nodes, points, f, qx, qy):
            pr = nodes[f, PREV]
            if pr == -1 or not _is_top(nodes, points, pr, qx, qy):
                best = f
        elif _is_top(nodes, points, nodes[f, NEXT], qx, qy):
            best = nodes[f, NEXT]
    if best == -1:
        best = _search(nodes, points, head_i, g, c, qx, qy)
    head_i[g, FINGER0 + c] = best
    return _face_value(nodes, points, best, tie, qx, qy)


# ----------------------------------------------------------------------------- brute force
@njit(cache=True, _nrt=False, fastmath={'nnan', 'nsz'})
def _brute_max(keys, g, n, qx, qy):
    """Largest score (scores must be finite: ``nnan`` lets the max loop vectorise)."""
    best = -np.inf
    for j in range(n):
        best = max(best, qx * keys[g, 0, j] + qy * keys[g, 1, j])
    return best


@njit(cache=True, _nrt=False, fastmath={'nnan', 'nsz', 'reassoc'})
def _brute_tie_sums(keys, values, g, n, qx, qy, best):
    """Count and value sums of the maximisers.  ``reassoc`` reorders the sums, which the
    machine semantics allow: averaged values are integers, so every order is exact."""
    cnt = 0.0
    s0 = 0.0
    s1 = 0.0
    for j in range(n):
        hit = qx * keys[g, 0, j] + qy * keys[g, 1, j] == best
        cnt += 1.0 if hit else 0.0
        s0 += values[g, 0, j] if hit else 0.0
        s1 += values[g, 1, j] if hit else 0.0
    return cnt, s0, s1


@njit(cache=True, _nrt=False, inline='always')
def brute_query(keys, values, g, n, qx, qy, tie):
    """Hard-max over the first ``n`` entries of head ``g``: every score computed, maximisers
    by equality.  ``keys``/``values`` are ``[G, 2, cap]`` (component-major so the scans
    vectorise), entries in time order.  Returns ``(o0, o1)``."""
    best = _brute_max(keys, g, n, qx, qy)
    if tie == LATEST_TIE:
        for j in range(n - 1, -1, -1):  # the last maximiser in time order
            if qx * keys[g, 0, j] + qy * keys[g, 1, j] == best:
                return values[g, 0, j], values[g, 1, j]
    cnt, s0, s1 = _brute_tie_sums(keys, values, g, n, qx, qy, best)
    return s0 / cnt, s1 / cnt


# ----------------------------------------------------------------------------- position heads
@njit(cache=True, _nrt=False, inline='always')
def _position_score(kcoef, g, qx, qy, j):
    """Exact score of position ``j``: its key ``k[c,0] + k[c,1] j + k[c,2] j^2`` is an integer
    below 2^52 (``j <= head_pmax``), the product with the query is exact by the score guard."""
    fj = float(j)
    jj = fj * fj
    k0 = kcoef[g, 0, 0] + kcoef[g, 0, 1] * fj + kcoef[g, 0, 2] * jj
    k1 = kcoef[g, 1, 0] + kcoef[g, 1, 1] * fj + kcoef[g, 1, 2] * jj
    return qx * k0 + qy * k1


@njit(cache=True, _nrt=False, inline='always')
def _not_rising(kcoef, g, qx, qy, i, m):
    return m >= i or _position_score(kcoef, g, qx, qy, m + 1) <= _position_score(kcoef, g, qx, qy, m)


@njit(cache=True, _nrt=False, inline='always')
def _exc_slot(exc_keys, key):
    """Probe start of ``key`` in the open-addressing table of wide values (power-of-two size)."""
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(h >> np.uint64(20)) & (exc_keys.shape[0] - 1)


@njit(cache=True, _nrt=False, inline='always')
def exc_put(exc_keys, exc_vals, exc_meta, key, v0, v1):
    """Store a value pair that float32 cannot hold exactly (linear probing; the caller keeps
    the table at most half full, see :func:`has_exc_room`)."""
    mask = exc_keys.shape[0] - 1
    j = _exc_slot(exc_keys, key)
    while exc_keys[j] != -1 and exc_keys[j] != key:
        j = (j + 1) & mask
    if exc_keys[j] == -1:
        exc_meta[0] += 1
    exc_keys[j] = key
    exc_vals[j, 0] = v0
    exc_vals[j, 1] = v1


@njit(cache=True, _nrt=False, inline='always')
def has_exc_room(exc_keys, exc_meta, n_heads):
    """Room for one more token's worth of wide values with the table still half empty."""
    return 2 * (exc_meta[0] + n_heads) <= exc_keys.shape[0]


@njit(cache=True, _nrt=False)
def exc_rehash(old_keys, old_vals, exc_keys, exc_vals, exc_meta):
    """Move every entry of the old table into the fresh (larger, all -1) one."""
    exc_meta[0] = 0
    for j in range(old_keys.shape[0]):
        if old_keys[j] != -1:
            exc_put(exc_keys, exc_vals, exc_meta, old_keys[j], old_vals[j, 0], old_vals[j, 1])


@njit(cache=True, _nrt=False, inline='always')
def _popcount(w):
    """Set bits of a uint64 (SWAR: no branch, no table)."""
    w = w - ((w >> np.uint64(1)) & np.uint64(0x5555555555555555))
    w = (w & np.uint64(0x3333333333333333)) + ((w >> np.uint64(2)) & np.uint64(0x3333333333333333))
    w = (w + (w >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((w * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, _nrt=False, inline='always')
def position_begin(pmask, poff, pmeta, t):
    """Open position ``t``'s row of the packed value store (before any head inserts)."""
    for j in range(pmask.shape[1]):
        pmask[t, j] = np.uint64(0)
    poff[t] = pmeta[0]


@njit(cache=True, _nrt=False, inline='always')
def _store_put(pmask, pstore, pmeta, t, bit, v):
    """Append value ``v`` (float32) as entry ``bit`` of position ``t``; zeros are not stored."""
    if v != 0.0:  # (NaN, the wide-pair mark, is stored)
        pmask[t, bit >> 6] |= np.uint64(1) << np.uint64(bit & 63)
        pstore[pmeta[0]] = v
        pmeta[0] += 1


@njit(cache=True, _nrt=False, inline='always')
def _store_get(pmask, poff, pstore, m, bit):
    """Entry ``bit`` of position ``m``: 0 unless its mask bit is set, else the stored value at
    the position's offset plus the number of set bits below it."""
    w = bit >> 6
    b = np.uint64(bit & 63)
    word = pmask[m, w]
    if (word >> b) & np.uint64(1) == np.uint64(0):
        return np.float32(0.0)
    k = poff[m] + _popcount(word & ((np.uint64(1) << b) - np.uint64(1)))
    for j in range(w):
        k += _popcount(pmask[m, j])
    return pstore[k]


@njit(cache=True, _nrt=False, inline='always')
def _pval(pmask, poff, pstore, exc_keys, exc_vals, slot, m):
    """Position ``m``'s value pair of position-head row ``slot``, exactly as inserted."""
    a = _store_get(pmask, poff, pstore, m, 2 * slot)
    if a != a:  # NaN marks a pair kept in the wide table
        mask = exc_keys.shape[0] - 1
        key = (np.int64(slot) << 40) + m
        j = _exc_slot(exc_keys, key)
        while exc_keys[j] != key:  # present: position_insert put it there
            j = (j + 1) & mask
        return exc_vals[j, 0], exc_vals[j, 1]
    return np.float64(a), np.float64(_store_get(pmask, poff, pstore, m, 2 * slot + 1))


@njit(cache=True, _nrt=False, inline='always')
def position_insert(pmask, poff, pstore, pmeta, exc_keys, exc_vals, exc_meta, slot, head_i,
                    head_f, pmax, g, kx, ky, v0, v1, t):
    """Record position ``t``'s value for a head whose keys are a function of the position.

    The store is packed per position: a bit mask (two bits per position head, one per value)
    says which values are non-zero, and only those are kept, as float32, in insertion order.
    Heads insert in row order, so a value's index is the position's offset plus the set bits
    below its own.  Most heads hold 0 at most positions (a flag, a byte read only at an
    anchor), so a position costs ~150 bytes instead of 8 per head.  A pair float32 cannot hold
    exactly (a NaN included) goes to the wide table instead, marked by NaN in both entries, so
    every value reads back bit for bit."""
    if t > pmax:
        return ERR_KEY_RANGE
    code = _count_insert(head_i, head_f, g, kx, ky, v0, v1, t)
    if code == OK:
        it = int(t)
        f0 = np.float32(v0)
        f1 = np.float32(v1)
        if not (f0 == v0 and f1 == v1):
            f0 = np.float32(np.nan)
            f1 = np.float32(np.nan)
            exc_put(exc_keys, exc_vals, exc_meta, (np.int64(slot) << 40) + it, v0, v1)
        _store_put(pmask, pstore, pmeta, it, 2 * slot, f0)
        _store_put(pmask, pstore, pmeta, it, 2 * slot + 1, f1)
    return code


@njit(cache=True, _nrt=False, inline='always')
def position_query(pmask, poff, pstore, exc_keys, exc_vals, slot, head_i, head_f, kcoef, g, qx, qy, i):
    """Hard-max over positions ``0..i`` of a head whose keys are a known quadratic curve of
    the position: O(1) expected, no hull.

    The score ``S(j) = q . k(j) = C + A j + B j^2`` is a quadratic in ``j``.  The signs of
    ``A`` and ``B`` are decided exactly (:func:`compare_products`).  ``B > 0``: the maximum is at
    an end, ``0`` or ``i``.  ``A = B = 0``: every position ties.  Otherwise the scores rise,
    may stay level for one step, then fall, so the answer is the first ``m`` with
    ``S(m + 1) <= S(m)``: a float estimate of the vertex is checked with exact scores, and a
    binary search on that predicate replaces it when it is off.  Ties (at most two
    positions when not all tie) follow the head's rule.  Returns ``(o0, o1, error code)``."""
    code = _query_code(head_f, g, qx, qy)
    if code != OK:
        return 0.0, 0.0, code
    tie = head_i[g, TIE]
    sb = compare_products(qx, kcoef[g, 0, 2], -qy, kcoef[g, 1, 2])
    sa = compare_products(qx, kcoef[g, 0, 1], -qy, kcoef[g, 1, 1])
    if sb == 0 and sa == 0:
        return _all_tie(head_f, g, tie)
    m2 = -1
    if i == 0:
        m = 0
    elif sb > 0:
        s0 = _position_score(kcoef, g, qx, qy, 0)
        si = _position_score(kcoef, g, qx, qy, i)
        if s0 > si:
            m = 0
        elif si > s0:
            m = i
        else:
            m = 0
            m2 = i
    else:
        b = qx * kcoef[g, 0, 2] + qy * kcoef[g, 1, 2]
        a = qx * kcoef[g, 0, 1] + qy * kcoef[g, 1, 1]
        if b < 0.0:
            v = -a / (2.0 * b)
            # The usual look-up (keys (2j, -j^2), query (q, 1)): the vertex is an exact
            # integer, so the scores rise strictly up to it and fall strictly after it, and
            # the answer is the vertex clamped to 0..i, with no tie.  v is that integer when
            # a and b are exact (their terms below 2^53) and |b| <= 2^20 (a quotient within
            # rounding of an integer, |v| < 2^32, is then that integer).
            if (v == math.floor(v) and -b <= 1048576.0 and abs(v) < 4294967296.0
                    and abs(qx) * abs(kcoef[g, 0, 1]) + abs(qy) * abs(kcoef[g, 1, 1]) < SCORE_LIMIT
                    and abs(qx) * abs(kcoef[g, 0, 2]) + abs(qy) * abs(kcoef[g, 1, 2]) < SCORE_LIMIT):
                m = 0 if v <= 0.0 else (i if v >= float(i) else int(v))
                o0, o1 = _pval(pmask, poff, pstore, exc_keys, exc_vals, slot, m)
                return o0, o1, OK
        else:
            v = float(i) if sa > 0 else 0.0
        if not v >= 0.0:  # also NaN
            m = 0
        elif v >= float(i):
            m = i
        else:
            m = int(v)
        if not (_not_rising(kcoef, g, qx, qy, i, m)
                and (m == 0 or not _not_rising(kcoef, g, qx, qy, i, m - 1))):
            lo = 0
            hi = i
            while lo < hi:
                mid = (lo + hi) >> 1
                if _not_rising(kcoef, g, qx, qy, i, mid):
                    hi = mid
                else:
                    lo = mid + 1
            m = lo
        if m < i and _position_score(kcoef, g, qx, qy, m + 1) == _position_score(kcoef, g, qx, qy, m):
            m2 = m + 1
    a0, a1 = _pval(pmask, poff, pstore, exc_keys, exc_vals, slot, m)
    if m2 == -1:
        return a0, a1, OK
    b0, b1 = _pval(pmask, poff, pstore, exc_keys, exc_vals, slot, m2)
    if tie == LATEST_TIE:
        return b0, b1, OK
    return (a0 + b0) / 2.0, (a1 + b1) / 2.0, OK


# ----------------------------------------------------------------------------- FFN
@njit(cache=True, _nrt=False, inline='always')
def _dot(ptr, idx, val, r, x):
    s = 0.0
    for e in range(ptr[r], ptr[r + 1]):
        s += val[e] * x[idx[e]]
    return s


@njit(cache=True, _nrt=False, inline='always')
def _scatter(ptr, idx, val, r, w, out):
    for e in range(ptr[r], ptr[r + 1]):
        out[idx[e]] += val[e] * w


@njit(cache=True, _nrt=False, inline='always')
def _count_le(arr, lo, hi, s):
    """How many of the sorted ``arr[lo:hi]`` are ``<= s``."""
    a = lo
    b = hi
    while a < b:
        mid = (a + b) >> 1
        if arr[_U(mid)] <= s:
            a = mid + 1
        else:
            b = mid
    return a - lo


@njit(cache=True, _nrt=False, inline='always')
def _unit(ptr, idx, val, ub, u, x, delta):
    """One ReGLU unit evaluated from its rows: the reference path."""
    r = ub + UNIT_ROWS * u
    gate = _dot(ptr, idx, val, r, x)
    if gate > 0.0:
        _scatter(ptr, idx, val, r + 2, gate * _dot(ptr, idx, val, r + 1, x), delta)


@njit(cache=True, _nrt=False, inline='always')
def _channels(g, s, x, delta, ptr, idx, val, ub, ffn):
    """CHANNEL group ``g``'s output for gate score ``s`` added to ``delta``; False (nothing
    added) when its exactness check fails (a value input is fractional, or large enough
    that a unit's terms could round), and the caller runs it as a SELECT group."""
    bp_ptr, bp, iv_ptr, ent_dim, ent_a, ent_b = ffn[9], ffn[10], ffn[11], ffn[12], ffn[13], ffn[14]
    ent_unit, iv_p, iv_q, ch_vptr, ch_vdim = ffn[45], ffn[46], ffn[47], ffn[48], ffn[49]
    m = 0.0
    ints = True
    for e in range(_U(ch_vptr[g]), _U(ch_vptr[g + _U(1)])):  # branch-free: most dims pass
        xj = x[_U(ch_vdim[e])]
        m = max(m, abs(xj))
        ints = ints & (xj == math.floor(xj))  # (False for NaN and infinities too)
    iv = _U(bp_ptr[g] + np.int64(g) + _count_le(bp, bp_ptr[g], bp_ptr[g + _U(1)], s))
    if not (ints and (iv_p[iv] * abs(s) + iv_q[iv]) * m < EXACT_HALF):
        return False
    last = -1
    vx = 0.0
    for e in range(_U(iv_ptr[iv]), _U(iv_ptr[iv + _U(1)])):
        u = ent_unit[e]
        if u != last:  # entries of one channel are adjacent: one value dot per channel
            vx = _dot(ptr, idx, val, ub + UNIT_ROWS * u + 1, x)
            last = u
        delta[_U(ent_dim[e])] += (s * ent_a[e] + ent_b[e]) * vx
    return True


@njit(cache=True, _nrt=False, inline='always')
def _group(g, x, delta, ptr, idx, val, ub, ffn):
    """Group ``g``'s output added to ``delta`` (see :mod:`rasp2d.backends.hull_ffn_plan`)."""
    (kind, bound, gunits, in_ptr, in_dim, in_w, bp_ptr, bp, iv_ptr, ent_dim, ent_a, ent_b,
     rise_ptr, rise_t, rise_unit, rise_a, rise_c, fall_ptr, fall_t, fall_unit, fall_a,
     fall_c) = ffn[3:25]
    s = 0.0
    tot = 0.0
    exact = True
    for e in range(_U(in_ptr[g]), _U(in_ptr[g + _U(1)])):
        xj = x[_U(in_dim[e])]
        if xj != math.floor(xj):
            exact = False
            break
        w = in_w[e]
        s += w * xj
        tot += abs(w) * abs(xj)
    if not (exact and tot <= bound[g]):  # the guard: unit by unit, as the rows say
        for u in range(gunits[g, 0], gunits[g, 1]):
            _unit(ptr, idx, val, ub, u, x, delta)
        z_ptr, z_dim, z_b = ffn[25:28]
        for e in range(z_ptr[g], z_ptr[g + _U(1)]):  # its share of the layer's constant
            delta[z_dim[e]] -= z_b[e]
    elif kind[g] == GROUP_TABLE:
        iv = _U(bp_ptr[g] + np.int64(g) + _count_le(bp, bp_ptr[g], bp_ptr[g + _U(1)], s))
        for e in range(_U(iv_ptr[iv]), _U(iv_ptr[iv + _U(1)])):
            delta[_U(ent_dim[e])] += s * ent_a[e] + ent_b[e]
    elif not (kind[g] == GROUP_CHANNEL and _channels(g, s, x, delta, ptr, idx, val, ub, ffn)):
        n = _count_le(rise_t, rise_ptr[g], rise_ptr[g + _U(1)], s)
        for e in range(_U(rise_ptr[g]), _U(rise_ptr[g] + n)):
            r = ub + UNIT_ROWS * rise_unit[e]
            gate = rise_a[e] * s + rise_c[e]
            _scatter(ptr, idx, val, r + 2, gate * _dot(ptr, idx, val, r + 1, x), delta)
        n = _count_le(fall_t, fall_ptr[g], fall_ptr[g + _U(1)], s)
        for e in range(_U(fall_ptr[g] + n), _U(fall_ptr[g + _U(1)])):
            r = ub + UNIT_ROWS * fall_unit[e]
            gate = fall_a[e] * s + fall_c[e]
            _scatter(ptr, idx, val, r + 2, gate * _dot(ptr, idx, val, r + 1, x), delta)


@njit(cache=True, _nrt=False, inline='always')
def _linear(g, x, delta, ptr, idx, val, ub, ffn):
    """LINEAR group ``g``: units of a constant gate ``c``, each ``out * (c * value . x)``,
    exactly what :func:`_unit` computes (its gate dot is ``c``)."""
    rise_ptr, rise_unit, rise_c = ffn[15], ffn[17], ffn[19]
    for e in range(_U(rise_ptr[g]), _U(rise_ptr[g + _U(1)])):
        r = ub + UNIT_ROWS * rise_unit[e]
        _scatter(ptr, idx, val, r + 2, rise_c[e] * _dot(ptr, idx, val, r + 1, x), delta)


@njit(cache=True, _nrt=False, inline='always')
def _family_past(fam_t, m0, n, lo, base, e, b):
    """How many members of a family (t sorted ascending from ``m0``) score ``s >= b``:
    ``s = base + t e`` rises with t when ``e > 0`` (a suffix), falls when ``e < 0`` (a
    prefix).  ``lo`` is the previous (lower) breakpoint's answer: the suffix can only start
    later and the prefix only end earlier, so the search starts there."""
    if e > 0.0:
        a = lo
        c = n
        while a < c:
            mid = (a + c) >> 1
            if base + fam_t[m0 + mid] * e >= b:
                c = mid
            else:
                a = mid + 1
        return a, n - a
    a = 0
    c = lo
    while a < c:
        mid = (a + c) >> 1
        if base + fam_t[m0 + mid] * e < b:
            c = mid
        else:
            a = mid + 1
    return a, a


@njit(cache=True, _nrt=False, inline='always')
def _family(g, x, delta, ffn):
    """FAMILY group ``g``'s output added to ``delta``; False when its guard fails (the
    caller then runs its members one by one).  See :mod:`rasp2d.backends.hull_ffn_plan`."""
    bound, in_ptr, in_dim, in_w, bp_ptr, bp, iv_ptr, ent_dim, ent_a, ent_b = (
        ffn[4], ffn[6], ffn[7], ffn[8], ffn[9], ffn[10], ffn[11], ffn[12], ffn[13], ffn[14])
    fam_mptr, fam_t, fam_tcum, fam_tptr, fam_rep, fam_ew, fam_cw = (
        ffn[37], ffn[39], ffn[40], ffn[41], ffn[42], ffn[43], ffn[44])
    base = 0.0
    e = 0.0
    guard = 0.0
    for q in range(in_ptr[g], in_ptr[g + _U(1)]):
        xj = x[in_dim[q]]
        if xj != math.floor(xj):
            return False
        base += in_w[q] * xj
        e += fam_ew[q] * xj
        guard += fam_cw[q] * abs(xj)
    if not guard <= bound[g]:
        return False
    m0 = fam_mptr[g]
    n = fam_mptr[g + _U(1)] - m0
    rep = fam_rep[g]
    b0 = bp_ptr[rep]
    nb = bp_ptr[rep + 1] - b0
    ivb = b0 + rep
    tc = fam_tptr[g]
    if e == 0.0:  # every member scores base
        k = _count_le(bp, b0, b0 + nb, base)
        cnt = float(n)
        ssum = cnt * base
        for q in range(iv_ptr[ivb + k], iv_ptr[ivb + k + 1]):
            delta[ent_dim[q]] += ent_a[q] * ssum + ent_b[q] * cnt
        return True
    prev = n  # members scoring at least the previous breakpoint (all, below the first)
    at = 0 if e > 0.0 else n  # the previous search's answer (suffix start / prefix length)
    for k in range(nb + 1):
        ge = 0
        if k < nb:
            at, ge = _family_past(fam_t, m0, n, at, base, e, bp[b0 + k])
        cnt = prev - ge
        if cnt > 0:
            if e > 0.0:
                lo = n - prev
                hi = n - ge
            else:
                lo = ge
                hi = prev
            fc = float(cnt)
            ssum = fc * base + (fam_tcum[tc + hi] - fam_tcum[tc + lo]) * e
            for q in range(iv_ptr[ivb + k], iv_ptr[ivb + k + 1]):
                delta[ent_dim[q]] += ent_a[q] * ssum + ent_b[q] * fc
        prev = ge
        if prev == 0:
            break
    return True


@njit(cache=True, _nrt=False, inline='always')
def ffn_layer(l, x, delta, ptr, idx, val, ub, ffn, stamp, tick):
    """Layer ``l``'s FFN output added to ``delta``: the folded tables' constant, the groups
    that add something at ``s = 0``, the groups one of whose inputs is non-zero (``stamp[0, g]
    = tick`` marks a group queued, so one woken through two dimensions runs once), and the
    generic units.  Groups run from one queue (``stamp[1]``), so each kind's code is inlined
    once; a FAMILY whose guard fails queues its members."""
    kind = ffn[3]
    lgeneric, generic = ffn[1], ffn[2]
    zl_ptr, zl_dim, zl_val = ffn[28:31]
    always_ptr, always, wake_ptr, wake_dim, wake_gptr, wake_groups = ffn[31:37]
    fam_mptr, fam_member = ffn[37], ffn[38]
    for e in range(_U(zl_ptr[l]), _U(zl_ptr[l + 1])):  # folded tables' output when inputs are zero
        delta[_U(zl_dim[e])] += zl_val[e]
    nq = 0
    for e in range(always_ptr[l], always_ptr[l + 1]):
        stamp[1, nq] = always[e]
        nq += 1
    mv_ptr, mv_dst, mv_k = ffn[50], ffn[51], ffn[52]
    for e in range(_U(wake_ptr[l]), _U(wake_ptr[l + 1])):
        xv = x[_U(wake_dim[e])]
        if xv != 0.0:  # (NaN too: the guard then sends it unit by unit)
            for m in range(_U(mv_ptr[e]), _U(mv_ptr[e + _U(1)])):  # copies and erasures, inline
                delta[_U(mv_dst[m])] += mv_k[m] * xv
            for f in range(_U(wake_gptr[e]), _U(wake_gptr[e + _U(1)])):
                g = wake_groups[f]
                if stamp[0, _U(g)] != tick:
                    stamp[0, _U(g)] = tick
                    stamp[1, _U(nq)] = g
                    nq += 1
    i = 0
    while i < nq:
        g = _U(stamp[1, _U(i)])
        i += 1
        if kind[g] == GROUP_LINEAR:
            _linear(g, x, delta, ptr, idx, val, ub, ffn)
        elif kind[g] != GROUP_FAMILY:
            _group(g, x, delta, ptr, idx, val, ub, ffn)
        elif not _family(g, x, delta, ffn):
            for f in range(fam_mptr[g], fam_mptr[g + _U(1)]):
                stamp[1, nq] = fam_member[f]
                nq += 1
    for e in range(lgeneric[l], lgeneric[l + 1]):
        _unit(ptr, idx, val, ub, generic[e], x, delta)


@njit(cache=True, _nrt=False, inline='always')
def _fold(fold_ptr, fold_idx, s, x, delta):
    """``x += delta`` over the dimensions sublayer ``s`` defers; ``delta`` is left zero.

    ``delta`` is the step's ``[2d]`` write buffer whose first half *is* ``x`` (a view): a
    sublayer writes a dimension nothing in it reads straight into ``x`` (target ``o``), the
    others into the second half (``d + o``), folded here (see
    :func:`rasp2d.backends.sparse_program._write_targets`)."""
    d = _U(x.shape[0])
    for e in range(_U(fold_ptr[s]), _U(fold_ptr[s + 1])):
        o = _U(fold_idx[e])
        x[o] += delta[d + o]
        delta[d + o] = 0.0


# ----------------------------------------------------------------------------- unembedding
@njit(cache=True, _nrt=False, inline='always')
def dense_logits(x, ucols, ublock, logits):
    """Every logit from the unembedding's non-zero columns (``logits`` overwritten)."""
    V = logits.shape[0]
    for t in range(V):
        logits[t] = 0.0
    for c in range(ucols.shape[0]):
        xc = x[ucols[c]]
        if xc != 0.0:  # a zero adds nothing: w * 0 changes no sum
            for t in range(V):
                logits[t] += ublock[c, t] * xc


@njit(cache=True, _nrt=False, inline='always')
def unembed_argmax(x, ucols, uh):
    """The next token from the unembedding as a static 2D hard-max (see
    :class:`rasp2d.backends.sparse_program.UnembedHull`): ``(alpha, beta) = M^T x``, then the
    first chain point where the score stops rising, and the lowest token id on its face.
    Returns -1 when the block is no such product or a term could be inexact (the caller then
    computes every logit)."""
    usable, m, uabs, pabs, cptr, cx, cy, cid, ext = uh
    if not usable:
        return -1
    a = 0.0
    b = 0.0
    ga = 0.0
    gb = 0.0
    gl = 0.0
    ints = True
    for c in range(ucols.shape[0]):
        xc = x[ucols[c]]
        ints = ints & (xc == math.floor(xc))
        ax = abs(xc)
        a += m[c, 0] * xc
        b += m[c, 1] * xc
        ga += abs(m[c, 0]) * ax
        gb += abs(m[c, 1]) * ax
        gl += uabs[c] * ax
    if not (ints and ga < EXACT_HALF and gb < EXACT_HALF and gl < EXACT_HALF
            and abs(a) * pabs[0] + abs(b) * pabs[1] < EXACT_HALF):
        return -1
    if b == 0.0:  # the largest (a > 0) or smallest (a < 0) x wins; a = 0: every logit is 0
        if a > 0.0:
            return ext[0]
        if a < 0.0:
            return ext[1]
        return 0
    lo = cptr[0] if b > 0.0 else cptr[1]  # upper chain for b > 0, lower chain for b < 0
    hi = cptr[1] if b > 0.0 else cptr[2]
    h = hi - 1
    while lo < h:  # scores rise strictly, stay level on the face, then fall strictly
        mid = (lo + h) >> 1
        if a * cx[mid + 1] + b * cy[mid + 1] <= a * cx[mid] + b * cy[mid]:
            h = mid
        else:
            lo = mid + 1
    top = a * cx[lo] + b * cy[lo]
    best = cid[lo]
    i = lo + 1
    while i < hi and a * cx[i] + b * cy[i] == top:
        best = min(best, cid[i])
        i += 1
    return best


# ----------------------------------------------------------------------------- decoding step
@njit(cache=True, _nrt=False)
def decode_loop(prompt, out, cursor, max_new, stop_id, start,
                embed, ptr, idx, val, bases, layer_heads, head_tie, head_mode, head_slot,
                head_kcoef, head_pmax, fold_ptr, fold_idx, ucols, ublock, uh, ffn, stamp,
                x, delta, head_out, logits, stages, record, use_hull,
                nodes, points, point_info, head_i, head_f, meta, pmask, poff, pstore, pmeta,
                exc_keys, exc_vals,
                exc_meta, bkeys, bvals, err):
    """The greedy loop of ``generate.stream`` with the whole decoding step inside, resumable.

    Feeds ``prompt`` from position ``start``, then its own predictions, until ``max_new``
    tokens are emitted into ``out`` or ``stop_id`` is.  ``cursor`` = [tokens fed, tokens
    emitted, last prediction].  Returns DONE, NEED_ROOM (grow the caches and call again) or
    FAILED (``err`` = code, head, position).  One step per token: embedding, then per layer
    every used head (q, k, v from sparse rows; insert into its cache; query it: a hull, the
    closed form of a position head, or the brute scan), the head outputs added, the FFN
    (:func:`ffn_layer`), and the logits' argmax (ties: lowest id): from the unembedding's
    static hull (:func:`unembed_argmax`) where it is exact, else from every logit of the
    unembedding's non-zero columns (always with ``record``, which keeps the logits).  The step is written inline (not a function taking two dozen arrays)
    because passing arrays between numba functions costs more than a small model's layer."""
    n_prompt = prompt.shape[0]
    n_heads = head_tie.shape[0]
    d = x.shape[0]
    V = logits.shape[0]
    hb = bases[HEADS]
    ub = bases[UNITS]
    n_layers = layer_heads.shape[0] - 1
    while True:
        fed = cursor[0]
        if fed >= n_prompt and fed == n_prompt + cursor[1]:  # (emitted once: cursor[1] moves)
            nxt = cursor[2]
            out[cursor[1]] = nxt
            cursor[1] += 1
            if nxt == stop_id or cursor[1] == max_new:
                return DONE
        if use_hull:
            if (not has_room(nodes, points, meta, n_heads) or start + fed >= pmask.shape[0]
                    or pmeta[0] + 2 * n_heads > pstore.shape[0]
                    or not has_exc_room(exc_keys, exc_meta, n_heads)):
                return NEED_ROOM
        elif start + fed >= bkeys.shape[2]:
            return NEED_ROOM
        tok = prompt[fed] if fed < n_prompt else out[fed - n_prompt]
        pos = start + fed
        # ---- the decoding step at position `pos`
        fpos = float(pos)
        if use_hull:
            position_begin(pmask, poff, pmeta, pos)
        for j in range(d):
            x[j] = embed[tok, j]
        _scatter(ptr, idx, val, 0, fpos, x)
        _scatter(ptr, idx, val, 1, fpos * fpos, x)
        if record:
            for j in range(d):
                stages[0, j] = x[j]
        for l in range(n_layers):
            for g in range(layer_heads[l], layer_heads[l + 1]):
                r = hb + HEAD_ROWS * g
                q0 = _dot(ptr, idx, val, r, x)
                q1 = _dot(ptr, idx, val, r + 1, x)
                if use_hull and head_mode[g] == HEAD_POSITION:
                    # the key is a known curve of the position: no dot (the same exact
                    # integers, in range while pos <= head_pmax, which position_insert checks)
                    k0 = head_kcoef[g, 0, 0] + head_kcoef[g, 0, 1] * fpos + head_kcoef[g, 0, 2] * (fpos * fpos)
                    k1 = head_kcoef[g, 1, 0] + head_kcoef[g, 1, 1] * fpos + head_kcoef[g, 1, 2] * (fpos * fpos)
                else:
                    k0 = _dot(ptr, idx, val, r + 2, x)
                    k1 = _dot(ptr, idx, val, r + 3, x)
                v0 = _dot(ptr, idx, val, r + 4, x)
                v1 = _dot(ptr, idx, val, r + 5, x)
                if use_hull:
                    if head_mode[g] == HEAD_POSITION:
                        slot = head_slot[g]
                        code = position_insert(pmask, poff, pstore, pmeta, exc_keys, exc_vals,
                                               exc_meta, slot,
                                               head_i, head_f, head_pmax[g], g,
                                               k0, k1, v0, v1, fpos)
                        if code == OK:
                            o0, o1, code = position_query(pmask, poff, pstore, exc_keys,
                                                          exc_vals, slot,
                                                          head_i, head_f,
                                                          head_kcoef, g, q0, q1, pos)
                    else:
                        code = hull_insert(nodes, points, point_info, head_i, head_f, meta, g,
                                           k0, k1, v0, v1, fpos)
                        if code == OK:
                            o0, o1, code = hull_query(nodes, points, head_i, head_f, g, q0, q1)
                    if code != OK:
                        err[0] = code
                        err[1] = g
                        err[2] = pos
                        return FAILED
                else:
                    bkeys[g, 0, pos] = k0
                    bkeys[g, 1, pos] = k1
                    bvals[g, 0, pos] = v0
                    bvals[g, 1, pos] = v1
                    o0, o1 = brute_query(bkeys, bvals, g, pos + 1, q0, q1, head_tie[g])
                head_out[g, 0] = o0
                head_out[g, 1] = o1
            for g in range(layer_heads[l], layer_heads[l + 1]):
                r = hb + HEAD_ROWS * g
                _scatter(ptr, idx, val, r + 6, head_out[g, 0], delta)
                _scatter(ptr, idx, val, r + 7, head_out[g, 1], delta)
            _fold(fold_ptr, fold_idx, 2 * l, x, delta)
            if record:
                for j in range(d):
                    stages[2 * l + 1, j] = x[j]
            ffn_layer(l, x, delta, ptr, idx, val, ub, ffn, stamp, pos)
            _fold(fold_ptr, fold_idx, 2 * l + 1, x, delta)
            if record:
                for j in range(d):
                    stages[2 * l + 2, j] = x[j]
        best = -1 if record else unembed_argmax(x, ucols, uh)
        if best == -1:
            dense_logits(x, ucols, ublock, logits)
            best = 0
            top = -np.inf
            for t in range(V):
                z = logits[t]
                if z > top or t == 0:  # strict: ties go to the lowest token id
                    best = t
                    top = z
        cursor[2] = best
        cursor[0] = fed + 1


# ----------------------------------------------------------------------------- pool arrays
def new_pool_arrays(n_heads: int, node_capacity: int, point_capacity: int):
    """Fresh pool arrays (see module docstring) for ``n_heads`` heads, all heads empty."""
    nodes = np.full((node_capacity, NODE_COLS), -1, dtype=np.int32)
    points = np.zeros((point_capacity, POINT_COLS), dtype=np.float64)
    point_info = np.full((point_capacity, 2), -1, dtype=np.int32)
    head_i = np.full((n_heads, HEAD_I_COLS), -1, dtype=np.int64)
    head_f = np.zeros((n_heads, HEAD_F_COLS), dtype=np.float64)
    meta = np.zeros(META_LEN, dtype=np.int64)
    meta[NODE_FREE] = -1
    meta[POINT_FREE] = -1
    meta[RNG] = 2463534242
    return nodes, points, point_info, head_i, head_f, meta
