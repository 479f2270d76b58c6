"""Merge FFN blocks whose results are only ever read as one fixed sum: one dimension, not many.

Lowering gives every product and every PWL node its own block and so its own residual
dimension.  But `row(e, w) = e0*w0 + ... + e7*w7` is read by nobody except as that sum: the
stream only ever needs the sum.  If slot s appears in every Lin that reads any slot of a group
with coefficient u_lin * w_s (the group's columns of the reader x slot matrix are proportional),
one block holding all the group's units, each coefficient scaled by w_s, writes g = sum w_s s
into one dimension, and every reader reads u_lin * g instead.

The merged block must sit in one layer, so a group only merges where its members' windows of
legal layers overlap (windows are kept up to date as merges tighten them), which keeps the
minimum depth.  Members of one group never depend on each other: a reader of one would read
them all, so it would read its own ancestor's output as well as the ancestor's descendant.

Exactness: every unit's product is an integer, so the merged output is exact while every
partial sum stays below 2^53; that is checked with a bound from the slots' ranges.  Blocks that
read or write non-exact values (means, the magic-number rounding) are never merged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import gcd

from rasp2d.compiler.lower import EXACT
from rasp2d.compiler.primitives import FfnBlock, Lin, Lowered, Unit
from rasp2d.compiler.schedule import OpGraph, earliest, first_stage_from, last_stage_until, latest, min_layers, op_graph


@dataclass(frozen=True)
class Fusion:
    """Which slots became one: `scale[s]` is w_s, the factor slot s enters its group's sum with."""

    lowered: Lowered
    groups: tuple[tuple[int, ...], ...]  # member slots of each merged group; the first survives
    scale: tuple[tuple[int, int], ...]  # (slot, w_s) for every merged slot


def _reader_lins(low: Lowered) -> list[Lin]:
    lins: list[Lin] = []
    for h in low.heads:
        lins += [*h.q, *h.k, *h.v]
    for b in low.ffns:
        for u in b.units:
            lins += [u.gate, u.value]
    lins.append(low.output)
    return lins


def _magnitude(low: Lowered, lin: Lin) -> int:
    return abs(lin.const) + sum(abs(c) * max(abs(low.slots[s].lo), abs(low.slots[s].hi)) for s, c in lin.terms)


def _relu_bound(low: Lowered, lin: Lin) -> int:
    hi = lin.const + sum(max(c * low.slots[s].lo, c * low.slots[s].hi) for s, c in lin.terms)
    return max(hi, 0)


def _partial_sum_bound(low: Lowered, block: FfnBlock) -> int | None:
    """Bound on |partial sums| of the block's units, or None when it must not be merged."""
    if not low.slots[block.output].exact:
        return None
    total = 0
    for u in block.units:
        if any(not low.slots[s].exact for s in u.gate.slots() | u.value.slots()):
            return None
        total += abs(u.coef) * _relu_bound(low, u.gate) * _magnitude(low, u.value)
    return total


class _Windows:
    """Legal write stages of every op at a fixed depth, tightened as ops merge."""

    def __init__(self, g: OpGraph, n_layers: int):
        self.g = g
        self.lo = earliest(g)
        self.hi = latest(g, n_layers)
        self.preds = [set(p) for p in g.preds]
        self.succs = [set(s) for s in g.succs]

    def merge(self, ops: list[int]) -> None:
        """Ops become one (the first); its window is the intersection."""
        head, rest = ops[0], ops[1:]
        for o in rest:
            for p in self.preds[o]:
                self.succs[p].discard(o)
                self.succs[p].add(head)
            for c in self.succs[o]:
                self.preds[c].discard(o)
                self.preds[c].add(head)
            self.preds[head] |= self.preds[o]
            self.succs[head] |= self.succs[o]
            self.preds[o], self.succs[o] = set(), set()
        self.lo[head] = max(self.lo[o] for o in ops)
        self.hi[head] = min(self.hi[o] for o in ops)
        if self.lo[head] > self.hi[head]:
            raise AssertionError("merged blocks have no common layer (internal error)")
        todo = [head]
        while todo:  # later ops may now have to start later
            o = todo.pop()
            for c in self.succs[o]:
                lo = first_stage_from(self.g.ops[c].kind, self.lo[o] + 1)
                if lo > self.lo[c]:
                    self.lo[c] = lo
                    todo.append(c)
        todo = [head]
        while todo:  # and earlier ops finish earlier
            o = todo.pop()
            for p in self.preds[o]:
                hi = last_stage_until(self.g.ops[p].kind, self.hi[o] - 1)
                if hi < self.hi[p]:
                    self.hi[p] = hi
                    todo.append(p)


