"""Dataflow graph -> primitives (2D heads, ReGLU units, affine maps), exactly.

The one general mechanism for element-wise ops is the piecewise-linear (PWL) function of
an integer affine expression `z`: any f that is linear between a known set of breakpoints is

    f(z) = f(lo) + s0*relu(z - lo) + sum_i (s_i - s_{i-1}) * relu(z - p_i)

which is exact on integers.  f(lo) is free; each slope, the first included, costs one unit
(a linear f costs nothing), so the block's value stays within f's range.  Comparisons, equality, min/max/abs, // and % by constants and small tables are all
this with different breakpoints.  Products use the gate: `relu(a - lo_a) * b`, exact because
`a - lo_a >= 0`.  Look-ups use the `(2k, -k^2) . (q, 1)` trick; prefix sums use an averaging
head times `pos + 1`, rounded back to the exact integer by the float64 "magic number"
(x + 1.5*2^52) - 1.5*2^52, which is exact round-to-nearest for |x| < 2^51 (the error of the
mean times the count is far below 1/2 there).  Anything that would leave exact float64
integers (|value| >= 2^53) is a compile error that names the expression.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from fractions import Fraction

from rasp2d.backends.reference import evaluate
from rasp2d.compiler.graph import (ELEMENTWISE, Abs, Affine, Attend, Case, Const, Equals, FloorDiv,
                                   Graph, Indices, Lookup, Max, Min, Mod, Mul, Node, PrefixSum,
                                   Select, SelectMax, Step, Table, Tokens, operands)
from rasp2d.compiler.primitives import ONE, FfnBlock, Head, Lin, Lowered, Slot, Unit
from rasp2d.lang.errors import Rasp2dError

EXACT = 2 ** 53
MAGIC = 3 * 2 ** 51  # 1.5 * 2^52: adding and subtracting it rounds a float to the nearest integer
MAX_UNITS_PER_OP = 20000
VERIFY_PWL_UP_TO = 5000  # PWL expansions over ranges this small are checked point by point


class Lowerer:
    def __init__(self, graph: Graph, fuse_ready_first: bool = True):
        self.graph = graph
        self.fuse_ready_first = fuse_ready_first  # product(): which PWL factor to fuse
        self.slots: list[Slot] = [Slot(ONE, "1", "one", 1, 1)]
        self.heads: list[Head] = []
        self.ffns: list[FfnBlock] = []
        self.lin: dict[int, Lin] = {}
        self._token_slots: dict[tuple[int, ...], int] = {}
        self._pos: int | None = None
        self._pos_sq: int | None = None
        self._squares: dict[Lin, Lin] = {}
        self._known: dict[Lin, tuple[int, int]] = {}  # node-level ranges, tighter than slot sums
        self._recipe: dict[Lin, tuple[Lin, Callable[[int], int], tuple[int, ...]]] = {}  # PWL results
        self._depth: list[int] = [0]  # by slot: ops on the longest chain that writes it

    # ----------------------------------------------------------------- slots & ranges
    def new_slot(self, label: str, source, lo: int, hi: int, reads: Iterable[int] = (), **kw) -> int:
        """A new slot; `reads` are the slots its producer reads (for the depth estimate)."""
        sid = len(self.slots)
        self.slots.append(Slot(sid, label, source, lo, hi, **kw))
        self._depth.append(1 + max((self._depth[r] for r in reads), default=-1))
        return sid

    def depth(self, lin: Lin) -> int:
        """Ops on the longest chain up to `lin` (a lower bound on its layer, before scheduling)."""
        return max((self._depth[s] for s in lin.slots()), default=0)

    def pos(self) -> int:
        if self._pos is None:
            self._pos = self.new_slot("indices", "pos", 0, self.graph.max_len - 1)
        return self._pos

    def pos_sq(self) -> int:
        if self._pos_sq is None:
            self._pos_sq = self.new_slot("indices^2", "pos_sq", 0, (self.graph.max_len - 1) ** 2)
        return self._pos_sq

    def token_slot(self, values: tuple[int, ...], label: str) -> Lin:
        if len(set(values)) == 1:
            return Lin(const=values[0])
        if values not in self._token_slots:
            self._token_slots[values] = self.new_slot(label, "token", min(values), max(values),
                                                      token_values=values)
        return Lin.of(self._token_slots[values])

    def token_eval(self, lin: Lin, token: int) -> int:
        return lin.const + sum(c * self.slots[s].token_values[token] if self.slots[s].source == "token" else c
                               for s, c in lin.terms)

    def range_of(self, lin: Lin) -> tuple[int, int]:
        if lin in self._known:
            return self._known[lin]
        lo = hi = lin.const
        for s, c in lin.terms:
            slot = self.slots[s]
            lo += min(c * slot.lo, c * slot.hi)
            hi += max(c * slot.lo, c * slot.hi)
        return lo, hi

    def magnitude(self, lin: Lin) -> int:
        lo, hi = self.range_of(lin)
        return max(abs(lo), abs(hi))

    def check_sum(self, node: Node, what: str, lin: Lin) -> None:
        """A weight row's dot product is summed in whatever order the runtime likes: every
        partial sum, not just the total, must stay an exact float64 integer."""
        self.check_exact(node, what, termwise_bound(self.slots, lin))

    def check_exact(self, node: Node, what: str, bound: int) -> None:
        if bound >= EXACT:
            raise Rasp2dError(node.span, f"`{node.label}`: {what} can reach {bound} >= 2^53, beyond exact "
                              "float64 integers; narrow the operands' ranges (e.g. with clamp)")

    # ----------------------------------------------------------------- FFN building blocks
    def block(self, node: Node, label: str, units: list[Unit], lo: int, hi: int,
              unit_bound: int | None = None) -> Lin:
        """One FFN block; `unit_bound` (when the caller knows a tighter bound on every unit's
        |relu(gate) * value * coef| than the slot-wise estimate) is what gets checked."""
        units = [u for u in units if u.coef]
        if not units:
            return Lin()
        if len(units) > MAX_UNITS_PER_OP:
            raise Rasp2dError(node.span, f"`{node.label}` needs {len(units)} ReLU units (more than "
                              f"{MAX_UNITS_PER_OP}); narrow its input range or restructure it")
        for u in units:
            bound = unit_bound if unit_bound is not None else \
                self.magnitude(u.gate) * self.magnitude(u.value) * abs(u.coef)
            self.check_exact(node, "a ReLU unit's product", bound)
            self.check_sum(node, "the sum a ReLU unit's gate reads", u.gate)
            self.check_sum(node, "the sum a ReLU unit's value reads", u.value)
        if all(self.slots[s].source in ("token", "one") for u in units for s in u.gate.slots() | u.value.slots()):
            # a function of the current token alone: precompute it into the embedding
            vals = tuple(sum(u.coef * max(self.token_eval(u.gate, t), 0) * self.token_eval(u.value, t)
                             for u in units) for t in range(len(self.graph.vocab)))
            return self.token_slot(vals, label)
        out = self.new_slot(label, "ffn", lo, hi, reads={s for u in units for s in u.gate.slots() | u.value.slots()})
        self.ffns.append(FfnBlock(len(self.ffns), label, tuple(units), out))
        return Lin.of(out)

    def pwl_terms(self, node: Node, lo: int, hi: int, f: Callable[[int], int],
                  points: Iterable[int]) -> tuple[int, Fraction, list[tuple[int, Fraction]]]:
        """f on [lo, hi] as f(lo) + s0*(z-lo) + sum c_i relu(z - p_i); f linear between points."""
        pts = sorted({lo, hi} | {p for p in points if lo <= p <= hi})
        slopes = [Fraction(f(b) - f(a), b - a) for a, b in zip(pts, pts[1:])]
        s0 = slopes[0] if slopes else Fraction(0)
        kinks = [(p, s - prev) for p, prev, s in zip(pts[1:-1], slopes, slopes[1:]) if s != prev]
        if any(c.denominator != 1 for _, c in kinks) or s0.denominator != 1:
            raise Rasp2dError(node.span, f"`{node.label}` is not piecewise linear with integer slopes "
                              "between its breakpoints (internal error)")
        if hi - lo <= VERIFY_PWL_UP_TO:
            # walk z upwards with integer slopes: the expansion's step from z to z + 1 is s0 plus
            # every kink at or below z (linear time; summing all kinks per z was quadratic)
            kink_at = {p: int(c) for p, c in kinks}
            got, slope = f(lo), int(s0)
            for z in range(lo, hi + 1):
                if got != f(z):
                    raise AssertionError(f"PWL expansion of {node.label} wrong at {z}: {got} != {f(z)}")
                slope += kink_at.get(z, 0)
                got += slope
        return f(lo), s0, kinks

    def pwl(self, node: Node, z: Lin, f: Callable[[int], int], points: Iterable[int],
            label: str | None = None) -> Lin:
        lo, hi = self.range_of(z)
        f0, s0, kinks = self.pwl_terms(node, lo, hi, f, points)
        if not kinks:
            return (z - lo) * int(s0) + f0  # linear on the whole range: free
        # The block computes f(z) - f(lo) by itself (the first slope is a unit on z - lo, not an
        # affine term): its value then stays within f's range.  With the slope left affine,
        # the block's part alone grows like z and cancels against it, so a reader that scales
        # the result (a staircase of a 2^24 digit, say) summed terms far beyond 2^53 whose
        # total was small, and float64 lost the difference.
        units = ([Unit(z - lo, Lin(const=1), int(s0))] if s0 else []) + \
            [Unit(z - p, Lin(const=1), int(c)) for p, c in kinks]
        pts = sorted({lo, hi} | {p for p, _ in kinks})  # f is linear between these: extremes here
        values = [f(p) - f0 for p in pts]
        bound = max(abs(u.coef) * max(hi - lo, 0) for u in units)
        result = self.block(node, label or node.label, units, min(values), max(values),
                            unit_bound=bound) + f0
        if result.terms and self.slots[result.terms[-1][0]].source == "ffn":
            self._recipe[result] = (z, f, tuple(points))
        return result

    def gated_pwl(self, node: Node, z: Lin, f: Callable[[int], int], points: Iterable[int], w: Lin,
                  label: str) -> Lin:
        """f(z) * w in one FFN block: every unit is relu(z - p) * w."""
        lo, hi = self.range_of(z)
        f0, s0, kinks = self.pwl_terms(node, lo, hi, f, points)
        units = [Unit(z - lo, w, int(s0))] + [Unit(z - p, w, int(c)) for p, c in kinks]
        wmag = self.magnitude(w)
        mag = wmag * (abs(int(s0)) * (hi - lo) + sum(abs(int(c)) * max(hi - p, 0) for p, c in kinks))
        bound = wmag * max([abs(int(s0)) * (hi - lo)] +
                           [abs(int(c)) * max(abs(lo - p), abs(hi - p)) for p, c in kinks])
        return w * f0 + self.block(node, label, units, -mag, mag, unit_bound=bound)

    def product(self, node: Node, a: Lin, b: Lin, label: str,
                ranges: tuple[tuple[int, int], tuple[int, int]] | None = None) -> Lin:
        """a * b = lo_a * b + relu(a - lo_a) * b, exact since a - lo_a >= 0.  `ranges`: the
        factors' own value ranges when the caller knows them tighter than the slot-wise sums
        of their Lins (a select's Lin can be 10x wider than the values it takes)."""
        (alo, ahi), (blo, bhi) = ranges if ranges is not None else (self.range_of(a), self.range_of(b))
        if a.is_const:
            return b * a.const
        if b.is_const:
            return a * b.const
        fusable = []
        for x, y in ((a, b), (b, a)):
            # x = f(z) came out of an FFN: compute f(z) * y directly from z in one FFN instead
            # of two (saves a layer per link of compare -> and -> select chains)
            if x in self._recipe:
                z, f, pts = self._recipe[x]
                zlo, zhi = self.range_of(z)
                if (max(abs(zlo), abs(zhi)) + 1) * (zhi - zlo + 1) * self.magnitude(y) < EXACT:
                    fusable.append((max(self.depth(z), self.depth(y)), z, f, pts, y))
        if fusable:
            # both factors may be PWL results: fuse the one whose own input and partner are
            # ready first (a gate applied to a clamp should not wait for the clamp)
            _, z, f, pts, y = min(fusable, key=lambda c: c[0]) if self.fuse_ready_first else fusable[0]
            return self.gated_pwl(node, z, f, pts, y, label)
        if (ahi - alo) * max(abs(blo), abs(bhi)) > (bhi - blo) * max(abs(alo), abs(ahi)):
            a, b, (alo, ahi), (blo, bhi) = b, a, (blo, bhi), (alo, ahi)
        prods = [(x - alo) * y for x in (alo, ahi) for y in (blo, bhi)]
        return b * alo + self.block(node, label, [Unit(a - alo, b, 1)], min(prods), max(prods),
                                    unit_bound=max(abs(p) for p in prods))

    def select(self, node: Node, cond: Lin, then: Lin, other: Lin, label: str) -> Lin:
        """other + cond * (then - other) for a 0/1 condition."""
        return other + self.product(node, cond, then - other, label)

    # ----------------------------------------------------------------- attention
    def head(self, node: Node, label: str, q: tuple[Lin, Lin], k: tuple[Lin, Lin],
             v: tuple[Lin, ...], tie: str, out_labels: tuple[str, ...], exact: bool = True,
             score_bound: int | None = None) -> tuple[Lin, ...]:
        score = score_bound if score_bound is not None else \
            sum(self.magnitude(qi) * self.magnitude(ki) for qi, ki in zip(q, k))
        self.check_exact(node, "an attention score", score)
        for lin in (*q, *k, *v):
            self.check_sum(node, "the sum an attention head reads", lin)
        outs = []
        for lin, lab in zip(v, out_labels):
            lo, hi = self.range_of(lin)
            outs.append(self.new_slot(lab, "head", lo, hi, exact=exact,
                                      reads={s for l in (*q, *k, *v) for s in l.slots()}))
        self.heads.append(Head(len(self.heads), label, q, k, v, tie, tuple(outs)))
        return tuple(Lin.of(s) for s in outs)

    def square(self, node: Node, key: Lin, rng: tuple[int, int] | None = None) -> Lin:
        """key^2 for a look-up's key; `rng`: the key node's own range (see `product`)."""
        if key == Lin.of(self.pos()):
            return Lin.of(self.pos_sq())
        if key not in self._squares:
            self._squares[key] = self.product(node, key, key, f"({node.label}) key^2",
                                              None if rng is None else (rng, rng))
        return self._squares[key]

    def lookup(self, node: Node, op: Lookup) -> Lin:
        kt, qt = self.graph.node(op.key).type, self.graph.node(op.query).type
        kmag, qmag = max(abs(kt.lo), abs(kt.hi)), max(abs(qt.lo), abs(qt.hi))
        bound = 2 * kmag * qmag + kmag * kmag  # |2kq - k^2| from the node ranges
        key, query, value = (self.lin[a] for a in operands(op)[:3])
        if op.tie == "average":
            default = self.lin[op.default] if op.default is not None else None
            if default is None:
                (out,) = self.head(node, node.label, (query, Lin(const=1)),
                                   (key * 2, self.square(node, key) * -1), (value,), op.tie,
                                   (node.label,), score_bound=bound, exact=False)
                return out
            return self.average_lookup(node, key, self.square(node, key), query, value, default,
                                       kmag, qmag)
        # Scores 2(k-c)(q-c) - (k-c)^2 = q'^2 - (q'-k')^2 rank keys alike for any shift c of
        # both sides, so a key range too wide for exact scores is centred on its midpoint: the
        # bound drops to about a quarter when queries span the keys' range (memory addresses
        # up to 2^26 need it).  Narrower keys keep c = 0 (and their weights).
        shift = 0
        if bound >= EXACT:
            shift = (kt.lo + kt.hi) // 2
            kmag = max(abs(kt.lo - shift), abs(kt.hi - shift))
            qmag = max(abs(qt.lo - shift), abs(qt.hi - shift))
            bound = 2 * kmag * qmag + kmag * kmag
        q = (query - shift, Lin(const=1))
        k = ((key - shift) * 2,
             self.square(node, key - shift, (kt.lo - shift, kt.hi - shift) if shift else None) * -1)
        if op.default is None:  # nearest key: the head's value is the answer
            (out,) = self.head(node, node.label, q, k, (value,), op.tie, (node.label,),
                               score_bound=bound)
            return out
        default = self.lin[op.default]
        val_s, key_s = self.head(node, node.label, q, k, (value, key), op.tie,
                                 (f"{node.label} (value)", f"{node.label} (key found)"),
                                 score_bound=bound)
        z = key_s - query  # 0 exactly when the key was found
        w = val_s - default
        eq = lambda x: int(x == 0)
        zmag, wmag = self.magnitude(z), self.magnitude(w)
        if (zmag + 1) * wmag < EXACT:
            return default + self.gated_pwl(node, z, eq, (-1, 0, 1), w, f"{node.label} (or default)")
        found = self.pwl(node, z, eq, (-1, 0, 1), f"{node.label} (found?)")
        return self.select(node, found, val_s, default, f"{node.label} (or default)")

    def average_lookup(self, node: Node, key: Lin, ksq: Lin, query: Lin, value: Lin, default: Lin,
                       kmag: int, qmag: int) -> Lin:
        """Mean of the values whose key equals the query, else the default.

        The query is nudged to q + 1/4 (scaled by 4 to keep scores integer: (4q+1)*2k - 4k^2):
        then no two distinct keys tie, so every maximiser has the same key, the averaged key is
        that key exactly, and `found` is exact; the plain query would average the keys q-d and
        q+d into a false q."""
        bound = (4 * qmag + 1) * 2 * kmag + 4 * kmag * kmag
        val_s, key_s = self.head(node, node.label, (query * 4 + 1, Lin(const=4)), (key * 2, ksq * -1),
                                 (value, key), "average",
                                 (f"{node.label} (mean)", f"{node.label} (key found)"),
                                 score_bound=bound, exact=False)
        self.slots[key_s.terms[0][0]] = _replace_exact(self.slots[key_s.terms[0][0]], True)
        found = self.pwl(node, key_s - query, lambda x: int(x == 0), (-1, 0, 1), f"{node.label} (found?)")
        lo, hi = self.range_of(val_s - default)
        # a plain gated unit (not a fused PWL): relu(found) is exactly 0 or 1, so the product
        # with the non-integer mean adds no rounding beyond the one subtraction
        chosen = self.block(node, f"{node.label} (or default)", [Unit(found, val_s - default, 1)],
                            min(lo, 0), max(hi, 0))
        slot = chosen.terms[0][0]
        self.slots[slot] = _replace_exact(self.slots[slot], False)
        return default + chosen

    def mean_step(self, node: Node, a: Lin, t: int) -> Lin:
        """[a >= t] for a mean a (denominator <= den): exact despite a's rounding.

        a >= t or a <= t - 1/den, so z = 2*den*(a - t) + 1 is >= 1 or <= -1; float64 gets z
        within 1/4 (checked below), the magic-number snap rounds it to an exact integer r with
        the same sign, and [r >= 1] is an ordinary integer step."""
        den = self.graph.node(node.op.a).type.den
        # every rounding on the way (head division, the affine sums) is within a few ulps of the
        # largest magnitude involved; 2^-49 of it is a generous bound on their total
        spread = abs(a.const) + abs(t) + sum(abs(c) * max(abs(self.slots[s].lo), abs(self.slots[s].hi))
                                             for s, c in a.terms)
        if den * spread * 2 ** 2 >= 2 ** 47:
            raise Rasp2dError(node.span, f"`{node.label}`: a mean of values up to {spread} over up to "
                              f"{den} positions cannot be compared exactly in float64; lower max_len "
                              "or the averaged values' range")
        z = (a - t) * (2 * den) + 1
        lo, hi = self.range_of(z)
        snapped = self.block(node, f"{node.label} (rounded)",
                             [Unit(Lin(const=1), z + MAGIC, 1), Unit(Lin(const=1), Lin(const=-MAGIC), 1)],
                             lo, hi)
        return self.pwl(node, snapped, lambda x: int(x >= 1), (0, 1))

    def prefix_sum(self, node: Node, x: Lin) -> Lin:
        (mean,) = self.head(node, node.label, (Lin(), Lin()), (Lin(), Lin()), (x,), "average",
                            (f"mean of {self.graph.node(node.op.a).label}",), exact=False)
        lo, hi = node.type.lo, node.type.hi
        if max(abs(lo), abs(hi)) >= 2 ** 50:
            raise Rasp2dError(node.span, f"`{node.label}` can reach {max(abs(lo), abs(hi))}; prefix sums "
                              "are exact only below 2^50 (lower max_len or the summand's range)")
        approx = self.block(node, f"{node.label} (mean * (i+1))",
                            [Unit(Lin.of(self.pos()) + 1, mean, 1)], lo, hi)
        s_approx = approx.terms[0][0]
        self.slots[s_approx] = _replace_exact(self.slots[s_approx], False)
        return self.block(node, node.label, [Unit(Lin(const=1), approx + MAGIC, 1),
                                             Unit(Lin(const=1), Lin(const=-MAGIC), 1)], lo, hi)

    # ----------------------------------------------------------------- driver
    def lower(self) -> Lowered:
        g = self.graph
        live = g.live_nodes()
        pure = self._token_pure(live)
        pure_vals = evaluate(g, list(range(len(g.vocab))), pure) if pure else {}
        for nid in g.topo():
            if nid not in live:
                continue
            node = g.node(nid)
            if nid in pure and not isinstance(node.op, Const):
                self.lin[nid] = self.token_slot(tuple(pure_vals[nid]), node.label)
                continue
            first_new = len(self.slots)
            lin = self.lower_node(node)
            self.lin[nid] = lin
            self._tighten_own_slot(lin, first_new, node)
            lo, hi = self.range_of(lin)
            self._known[lin] = (max(lo, node.type.lo), min(hi, node.type.hi))
        out = self.lin[g.output]
        return merge_heads(prune(Lowered(tuple(self.slots), tuple(self.heads), tuple(self.ffns), out, g.vocab)))

    def _tighten_own_slot(self, lin: Lin, first_new: int, node: Node) -> None:
        """A block's slot range is the sum of its units' magnitudes, which for a gated product
        is its gate's whole kink range times the value (a [v == c] gate: ~4x the value's
        range per unit of v's span).  When the node is exactly its new slot (plus a constant),
        the node's type bounds the slot too: later sums that read it (and the clamps the
        elaborator drops because the type already fits) then see the true range."""
        if len(lin.terms) != 1:
            return
        (sid, coef), = lin.terms
        slot = self.slots[sid]
        if coef != 1 or sid < first_new or slot.source != "ffn":
            return
        lo, hi = max(slot.lo, node.type.lo - lin.const), min(slot.hi, node.type.hi - lin.const)
        if (lo, hi) != (slot.lo, slot.hi) and lo <= hi:
            self.slots[sid] = replace(slot, lo=lo, hi=hi)

    def _token_pure(self, live: set[int]) -> set[int]:
        """Element-wise nodes computed from the current token alone: they live in the embedding."""
        g = self.graph
        pure: set[int] = set()
        for nid in g.topo():
            if nid not in live:
                continue
            op = g.node(nid).op
            if isinstance(op, Tokens) or (isinstance(op, ELEMENTWISE) and all(a in pure for a in operands(op))):
                pure.add(nid)
        return pure

    def lower_node(self, node: Node) -> Lin:
        op = node.op
        L = self.lin
        match op:
            case Const(value):
                return Lin(const=value)
            case Indices():
                return Lin.of(self.pos())
            case Affine(terms, const):
                acc = Lin(const=const)
                for nid, c in terms:
                    acc = acc + L[nid] * c
                if len(terms) == 1 and L[terms[0][0]] in self._recipe:
                    # c*f(z) + k is still a PWL of z: keep it fusable into a following product
                    z, f, pts = self._recipe[L[terms[0][0]]]
                    c = terms[0][1]
                    self._recipe.setdefault(acc, (z, lambda x, f=f, c=c: c * f(x) + const, pts))
                return acc
            case Mul(a, b):
                return self.product(node, L[a], L[b], node.label)
            case Step(a, t) if self.graph.node(a).type.kind == "mean":
                return self.mean_step(node, L[a], t)
            case Step(a, t):
                return self.pwl(node, L[a], lambda x: int(x >= t), (t - 1, t))
            case Equals(a, v):
                return self.pwl(node, L[a], lambda x: int(x == v), (v - 1, v, v + 1))
            case FloorDiv(a, k) | Mod(a, k):
                lo, hi = self.range_of(L[a])
                pts = self._multiples(node, lo, hi, k)
                f = (lambda x: x // k) if isinstance(op, FloorDiv) else (lambda x: x % k)
                return self.pwl(node, L[a], f, pts)
            case Abs(a):
                return self.pwl(node, L[a], abs, (0,))
            case Min(a, b) if self._clamp_of(a, b) is not None:
                # clamp(x, lo, hi) is Min(Max(x, lo), hi): one PWL of x, one layer (not two)
                x, lo, hi = self._clamp_of(a, b)
                return self.pwl(node, L[x], lambda v: min(max(v, lo), hi), (lo, hi))
            case Min(a, b):
                return L[a] - self.pwl(node, L[a] - L[b], lambda x: max(x, 0), (0,))
            case Max(a, b):
                return L[b] + self.pwl(node, L[a] - L[b], lambda x: max(x, 0), (0,))
            case Table(a, entries, default):
                pts = [p for k, _ in entries for p in (k - 1, k, k + 1)]
                return self.pwl(node, L[a], op.apply, pts)
            case Select(c, t, o):
                tt, ot = self.graph.node(t).type, self.graph.node(o).type
                diff = L[t] - L[o]
                lo, hi = self.range_of(diff)
                self._known[diff] = (max(lo, tt.lo - ot.hi), min(hi, tt.hi - ot.lo))
                return self.select(node, L[c], L[t], L[o], node.label)
            case Case(conds, values, default):
                # branch i is taken when c_i - (c_1 + ... + c_{i-1}) >= 1: one gated unit pair each
                step1 = lambda x: int(x >= 1)
                acc = L[default]
                seen = Lin()
                dt = self.graph.node(default).type
                for c, v in zip(conds, values):
                    z = L[c] - seen
                    diff = L[v] - L[default]
                    vt = self.graph.node(v).type
                    lo, hi = self.range_of(diff)
                    self._known[diff] = (max(lo, vt.lo - dt.hi), min(hi, vt.hi - dt.lo))
                    acc = acc + self.gated_pwl(node, z, step1, (0, 1), diff, node.label)
                    seen = seen + L[c]
                return acc
            case Lookup():
                return self.lookup(node, op)
            case PrefixSum(a):
                return self.prefix_sum(node, L[a])
            case SelectMax(score, value, tie):
                (out,) = self.head(node, node.label, (Lin(const=1), Lin()), (L[score], Lin()),
                                   (L[value],), tie, (node.label,), exact=tie == "latest")
                return out
            case Attend(q, k, value, tie):
                (out,) = self.head(node, node.label, (L[q[0]], L[q[1]]), (L[k[0]], L[k[1]]),
                                   (L[value],), tie, (node.label,), exact=tie == "latest")
                return out
            case Tokens():
                raise AssertionError("tokens are lowered as token-pure")
        raise Rasp2dError(node.span, f"`{node.label}`: no lowering for {type(op).__name__}")

    def _clamp_of(self, a: int, b: int) -> tuple[int, int, int] | None:
        """(x, lo, hi) when Min(a, b) is Min(Max(x, lo), hi) with constant bounds (a clamp)."""
        inner, upper = self.graph.node(a).op, self.graph.node(b).op
        if not (isinstance(inner, Max) and isinstance(upper, Const)):
            return None
        lower = self.graph.node(inner.b).op
        if not isinstance(lower, Const) or lower.value > upper.value:
            return None
        return inner.a, lower.value, upper.value

    def _multiples(self, node: Node, lo: int, hi: int, k: int) -> list[int]:
        k = abs(k)
        first, last = lo // k, hi // k
        if (last - first) * 2 > MAX_UNITS_PER_OP:
            raise Rasp2dError(node.span, f"`{node.label}` over the range {lo}..{hi} has {last - first} "
                              f"steps of size {k}, more than {MAX_UNITS_PER_OP // 2}; narrow the range")
        return [p for m in range(first, last + 2) for p in (m * k - 1, m * k, m * k + 1)]


def termwise_bound(slots, lin: Lin) -> int:
    """The largest |partial sum| of `lin`'s terms, summed in any order, over the slots' ranges."""
    return abs(lin.const) + sum(abs(c) * max(abs(slots[s].lo), abs(slots[s].hi)) for s, c in lin.terms)


def check_sums_exact(low: Lowered) -> None:
    """Every weight row of the final program (after fusion) sums exactly in float64.

    Lowering checks each row as it builds it and names the expression; this re-checks the
    program that becomes weights, so a later pass that widens a sum cannot slip through."""
    rows = [(b.label, lin) for b in low.ffns for u in b.units for lin in (u.gate, u.value)]
    rows += [(h.label, lin) for h in low.heads for lin in (*h.q, *h.k, *h.v)]
    rows.append(("the output", low.output))
    for label, lin in rows:
        bound = termwise_bound(low.slots, lin)
        if bound >= EXACT:
            raise AssertionError(f"`{label}`: a weight row sums terms up to {bound} >= 2^53 "
                                 "(internal error: lowering checked it before fusion)")


def _replace_exact(slot: Slot, exact: bool) -> Slot:
    return replace(slot, exact=exact)


def prune(low: Lowered) -> Lowered:
    """Drop heads, head channels and FFN blocks whose results nothing reads (e.g. a compare
    whose only user was fused into a gated product)."""
    live = set(low.output.slots()) | {ONE}
    ops = sorted([(min(h.outputs), "head", h) for h in low.heads] + [(b.output, "ffn", b) for b in low.ffns],
                 key=lambda t: t[0], reverse=True)
    keep_heads, keep_ffns = [], []
    for _, kind, op in ops:
        if kind == "ffn":
            if op.output in live:
                keep_ffns.append(op)
                live |= op.inputs()
        else:
            chans = [i for i, s in enumerate(op.outputs) if s in live]
            if chans:
                h = replace(op, v=tuple(op.v[i] for i in chans), outputs=tuple(op.outputs[i] for i in chans))
                keep_heads.append(h)
                live |= h.inputs()
    heads = tuple(replace(h, id=i) for i, h in enumerate(sorted(keep_heads, key=lambda h: min(h.outputs))))
    ffns = tuple(replace(b, id=i) for i, b in enumerate(sorted(keep_ffns, key=lambda b: b.output)))
    slots = tuple(s if s.id in live else replace(s, source="dead") for s in low.slots)
    return Lowered(slots, heads, ffns, low.output, low.vocab)


def merge_heads(low: Lowered) -> Lowered:
    """Heads with the same query, key and tie rule attend to the same positions: one head with
    two value channels does the work of two one-channel heads (unless one feeds the other).

    A merged head waits for its later partner, and a head on the critical path (an operand
    read, say, merged with a read-back of the step's own decision) would lengthen the whole
    program: heads merge where both have the slack for it, and if the merges together still
    cost depth, only heads ready at the same stage merge."""
    from rasp2d.compiler.schedule import earliest, latest, min_layers, op_graph
    g = op_graph(low)
    depth = min_layers(g)
    ready, due = earliest(g), latest(g, depth)  # op_graph lists the heads first, by id
    slack = _merged_heads(low, lambda a, b: max(ready[a], ready[b]) <= min(due[a], due[b]))
    if min_layers(op_graph(slack)) <= depth:
        return slack
    return _merged_heads(low, lambda a, b: ready[a] == ready[b])


def _merged_heads(low: Lowered, may_merge: Callable[[int, int], bool]) -> Lowered:
    import networkx as nx
    producer = {}
    for h in low.heads:
        for s in h.outputs:
            producer[s] = ("head", h.id)
    for b in low.ffns:
        producer[b.output] = ("ffn", b.id)
    deps = nx.DiGraph()
    for kind, ops in (("head", low.heads), ("ffn", low.ffns)):
        for op in ops:
            deps.add_node((kind, op.id))
            for s in op.inputs():
                if s in producer:
                    deps.add_edge(producer[s], (kind, op.id))
    groups: dict[tuple, list[Head]] = {}
    for h in low.heads:
        groups.setdefault((h.q, h.k, h.tie), []).append(h)
    merged: list[Head] = []
    for hs in groups.values():
        waiting = [h for h in hs if len(h.v) == 1]
        merged += [h for h in hs if len(h.v) != 1]
        while waiting:
            a = waiting.pop(0)
            partner = next((b for b in waiting if may_merge(a.id, b.id)
                            and not nx.has_path(deps, ("head", a.id), ("head", b.id))
                            and not nx.has_path(deps, ("head", b.id), ("head", a.id))), None)
            if partner is None:
                merged.append(a)
                continue
            waiting.remove(partner)
            merged.append(replace(a, label=f"{a.label} | {partner.label}", v=a.v + partner.v,
                                  outputs=a.outputs + partner.outputs))
    heads = tuple(replace(h, id=i) for i, h in enumerate(sorted(merged, key=lambda h: min(h.outputs))))
    return replace(low, heads=heads)


def lower(graph: Graph) -> Lowered:
    return Lowerer(graph).lower()
