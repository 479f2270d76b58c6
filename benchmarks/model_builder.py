"""A small hand builder of CompiledModels for benchmarks: named dimensions, heads, ReGLU units.

Benchmarks need models of a chosen shape (e.g. 7 layers x 16 used heads) whose heads do
real look-ups far back, before the compiler can produce such programs.  The builder keeps
the bookkeeping out of the model definitions: each residual dimension is allocated once
(no reuse: these models are small), a head is given as four sparse rows (query, key, value
and where its outputs go), a unit as gate/value/out rows.  Rows are ``{dim: weight}``.

Helpers emit the standard exact constructions of DESIGN.md section 1: the ``(2k, -k^2)``
look-up, ``y mod m`` and ``(y mod m)^2`` for a bounded integer ``y`` from ReLU steps, and a
parabola unembedding whose argmax is an integer residual value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rasp2d.backends.model_file import AVERAGE, LATEST, CompiledModel, Generation

Row = dict[int, float]


class ModelBuilder:
    def __init__(self, vocab_size: int, n_layers: int, max_dims: int, d_ffn: int):
        self.V, self.L, self.F = vocab_size, n_layers, d_ffn
        self.H = (max_dims + 1) // 2
        d = 2 * self.H
        self.d = d
        self.labels: list[str] = []
        self.embed = np.zeros((vocab_size, d))
        self.pos_embed = np.zeros((2, d))
        self.W_q = np.zeros((n_layers, self.H, 2, d))
        self.W_k = np.zeros_like(self.W_q)
        self.W_v = np.zeros_like(self.W_q)
        self.W_o = np.zeros((n_layers, d, self.H, 2))
        self.tie = np.zeros((n_layers, self.H), dtype=np.int8)
        self.W_gate = np.zeros((n_layers, d_ffn, d))
        self.W_val = np.zeros_like(self.W_gate)
        self.W_out = np.zeros((n_layers, d, d_ffn))
        self.unembed = np.zeros((vocab_size, d))
        self._heads = [0] * n_layers
        self._units = [0] * n_layers
        self.ONE = self.token_feature("1", lambda t: 1)
        self.POS = self.dim("pos")
        self.POS2 = self.dim("pos^2")
        self.pos_embed[0, self.POS] = 1
        self.pos_embed[1, self.POS2] = 1

    def dim(self, label: str) -> int:
        if len(self.labels) == self.d:
            raise ValueError(f"out of residual dimensions (max_dims={self.d})")
        self.labels.append(label)
        return len(self.labels) - 1

    def token_feature(self, label: str, f: Callable[[int], float]) -> int:
        j = self.dim(label)
        self.embed[:, j] = [f(t) for t in range(self.V)]
        return j

    def head(self, layer: int, tie: int, query: tuple[Row, Row], key: tuple[Row, Row],
             value: tuple[Row, Row], out: tuple[Row, Row]) -> None:
        h = self._heads[layer]
        if h == self.H:
            raise ValueError(f"layer {layer} has no free head (max {self.H})")
        self._heads[layer] += 1
        for W, rows in ((self.W_q, query), (self.W_k, key), (self.W_v, value)):
            for c, row in enumerate(rows):
                for j, w in row.items():
                    W[layer, h, c, j] = w
        for c, row in enumerate(out):
            for j, w in row.items():
                self.W_o[layer, j, h, c] = w
        self.tie[layer, h] = tie

    def unit(self, layer: int, gate: Row, val: Row, out: Row) -> None:
        u = self._units[layer]
        if u == self.F:
            raise ValueError(f"layer {layer} has no free FFN unit (max {self.F})")
        self._units[layer] += 1
        for j, w in gate.items():
            self.W_gate[layer, u, j] = w
        for j, w in val.items():
            self.W_val[layer, u, j] = w
        for j, w in out.items():
            self.W_out[layer, j, u] = w

    # ------------------------------------------------------------------ constructions
    def lookup(self, layer: int, key: int, key_sq: int, query: Row, value: Row, out: int,
               tie: int = LATEST, also: int | None = None) -> None:
        """``out`` (and ``also``, if given) += value at the latest position whose ``key`` equals
        the query (an exact match scores strictly highest: key (2k, -k^2), query (q, 1),
        score q^2 - (k - q)^2)."""
        dest = {out: 1} if also is None else {out: 1, also: 1}
        self.head(layer, tie, (query, {self.ONE: 1}), ({key: 2}, {key_sq: -1}), (value, {}),
                  (dest, {}))

    def prev(self, layer: int, c: int, value: Row, out: int, also: int | None = None) -> None:
        """``out`` += value at position i - c (position 0 when i < c)."""
        self.lookup(layer, self.POS, self.POS2, {self.POS: 1, self.ONE: -c}, value, out,
                    also=also)

    def mod_and_square(self, layer: int, y: Row, y_max: int, m: int, out: int, out_sq: int) -> None:
        """``out`` += y mod m and ``out_sq`` += (y mod m)^2 for integer ``0 <= y <= y_max``.

        With steps s_k(y) = relu(y - km + 1) - relu(y - km) (0 or 1 on integers):
        y mod m = y - m sum_k s_k(y) and (y mod m)^2 = y^2 + sum_k s_k(y) (m^2 (2k-1) - 2m y)
        (the sum telescopes).  Two units per step and one each for y, y^2."""
        one = self.ONE
        self.unit(layer, y, {one: 1}, {out: 1})
        self.unit(layer, y, y, {out_sq: 1})
        for k in range(1, y_max // m + 1):
            lin = {j: -2 * m * w for j, w in y.items()}
            lin[one] = lin.get(one, 0) + m * m * (2 * k - 1)
            for shift, sign in ((1, 1), (0, -1)):
                gate = dict(y)
                gate[one] = gate.get(one, 0) - k * m + shift
                self.unit(layer, gate, {one: 1}, {out: -m * sign})
                self.unit(layer, gate, lin, {out_sq: sign})

    def emit_value(self, dim: int) -> None:
        """Next token = the integer in ``dim`` (logit_t = 2t x - t^2: margin >= 1)."""
        for t in range(self.V):
            self.unembed[t, dim] = 2 * t
            self.unembed[t, self.ONE] = -t * t

    def build(self, vocab: tuple[str, ...] | None = None) -> CompiledModel:
        vocab = vocab or tuple(str(t) for t in range(self.V))
        model = CompiledModel(
            vocab=vocab, embed=self.embed, pos_embed=self.pos_embed, W_q=self.W_q, W_k=self.W_k,
            W_v=self.W_v, W_o=self.W_o, tie=self.tie, W_gate=self.W_gate, W_val=self.W_val,
            W_out=self.W_out, unembed=self.unembed, generation=Generation(max_new_tokens=10**9))
        model.validate()
        return model


__all__ = ["ModelBuilder", "LATEST", "AVERAGE"]