def fuse_sums(low: Lowered) -> Fusion:
    g = op_graph(low)
    win = _Windows(g, min_layers(g))
    block_op = {op.index: i for i, op in enumerate(g.ops) if op.kind == "ffn"}

    # columns of the reader x slot matrix, normalised: column(s) = w_s * key
    columns: dict[int, list[tuple[int, int]]] = {}
    for li, lin in enumerate(_reader_lins(low)):
        for s, c in lin.terms:
            columns.setdefault(s, []).append((li, c))
    groups: dict[tuple, list[tuple[int, int]]] = {}  # key -> [(slot, w_s)]
    bound: dict[int, int] = {}
    for b in low.ffns:
        col = columns.get(b.output)
        pb = _partial_sum_bound(low, b)
        if not col or pb is None:
            continue
        k = 0
        for _, c in col:
            k = gcd(k, c)
        k = k if col[0][1] > 0 else -k
        groups.setdefault(tuple((li, c // k) for li, c in col), []).append((b.output, k))
        bound[b.output] = pb

    op_of = {b.output: block_op[b.id] for b in low.ffns}
    merged: list[list[tuple[int, int]]] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        # stab the windows: the member that must come first fixes a layer, all that fit join
        waiting = sorted(members, key=lambda m: win.hi[op_of[m[0]]])
        while waiting:
            first = waiting.pop(0)
            at = win.hi[op_of[first[0]]]
            take, keep, total = [first], [], abs(first[1]) * bound[first[0]]
            for m in waiting:
                o = op_of[m[0]]
                extra = abs(m[1]) * bound[m[0]]
                if win.lo[o] <= at <= win.hi[o] and total + extra < EXACT:
                    take.append(m)
                    total += extra
                else:
                    keep.append(m)
            waiting = keep
            if len(take) > 1:
                win.merge([op_of[s] for s, _ in take])
                merged.append(take)
    return _rebuild(low, merged)


def _rebuild(low: Lowered, merged: list[list[tuple[int, int]]]) -> Fusion:
    """The program with each group's blocks as one block writing the first member's slot."""
    rep: dict[int, tuple[int, int]] = {}  # slot -> (surviving slot, w_s)
    for take in merged:
        for s, w in take:
            rep[s] = (take[0][0], w)

    def rewrite(lin: Lin) -> Lin:
        if not any(s in rep for s, _ in lin.terms):
            return lin
        out: dict[int, int] = {}
        seen: dict[int, int] = {}  # surviving slot -> u (the reader's factor)
        for s, c in lin.terms:
            if s not in rep:
                out[s] = out.get(s, 0) + c
                continue
            r, w = rep[s]
            if c % w:
                raise AssertionError(f"slot {s}: coefficient {c} is not a multiple of {w} (internal error)")
            u = c // w
            if seen.setdefault(r, u) != u:
                raise AssertionError(f"slot {s} is not read in proportion with its group (internal error)")
        for r, u in seen.items():
            out[r] = out.get(r, 0) + u
        return Lin(tuple(sorted((s, c) for s, c in out.items() if c)), lin.const)

    by_output = {b.output: b for b in low.ffns}
    slots = list(low.slots)
    ffns: list[FfnBlock] = []
    for take in merged:
        r = take[0][0]
        units = tuple(Unit(u.gate, u.value, u.coef * w) for s, w in take for u in by_output[s].units)
        lo = sum(min(w * slots[s].lo, w * slots[s].hi) for s, w in take)
        hi = sum(max(w * slots[s].lo, w * slots[s].hi) for s, w in take)
        label = f"sum of {len(take)}: {by_output[r].label}"
        slots[r] = replace(slots[r], label=label, lo=lo, hi=hi)
        for s, _ in take[1:]:
            slots[s] = replace(slots[s], source="dead")
        ffns.append(FfnBlock(-1, label, units, r))
    ffns += [b for b in low.ffns if b.output not in rep]
    ffns.sort(key=lambda b: b.output)
    ffns = [replace(b, id=i, units=tuple(Unit(rewrite(u.gate), rewrite(u.value), u.coef) for u in b.units))
            for i, b in enumerate(ffns)]
    heads = tuple(replace(h, q=tuple(map(rewrite, h.q)), k=tuple(map(rewrite, h.k)), v=tuple(map(rewrite, h.v)))
                  for h in low.heads)
    out = Lowered(tuple(slots), heads, tuple(ffns), rewrite(low.output), low.vocab)
    groups = tuple(tuple(s for s, _ in take) for take in merged)
    return Fusion(out, groups, tuple((s, w) for take in merged for s, w in take))
