"""Place every head and FFN block in a layer: minimum depth first, then the narrowest model.

Stages count sub-layer boundaries: stage 0 is the embedding, stage 2l+1 follows layer l's
attention, stage 2l+2 its FFN.  An op is placed by the stage it writes: a head in layer l
writes 2l+1 and reads 2l, an FFN block writes 2l+2 and reads 2l+1.  So the one rule for every
edge is "a producer writes strictly before its consumer does", and each op has a window
[earliest, latest] of write stages at a given depth (its slack).

The depth is the longest chain (every op as early as possible).  Within that depth the model's
size is d_model (the most values alive at one stage, or twice the busiest layer's heads) times
(4 d_model + 3 FFN width) floats per layer, and FFN width is the most units in one layer.  An
unlucky placement keeps operand bits alive for layers or piles every big block into one layer,
so `narrow_schedule` starts from both extremes and moves ops inside their windows (pushing the
consumers or producers in the way along) while that makes the model smaller, ties broken by
flatter live and unit profiles.  A move that only shortens one value's life rarely changes the
peak at once; the flatness tie-break is what walks the search across such plateaus.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from rasp2d.compiler.primitives import ONE, Lowered

NEVER = 10 ** 9  # "held to the end": a value the unembedding reads or that no clear can free


@dataclass(frozen=True)
class Schedule:
    n_layers: int
    head_layer: tuple[int, ...]  # by head id
    ffn_layer: tuple[int, ...]  # by block id
    write_stage: tuple[int, ...]  # by slot id
    last_read: tuple[int, ...]  # by slot id; final stage for the output's slots

    @property
    def final_stage(self) -> int:
        return 2 * self.n_layers

    def heads_in(self, layer: int) -> list[int]:
        return [h for h, l in enumerate(self.head_layer) if l == layer]

    def ffns_in(self, layer: int) -> list[int]:
        return [b for b, l in enumerate(self.ffn_layer) if l == layer]


# ----------------------------------------------------------------------------- the op graph
@dataclass(frozen=True)
class Op:
    kind: Literal["head", "ffn"]
    index: int  # head id or FFN block id
    inputs: tuple[int, ...]  # slots read
    outputs: tuple[int, ...]  # slots written
    units: int  # ReGLU units (0 for heads)


@dataclass(frozen=True)
class OpGraph:
    """Heads and FFN blocks as one list of ops (heads first), with producer/consumer edges."""

    ops: tuple[Op, ...]
    preds: tuple[tuple[int, ...], ...]  # op -> ops whose outputs it reads
    succs: tuple[tuple[int, ...], ...]  # op -> ops that read its outputs
    topo: tuple[int, ...]  # producers before consumers
    producer: tuple[int, ...]  # slot -> op id, -1 for embedding slots
    readers: tuple[tuple[int, ...], ...]  # slot -> op ids that read it
    held: frozenset[int]  # slots the unembedding reads (the output's and the one-slot)


def op_graph(low: Lowered) -> OpGraph:
    ops = [Op("head", h.id, tuple(sorted(h.inputs())), h.outputs, 0) for h in low.heads]
    ops += [Op("ffn", b.id, tuple(sorted(b.inputs())), (b.output,), len(b.units)) for b in low.ffns]
    producer = [-1] * len(low.slots)
    for i, op in enumerate(ops):
        for s in op.outputs:
            producer[s] = i
    readers: list[list[int]] = [[] for _ in low.slots]
    preds: list[set[int]] = [set() for _ in ops]
    succs: list[set[int]] = [set() for _ in ops]
    for i, op in enumerate(ops):
        for s in op.inputs:
            readers[s].append(i)
            p = producer[s]
            if p >= 0:
                preds[i].add(p)
                succs[p].add(i)
    indeg = [len(p) for p in preds]
    ready = [i for i, n in enumerate(indeg) if n == 0]
    topo = []
    while ready:
        i = ready.pop()
        topo.append(i)
        for j in succs[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
    if len(topo) != len(ops):
        raise AssertionError("dependency cycle among heads and FFN blocks (internal error)")
    return OpGraph(tuple(ops), tuple(tuple(sorted(p)) for p in preds), tuple(tuple(sorted(s)) for s in succs),
                   tuple(topo), tuple(producer), tuple(tuple(r) for r in readers),
                   frozenset(low.output.slots() | {ONE}))


def first_stage_from(kind: str, stage: int) -> int:
    """The first stage >= `stage` an op of this kind can write (heads odd, FFN blocks even)."""
    want = 1 if kind == "head" else 0
    stage = max(stage, 1 if kind == "head" else 2)
    return stage if stage % 2 == want else stage + 1


def last_stage_until(kind: str, stage: int) -> int:
    """The last stage <= `stage` an op of this kind can write."""
    want = 1 if kind == "head" else 0
    return stage if stage % 2 == want else stage - 1


def earliest(g: OpGraph) -> list[int]:
    """Write stage of every op placed as early as its inputs allow."""
    w = [0] * len(g.ops)
    for i in g.topo:
        w[i] = first_stage_from(g.ops[i].kind, max((w[p] + 1 for p in g.preds[i]), default=0))
    return w


def min_layers(g: OpGraph) -> int:
    return max([(s + 1) // 2 for s in earliest(g)] + [1])


def latest(g: OpGraph, n_layers: int) -> list[int]:
    """Write stage of every op placed as late as its consumers allow in `n_layers` layers."""
    final = 2 * n_layers
    w = [0] * len(g.ops)
    for i in reversed(g.topo):
        w[i] = last_stage_until(g.ops[i].kind, min((w[c] - 1 for c in g.succs[i]), default=final))
    return w


def schedule_from_stages(low: Lowered, g: OpGraph, w: list[int], n_layers: int) -> Schedule:
    """The Schedule of ops writing at stages `w` (checked: every input is written first)."""
    final = 2 * n_layers
    write = [0] * len(low.slots)
    last = [-1] * len(low.slots)
    for i, op in enumerate(g.ops):
        if not 0 < w[i] <= final or (w[i] % 2 == 1) != (op.kind == "head"):
            raise AssertionError(f"{op.kind} {op.index} placed at impossible stage {w[i]} (internal error)")
        for s in op.outputs:
            write[s] = w[i]
    for i, op in enumerate(g.ops):
        for s in op.inputs:
            if write[s] >= w[i]:
                raise AssertionError(f"{op.kind} {op.index} at stage {w[i]} reads slot {s} written at "
                                     f"{write[s]} (internal error)")
            last[s] = max(last[s], w[i] - 1)
    for s in g.held:
        last[s] = final
    for s, ws in enumerate(write):
        if low.slots[s].source != "dead" and last[s] < ws:
            last[s] = ws  # written but never read (e.g. an unused head channel)
    head_layer = [0] * len(low.heads)
    ffn_layer = [0] * len(low.ffns)
    for i, op in enumerate(g.ops):
        if op.kind == "head":
            head_layer[op.index] = (w[i] - 1) // 2
        else:
            ffn_layer[op.index] = (w[i] - 2) // 2
    return Schedule(n_layers, tuple(head_layer), tuple(ffn_layer), tuple(write), tuple(last))


def schedule(low: Lowered, late: bool = False) -> Schedule:
    """Minimum depth; every op as early (or, with `late`, as late) as the dependencies allow."""
    g = op_graph(low)
    n = min_layers(g)
    return schedule_from_stages(low, g, latest(g, n) if late else earliest(g), n)


# ----------------------------------------------------------------------------- narrow placement
def hold_end(last_read: int, n_layers: int) -> int:
    """Last stage a value occupies its dimension: up to the FFN that clears it (allocate.py)."""
    if last_read >= 2 * n_layers:
        return NEVER
    return 2 * (last_read // 2) + 2


class _Placement:
    """Live-value and unit profiles of one placement, updated incrementally as ops move.

    Live counts are kept as differences (a value's stay costs two updates), and each slot
    keeps how many of its readers write at each stage, so its last read is a max over a few
    stages, not over all its readers."""

    def __init__(self, low: Lowered, g: OpGraph, w: list[int], n_layers: int):
        self.g, self.L = g, n_layers
        self.final = 2 * n_layers
        self.w = list(w)
        self.dlive = [0] * (self.final + 2)
        self.units = [0] * n_layers
        self.clears = [0] * n_layers
        self.heads = [0] * n_layers
        self.span: dict[int, tuple[int, int]] = {}
        self.reads: dict[int, dict[int, int]] = {s.id: {} for s in low.slots if s.source != "dead"}
        for i, op in enumerate(g.ops):
            self._count_op(i, self.w[i], +1)
            for s in op.inputs:
                r = self.reads[s]
                r[self.w[i]] = r.get(self.w[i], 0) + 1
        for s in self.reads:
            self._put_span(s, self._span_of(s), +1)

    def _count_op(self, i: int, stage: int, sign: int) -> None:
        op = self.g.ops[i]
        if op.kind == "head":
            self.heads[(stage - 1) // 2] += sign
        else:
            self.units[(stage - 2) // 2] += sign * op.units

    def _span_of(self, s: int) -> tuple[int, int]:
        p = self.g.producer[s]
        start = self.w[p] if p >= 0 else 0
        if s in self.g.held:
            return start, NEVER
        r = self.reads[s]
        last = max(r) - 1 if r else start
        return start, hold_end(max(last, start), self.L)

    def _put_span(self, s: int, span: tuple[int, int], sign: int) -> None:
        start, end = span
        self.dlive[start] += sign
        if end != NEVER:
            self.dlive[end + 1] -= sign
            self.clears[(end - 2) // 2] += sign
        if sign > 0:
            self.span[s] = span

    def move(self, i: int, stage: int) -> None:
        op = self.g.ops[i]
        old = self.w[i]
        self._count_op(i, old, -1)
        self.w[i] = stage
        self._count_op(i, stage, +1)
        for s in op.inputs:
            r = self.reads[s]
            if r[old] == 1:
                del r[old]
            else:
                r[old] -= 1
            r[stage] = r.get(stage, 0) + 1
        for s in (*op.outputs, *op.inputs):
            span = self._span_of(s)
            if span != self.span[s]:
                self._put_span(s, self.span[s], -1)
                self._put_span(s, span, +1)

    def live(self) -> list[int]:
        return list(accumulate(self.dlive[:self.final + 1]))

    def cost(self) -> tuple[int, int]:
        """(floats per layer of the dense model, a tie-break favouring flat profiles)."""
        live = self.live()
        d = max(max(live), 2 * max(self.heads), 2)
        d += d % 2
        ffn = [u + c for u, c in zip(self.units, self.clears)]
        f = max(ffn + [1])
        flat = sum(x * x for x in live) * 64 + sum(x * x for x in ffn)
        return d * (4 * d + 3 * f), flat


def _push(p: _Placement, i: int, stage: int) -> list[tuple[int, int]]:
    """Move op i to `stage`, pushing consumers later (or producers earlier) just far enough to
    keep every edge legal; returns the moves made, to undo them."""
    done: list[tuple[int, int]] = []
    todo = [(i, stage)]
    while todo:
        o, t = todo.pop()
        if p.w[o] == t:
            continue
        later = t > p.w[o]
        done.append((o, p.w[o]))
        p.move(o, t)
        if later:
            for c in p.g.succs[o]:
                if p.w[c] <= t:
                    todo.append((c, first_stage_from(p.g.ops[c].kind, t + 1)))
        else:
            for q in p.g.preds[o]:
                if p.w[q] >= t:
                    todo.append((q, last_stage_until(p.g.ops[q].kind, t - 1)))
    return done


def _undo(p: _Placement, done: list[tuple[int, int]]) -> None:
    for o, t in reversed(done):
        p.move(o, t)


def _improve(p: _Placement, lo: list[int], hi: list[int], max_rounds: int = 20) -> None:
    """Move ops (with the consumers or producers they push) to their best stage within their
    slack [lo, hi] until nothing improves the cost."""
    order = list(p.g.topo)
    best = p.cost()
    for rnd in range(max_rounds):
        improved = False
        for i in (order if rnd % 2 == 0 else reversed(order)):
            if lo[i] == hi[i]:
                continue
            home = p.w[i]
            choice = home
            for stage in range(lo[i], hi[i] + 1, 2):
                if stage == home:
                    continue
                done = _push(p, i, stage)
                c = p.cost()
                if c < best:
                    best, choice = c, stage
                _undo(p, done)
            if choice != home:
                _push(p, i, choice)
                improved = True
        if not improved:
            break


def narrow_schedule(low: Lowered, extra_layers: int = 0) -> Schedule:
    """A placement at minimum depth (+ `extra_layers`) that makes the dense model small."""
    g = op_graph(low)
    n = min_layers(g) + extra_layers
    best: _Placement | None = None
    lo, hi = earliest(g), latest(g, n)
    for start in (lo, hi):
        p = _Placement(low, g, start, n)
        _improve(p, lo, hi)
        if best is None or p.cost() < best.cost():
            best = p
    return schedule_from_stages(low, g, best.w, n)
