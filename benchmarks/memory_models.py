"""Running-memory models for the hull benchmark: their heads look up writes far back.

``MEMORY_WALK_SOURCE`` is the benchmark's main workload as a .rasp2d program (compiled with
``rasp2d.compiler``): every position writes memory cell ``M[previous token] = token`` and
reads ``M[token]``, the next token mixes the read value with the current one.  Its two heads
are a look-up by position (the key set grows with t: every position stays on the hull) and
a look-up by address (16 addresses: the hull holds at most 16 points, whatever t is).

``memory_walk_model`` builds the same machine by hand (a miss returns the nearest address
instead of a default), so the benchmark can run while the compiler is being changed.

``wide_memory_machine`` is the size benchmark: ``n_layers`` layers of ``heads_per_layer``
used heads each (7 x 16 is the WASM machine's size): per layer, look-ups of earlier
positions (8), memory reads by a state-dependent address (6), a prefix mean and a select-max
(1 each); the look-ups also add their results into one dimension (as a compiler would), and
the FFN folds that sum into the next state ``(state + sum) mod 16`` and its square.
"""

from __future__ import annotations

from model_builder import AVERAGE, LATEST, ModelBuilder

from rasp2d.backends.model_file import CompiledModel

MEMORY_WALK_SOURCE = """\
# memory walk: write M[previous token] = token at every position, read M[token]
vocab { 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 }
max_len 1048576
let t = int(tokens)
let p = lookup(indices, indices - 1, t, default=0)
let m = lookup(p, t, t, default=0)
emit token((m + 3 * t + 1) % 16)
"""

V = 16


def compiled_memory_walk() -> CompiledModel:
    from rasp2d.compiler.api import compile_source

    return compile_source(MEMORY_WALK_SOURCE, "<memory_walk>").model


def memory_walk_model() -> CompiledModel:
    b = ModelBuilder(V, n_layers=2, max_dims=12, d_ffn=16)
    T = b.token_feature("t", lambda t: t)
    T2 = b.token_feature("t^2", lambda t: t * t)
    P, P2, M, S, S2 = (b.dim(n) for n in ("p", "p^2", "m", "next", "next^2"))
    b.prev(0, 1, {T: 1}, P)
    b.unit(0, {P: 1}, {P: 1}, {P2: 1})  # p^2 (p >= 0)
    b.lookup(1, P, P2, {T: 1}, {T: 1}, M)
    b.mod_and_square(1, {M: 1, T: 3, b.ONE: 1}, 15 + 45 + 1, V, S, S2)
    b.emit_value(S)
    return b.build()


def wide_memory_machine(n_layers: int = 7, heads_per_layer: int = 16) -> CompiledModel:
    n_prev, n_mem = heads_per_layer // 2, heads_per_layer // 2 - 2
    per_layer = n_prev + n_mem + 2 + 3
    b = ModelBuilder(V, n_layers, max_dims=5 + per_layer * n_layers, d_ffn=2 + 4 * 15)
    T = b.token_feature("t", lambda t: t)
    T2 = b.token_feature("t^2", lambda t: t * t)
    state, state_sq, prev_outs = T, T2, []
    for l in range(n_layers):
        P = [b.dim(f"L{l} prev{h}") for h in range(n_prev)]
        M = [b.dim(f"L{l} mem{h}") for h in range(n_mem)]
        total = b.dim(f"L{l} sum of look-ups")  # every look-up also adds itself here
        mean, top = b.dim(f"L{l} prefix mean"), b.dim(f"L{l} argmax pos")
        for h, out in enumerate(P):
            b.prev(l, 1 + (7 * l + 3 * h) % 29, {state: 1}, out, also=total)
        for h, out in enumerate(M):
            # read address: an earlier layer's look-up (layer 0: a fixed cell)
            query = {prev_outs[h]: 1} if prev_outs else {b.ONE: 2 * h}
            b.lookup(l, state, state_sq, query, {T: 1}, out, also=total)
        b.head(l, AVERAGE, ({b.ONE: 1}, {}), ({}, {}), ({T: 1}, {}), ({mean: 1}, {}))
        b.head(l, LATEST, ({b.ONE: 1}, {}), ({state: 1}, {}), ({b.POS: 1}, {}), ({top: 1}, {}))
        nxt, nxt_sq = b.dim(f"L{l} state"), b.dim(f"L{l} state^2")
        b.mod_and_square(l, {state: 1, total: 1}, 15 * (1 + n_prev + n_mem), V, nxt, nxt_sq)
        state, state_sq, prev_outs = nxt, nxt_sq, P
    b.emit_value(state)
    return b.build()
