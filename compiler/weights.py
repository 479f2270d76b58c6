"""Scheduled, allocated primitives -> the dense float64 weights of a standard transformer.

Also writes the manifest: every residual dimension, head and FFN unit is named after the
expression it came from, so `rasp2d inspect` can show where each expression lives.
"""

from __future__ import annotations

import numpy as np

from rasp2d.backends.model_file import (AVERAGE, LATEST, CompiledModel, Generation, HeadLabel,
                                        Manifest, ResidualSlot, UnitGroup)
from rasp2d.compiler.allocate import Allocation
from rasp2d.compiler.primitives import ONE, Lin, Lowered, Unit
from rasp2d.compiler.schedule import Schedule


def model_shape(low: Lowered, sch: Schedule, alloc: Allocation) -> tuple[int, int]:
    """(d_model, FFN width) of the dense model a layout gives: enough dimensions for the values
    and for the busiest layer's 2-dimensional heads (even), units of the busiest FFN."""
    max_heads = max((len(sch.heads_in(l)) for l in range(sch.n_layers)), default=0)
    d = max(alloc.n_dims, 2 * max_heads, 2)
    d += d % 2
    units = [sum(len(low.ffns[b].units) for b in sch.ffns_in(l)) + sum(1 for c in alloc.clears if c.layer == l)
             for l in range(sch.n_layers)]
    return d, max(units + [1])


def emit_weights(low: Lowered, sch: Schedule, alloc: Allocation, generation: Generation,
                 source_bundle: str = "") -> CompiledModel:
    L = sch.n_layers
    heads_per_layer = [sch.heads_in(l) for l in range(L)]
    d, F = model_shape(low, sch, alloc)
    H = d // 2
    clears_per_layer = [[c for c in alloc.clears if c.layer == l] for l in range(L)]
    V = len(low.vocab)
    dim = alloc.dim

    def vec(lin: Lin) -> np.ndarray:
        out = np.zeros(d)
        for s, c in lin.terms:
            out[dim[s]] += c
        if lin.const:
            out[dim[ONE]] += lin.const
        return out

    embed = np.zeros((V, d))
    pos_embed = np.zeros((2, d))
    for slot in low.slots:
        if slot.source == "one":
            embed[:, dim[slot.id]] = 1.0
        elif slot.source == "token":
            embed[:, dim[slot.id]] = slot.token_values
        elif slot.source == "pos":
            pos_embed[0, dim[slot.id]] = 1.0
        elif slot.source == "pos_sq":
            pos_embed[1, dim[slot.id]] = 1.0

    W_q, W_k, W_v = (np.zeros((L, H, 2, d)) for _ in range(3))
    W_o = np.zeros((L, d, H, 2))
    tie = np.zeros((L, H), dtype=np.int8)
    head_labels = []
    for l, hs in enumerate(heads_per_layer):
        for hi, hid in enumerate(hs):
            h = low.heads[hid]
            for c in range(2):
                W_q[l, hi, c] = vec(h.q[c])
                W_k[l, hi, c] = vec(h.k[c])
            for c, (lin, out) in enumerate(zip(h.v, h.outputs)):
                W_v[l, hi, c] = vec(lin)
                W_o[l, dim[out], hi, c] = 1.0
            tie[l, hi] = AVERAGE if h.tie == "average" else LATEST
            head_labels.append(HeadLabel(l, hi, h.label, h.tie,
                                         tuple(low.slots[s].label for s in h.outputs)))

    W_gate, W_val = np.zeros((L, F, d)), np.zeros((L, F, d))
    W_out = np.zeros((L, d, F))
    groups = []
    for l in range(L):
        u = 0

        def put(unit: Unit, out_slot: int) -> None:
            nonlocal u
            W_gate[l, u] = vec(unit.gate)
            W_val[l, u] = vec(unit.value)
            W_out[l, dim[out_slot], u] = unit.coef
            u += 1

        for bid in sch.ffns_in(l):
            b = low.ffns[bid]
            start = u
            for unit in b.units:
                put(unit, b.output)
            groups.append(UnitGroup(l, start, u - start, b.label))
        for c in clears_per_layer[l]:
            start = u
            put(Unit(Lin(const=1), Lin.of(c.slot, -1), 1), c.slot)
            groups.append(UnitGroup(l, start, 1, f"clear {low.slots[c.slot].label}"))

    unembed = np.zeros((V, d))
    out_vec = vec(low.output)
    for t in range(V):
        # logit_t = 2t*y - t^2 = y^2 - (y - t)^2: the largest exactly at t = y, margin >= 1
        unembed[t] = 2 * t * out_vec
        unembed[t, dim[ONE]] -= t * t

    residual = tuple(ResidualSlot(dim[s.id], s.label, sch.write_stage[s.id], sch.last_read[s.id])
                     for s in low.slots if s.source != "dead")
    manifest = Manifest(residual=residual, heads=tuple(head_labels), units=tuple(groups),
                        output_label="emit", source=source_bundle)
    model = CompiledModel(vocab=low.vocab, embed=embed, pos_embed=pos_embed, W_q=W_q, W_k=W_k,
                          W_v=W_v, W_o=W_o, tie=tie, W_gate=W_gate, W_val=W_val, W_out=W_out,
                          unembed=unembed, manifest=manifest, generation=generation)
    model.validate()
    return model
