"""Place every head and FFN block in a layer: as early as its inputs allow (shortest depth).

Stages count sub-layer boundaries: stage 0 is the embedding, stage 2l+1 follows layer l's
attention, stage 2l+2 its FFN.  A head in layer l reads stage 2l; an FFN block reads 2l+1.
Placing each op at its earliest layer fills attention and FFN of one layer together wherever
the dataflow allows, and gives the minimum number of layers for the lowered program.
"""

from __future__ import annotations

from dataclasses import dataclass

from rasp2d.compiler.primitives import ONE, Lowered


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


def _as_late_as_possible(low: Lowered, head_layer: list[int], ffn_layer: list[int], write: list[int],
                         n_layers: int) -> None:
    """Move every op to the latest layer its consumers allow, keeping the depth: values that
    are only needed late are then computed late and hold a residual dimension for less time."""
    readers: dict[int, list[tuple[str, int]]] = {}
    for h in low.heads:
        for s in h.inputs():
            readers.setdefault(s, []).append(("head", h.id))
    for b in low.ffns:
        for s in b.inputs():
            readers.setdefault(s, []).append(("ffn", b.id))
    final = 2 * n_layers
    out_slots = low.output.slots()
    ops = sorted([(min(write[s] for s in h.outputs), "head", h.id) for h in low.heads] +
                 [(write[b.output], "ffn", b.id) for b in low.ffns], reverse=True)
    for _, kind, i in ops:
        outs = low.heads[i].outputs if kind == "head" else (low.ffns[i].output,)
        need = final
        for s in outs:
            if s in out_slots:
                need = min(need, final)
            for rk, ri in readers.get(s, ()):
                need = min(need, 2 * head_layer[ri] if rk == "head" else 2 * ffn_layer[ri] + 1)
        if kind == "head":
            layer = max(head_layer[i], (need - 1) // 2)
            head_layer[i] = layer
            for s in outs:
                write[s] = 2 * layer + 1
        else:
            layer = max(ffn_layer[i], (need - 2) // 2)
            ffn_layer[i] = layer
            write[outs[0]] = 2 * layer + 2


def schedule(low: Lowered, late: bool = False) -> Schedule:
    write = [0] * len(low.slots)
    producer: dict[int, tuple[str, int]] = {}
    for h in low.heads:
        for s in h.outputs:
            producer[s] = ("head", h.id)
    for b in low.ffns:
        producer[b.output] = ("ffn", b.id)
    head_layer = [0] * len(low.heads)
    ffn_layer = [0] * len(low.ffns)
    done: set[tuple[str, int]] = set()

    def place(kind: str, oid: int) -> None:
        """Place an op after placing the producers of its inputs (depth-first, memoised)."""
        stack = [(kind, oid, False)]
        visiting: set[tuple[str, int]] = set()
        while stack:
            k, i, ready = stack.pop()
            if (k, i) in done:
                continue
            if not ready:
                if (k, i) in visiting:
                    raise AssertionError(f"dependency cycle through {k} {i} (internal error)")
                visiting.add((k, i))
            op = low.heads[i] if k == "head" else low.ffns[i]
            deps = [producer[s] for s in op.inputs() if s in producer and producer[s] not in done]
            if deps and not ready:
                stack.append((k, i, True))
                stack.extend((dk, di, False) for dk, di in deps)
                continue
            s_in = max((write[s] for s in op.inputs()), default=0)
            if k == "head":
                layer = (s_in + 1) // 2
                head_layer[i] = layer
                for s in op.outputs:
                    write[s] = 2 * layer + 1
            else:
                layer = s_in // 2
                ffn_layer[i] = layer
                write[op.output] = 2 * layer + 2
            done.add((k, i))

    for h in low.heads:
        place("head", h.id)
    for b in low.ffns:
        place("ffn", b.id)
    n_layers = max([l + 1 for l in head_layer] + [l + 1 for l in ffn_layer] + [1])
    final = 2 * n_layers
    if late:
        _as_late_as_possible(low, head_layer, ffn_layer, write, n_layers)
    last = [-1] * len(low.slots)
    for h in low.heads:
        for s in h.inputs():
            last[s] = max(last[s], 2 * head_layer[h.id])
    for b in low.ffns:
        for s in b.inputs():
            last[s] = max(last[s], 2 * ffn_layer[b.id] + 1)
    for s in low.output.slots() | {ONE}:  # the unembedding reads the one-slot (the -t^2 term)
        last[s] = final
    for s, w in enumerate(write):
        if low.slots[s].source == "dead":
            continue
        if last[s] < w:
            last[s] = w  # written but never read (e.g. an unused head channel)
    return Schedule(n_layers, tuple(head_layer), tuple(ffn_layer), tuple(write), tuple(last))
