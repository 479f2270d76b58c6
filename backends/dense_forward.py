"""The machine semantics as a plain full-sequence NumPy forward: O(n^2), no caches, no tricks.

This is the oracle the hull and brute runtimes are tested against, so it reads like the
``model_file`` docstring: every score of every position against every earlier position,
maximisers by exact equality, ``latest``/``average`` by their definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasp2d.backends.model_file import LATEST, CompiledModel, position_features


@dataclass(frozen=True, eq=False)
class LayerTrace:
    q: np.ndarray  # [n, H, 2]
    k: np.ndarray  # [n, H, 2]
    v: np.ndarray  # [n, H, 2]
    head_out: np.ndarray  # [n, H, 2]: each head's attention result
    gate: np.ndarray  # [n, F]: W_gate x (before the ReLU)
    val: np.ndarray  # [n, F]


@dataclass(frozen=True, eq=False)
class DenseTrace:
    residuals: np.ndarray  # [2L+1, n, d]: stage 0 = embedding, 2l+1 after attention l, 2l+2 after FFN l
    logits: np.ndarray  # [n, V]
    next_tokens: np.ndarray  # [n]: argmax, lowest id on ties
    layers: tuple[LayerTrace, ...]


def hardmax_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, latest: bool) -> np.ndarray:
    """One head over a whole sequence: ``q``, ``k``, ``v`` ``[n, 2]`` -> outputs ``[n, 2]``."""
    n = q.shape[0]
    scores = q[:, None, 0] * k[None, :, 0] + q[:, None, 1] * k[None, :, 1]  # [i, j]
    causal = np.tril(np.ones((n, n), dtype=bool))
    best = np.where(causal, scores, -np.inf).max(axis=1, keepdims=True)
    winners = causal & (scores == best)
    if latest:
        last = n - 1 - np.argmax(winners[:, ::-1], axis=1)
        return v[last]
    return (winners.astype(np.float64) @ v) / winners.sum(axis=1, keepdims=True)


def dense_forward(model: CompiledModel, tokens) -> DenseTrace:
    ids = np.asarray(tokens, dtype=np.int64)
    n = ids.shape[0]
    x = model.embed[ids] + position_features(np.arange(n)) @ model.pos_embed
    residuals = [x]
    layers = []
    for l in range(model.n_layers):
        q = np.einsum("hcd,nd->nhc", model.W_q[l], x)
        k = np.einsum("hcd,nd->nhc", model.W_k[l], x)
        v = np.einsum("hcd,nd->nhc", model.W_v[l], x)
        out = np.stack([hardmax_attention(q[:, h], k[:, h], v[:, h], model.tie[l, h] == LATEST)
                        for h in range(model.n_heads)], axis=1)
        x = x + np.einsum("dhc,nhc->nd", model.W_o[l], out)
        residuals.append(x)
        gate = x @ model.W_gate[l].T
        val = x @ model.W_val[l].T
        x = x + (np.maximum(gate, 0.0) * val) @ model.W_out[l].T
        residuals.append(x)
        layers.append(LayerTrace(q, k, v, out, gate, val))
    logits = x @ model.unembed.T
    return DenseTrace(np.stack(residuals), logits, np.argmax(logits, axis=1), tuple(layers))
