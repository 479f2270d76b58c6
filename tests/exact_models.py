"""Random CompiledModels on which every backend must agree bit for bit.

`random_exact_model` draws small-integer weights arranged so that every quantity of the
forward pass is an exact float64 integer, *including* the outputs of `average` heads: their
values are scaled by lcm(1..max_len), so the mean of up to max_len of them is an integer.
Then summation order cannot matter and residuals, logits and tokens must be equal across
backends, not just close.  Heads are drawn from the shapes the compiler emits (look-ups by
position `(2j, -j^2)` and by value `(2a, -a^2)`, constant keys, select-max keys `(s, 0)`),
plus unstructured random keys (duplicates, collinear points, zero queries) and padding heads.

Magnitudes grow with depth, so `exact_trace` checks a trace (and the hull's score contract)
before a test relies on it; the generator itself retries until a few random inputs pass.
"""

from __future__ import annotations

from math import lcm

import numpy as np

from rasp2d.backends.dense_forward import DenseTrace, dense_forward
from rasp2d.backends.model_file import AVERAGE, LATEST, CompiledModel

ONE, POS, POS2, A, A2 = 0, 1, 2, 3, 4  # constant, pos, pos^2, a token value a, and a^2
SPECIAL = 5  # dims below this are read-only (no head or unit writes them)
HEAD_KINDS = ("random", "prev", "lookup", "constant", "select_max", "zero_query", "padding")
LIMIT = 2.0**50


def _zeros(L, d, F, V):
    H = d // 2
    return dict(
        embed=np.zeros((V, d)), pos_embed=np.zeros((2, d)),
        W_q=np.zeros((L, H, 2, d)), W_k=np.zeros((L, H, 2, d)), W_v=np.zeros((L, H, 2, d)),
        W_o=np.zeros((L, d, H, 2)), tie=np.zeros((L, H), dtype=np.int8),
        W_gate=np.zeros((L, F, d)), W_val=np.zeros((L, F, d)), W_out=np.zeros((L, d, F)),
        unembed=np.zeros((V, d)),
    )


def _draw(rng, n_layers, n_heads, d_ffn, vocab_size, max_len) -> CompiledModel:
    L, H, F, V = n_layers, n_heads, d_ffn, vocab_size
    d = 2 * H
    assert d > SPECIAL + 1, "need room for free dimensions"
    free = np.arange(SPECIAL, d)
    scale = float(lcm(*range(1, max_len + 1)))
    w = _zeros(L, d, F, V)

    def ints(n, lo=-2, hi=2, density=0.5):
        return rng.integers(lo, hi + 1, size=n) * (rng.random(n) < density)

    a = rng.integers(-3, 4, size=V)
    w["embed"][:, ONE] = 1
    w["embed"][:, A] = a
    w["embed"][:, A2] = a * a
    w["embed"][:, SPECIAL:] = ints((V, d - SPECIAL))
    w["pos_embed"][0, POS] = 1
    w["pos_embed"][1, POS2] = 1
    # "narrow" dims stay small: queries, keys and FFN inputs read only them.  "wide" dims
    # take the lcm-scaled averages; only values and the unembedding read them.
    narrow, wide = free[: free.size // 2], free[free.size // 2:]
    small = np.r_[ONE, A, narrow]
    for l in range(L):
        for h in range(H):
            kind = HEAD_KINDS[rng.integers(len(HEAD_KINDS))]
            tie = int(rng.integers(2))
            q, k, v = w["W_q"][l, h], w["W_k"][l, h], w["W_v"][l, h]
            if kind == "prev":  # key (2j, -j^2), query (i - c, 1): position i - c
                k[0, POS], k[1, POS2] = 2, -1
                q[0, POS], q[0, ONE], q[1, ONE] = 1, -int(rng.integers(0, 4)), 1
            elif kind == "lookup":  # key (2a, -a^2), query (b, 1): latest/mean where a == b
                k[0, A], k[1, A2] = 2, -1
                q[0, small], q[1, ONE] = ints(small.size, density=0.3), 1
            elif kind == "constant":  # every key ties: prefix mean / last value
                q[:, small] = ints((2, small.size))
            elif kind == "select_max":  # keys (s, 0), query (+-1, 0)
                k[0, small] = ints(small.size)
                q[0, ONE] = rng.choice([-1, 1])
            elif kind in ("random", "padding"):
                q[:, small] = ints((2, small.size), density=0.4)
                k[:, small] = ints((2, small.size), density=0.4)
            else:  # zero_query: keys vary, the query is zero, every key ties
                k[:, small] = ints((2, small.size), density=0.4)
            reads_wide = tie == LATEST and rng.random() < 0.3
            src = np.r_[small, wide] if reads_wide else small
            v[:, src] = ints((2, src.size), density=0.4)
            if kind == "prev":
                v[0, POS] = 1
            if tie == AVERAGE:
                v *= scale
            dst = wide if (tie == AVERAGE or reads_wide) else free
            if kind != "padding":
                w["W_o"][l, dst, h, :] = ints((dst.size, 2), lo=-1, hi=1, density=0.3)
            w["tie"][l, h] = tie
        for u in range(F):
            w["W_gate"][l, u, small] = ints(small.size, density=0.4)
            if rng.random() < 0.75:
                w["W_val"][l, u, ONE] = 1  # relu(g): piecewise linear, keeps magnitudes small
            else:
                w["W_val"][l, u, small] = ints(small.size, lo=-1, hi=1, density=0.3)
            if rng.random() < 0.85:  # some units stay dead (no output): runtimes skip them
                w["W_out"][l, narrow, u] = ints(narrow.size, lo=-1, hi=1, density=0.4)
    w["unembed"][:] = rng.integers(-3, 4, size=(V, d))
    model = CompiledModel(vocab=tuple(f"t{i}" for i in range(V)), **w)
    model.validate()
    return model


def exact_trace(model: CompiledModel, trace: DenseTrace) -> bool:
    """Every value of the trace an integer below 2^50, every head's scores exact (hull contract)."""
    arrays = [trace.residuals, trace.logits]
    for lt in trace.layers:
        arrays += [lt.q, lt.k, lt.v, lt.head_out, lt.gate, lt.val]
        bound = (np.abs(lt.q).max(axis=0) * np.abs(lt.k).max(axis=0)).sum(axis=-1)  # [H]
        if (bound >= LIMIT).any():
            return False
        hidden = np.maximum(lt.gate, 0.0) * lt.val
        arrays.append(hidden)
    for arr in arrays:
        if arr.size and not (np.all(np.abs(arr) < LIMIT) and np.all(arr == np.round(arr))):
            return False
    return True


def random_exact_model(rng: np.random.Generator, n_layers: int = 2, n_heads: int = 6,
                       d_ffn: int = 4, vocab_size: int = 6, max_len: int = 12,
                       tries: int = 50) -> CompiledModel:
    """A random model whose traces on (a sample of) inputs up to ``max_len`` are exact."""
    for _ in range(tries):
        model = _draw(rng, n_layers, n_heads, d_ffn, vocab_size, max_len)
        probes = [rng.integers(0, vocab_size, size=max_len) for _ in range(3)]
        if all(exact_trace(model, dense_forward(model, p)) for p in probes):
            return model
    raise RuntimeError("no exact model found; use fewer layers or a shorter max_len")
