"""A CompiledModel flattened for a jitted decoding step: only what can change the output.

Compiled weights are very sparse: most FFN units read one or two residual dimensions, and
most heads are padding of the standard shape (``n_heads = d_model / 2``) with ``W_o == 0``.
A decoding step that walks dense matrices would spend nearly all its time multiplying
zeros, so the model is rewritten once as a bank of sparse rows (CSR: ``ptr``/``idx``/``val``)
plus index tables of the heads and units that are actually used.

Row bank layout (``bases`` holds the first row of each block):

* rows ``0, 1``: the position features' rows of ``pos_embed`` (``pos``, ``pos^2``);
* head ``g`` (used heads only, layer by layer): rows ``bases[HEADS] + 8g + j`` for
  ``j`` = q0, q1, k0, k1, v0, v1 (read the residual) and out0, out1 (columns of ``W_o``:
  where the head's two outputs are added);
* unit ``u`` (used FFN units only): rows ``bases[UNITS] + 3u + j`` for gate, value, out;
* token ``t``: row ``bases[UNEMBED] + t`` of the unembedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasp2d.backends.hull_kernels import HEAD_ROWS, UNIT_ROWS
from rasp2d.backends.model_file import CompiledModel


@dataclass(frozen=True, eq=False)
class SparseProgram:
    d_model: int
    n_layers: int
    vocab_size: int
    embed: np.ndarray  # [V, d] float64 (one row copied per token)
    ptr: np.ndarray  # [rows + 1] uint64
    idx: np.ndarray  # [nnz] uint32: residual dimension (unsigned: no negative-index wraparound)
    val: np.ndarray  # [nnz] float64: weight
    bases: np.ndarray  # [3] int64: first row of the head, unit and unembedding blocks
    layer_heads: np.ndarray  # [L + 1] int64: used heads of layer l are layer_heads[l]:layer_heads[l+1]
    layer_units: np.ndarray  # [L + 1] int64
    head_tie: np.ndarray  # [G] int64
    head_origin: np.ndarray  # [G, 2] int64: (layer, head) in the CompiledModel

    @property
    def n_used_heads(self) -> int:
        return int(self.head_tie.shape[0])

    @property
    def n_used_units(self) -> int:
        return int(self.layer_units[-1])

    @property
    def nnz(self) -> int:
        return int(self.val.shape[0])


def sparse_program(model: CompiledModel) -> SparseProgram:
    model.validate()
    rows: list[np.ndarray] = [model.pos_embed[0], model.pos_embed[1]]
    layer_heads, layer_units, ties, origin = [0], [0], [], []
    head_rows: list[np.ndarray] = []
    unit_rows: list[np.ndarray] = []
    for l in range(model.n_layers):
        for h in range(model.n_heads):
            out = model.W_o[l, :, h, :]  # [d, 2]
            if not out.any():
                continue  # padding head: whatever it attends to, nothing is written
            head_rows += [model.W_q[l, h, 0], model.W_q[l, h, 1], model.W_k[l, h, 0],
                          model.W_k[l, h, 1], model.W_v[l, h, 0], model.W_v[l, h, 1],
                          out[:, 0], out[:, 1]]
            ties.append(int(model.tie[l, h]))
            origin.append((l, h))
        layer_heads.append(len(ties))
        for u in range(model.d_ffn):
            gate, value, out = model.W_gate[l, u], model.W_val[l, u], model.W_out[l, :, u]
            if not (gate.any() and value.any() and out.any()):
                continue  # relu(0) * v, relu(g) * 0 or a discarded product: always adds 0
            unit_rows += [gate, value, out]
        layer_units.append(len(unit_rows) // UNIT_ROWS)
    bases = np.array([len(rows), len(rows) + len(head_rows),
                      len(rows) + len(head_rows) + len(unit_rows)], dtype=np.int64)
    rows += head_rows + unit_rows + list(model.unembed)
    ptr = np.zeros(len(rows) + 1, dtype=np.uint64)  # unsigned: no wraparound code
    idx_parts, val_parts = [], []
    for r, row in enumerate(rows):
        nz = np.flatnonzero(row)
        idx_parts.append(nz)
        val_parts.append(row[nz])
        ptr[r + 1] = ptr[r] + nz.size
    cat = lambda parts, dtype: (np.concatenate(parts).astype(dtype) if parts  # noqa: E731
                                else np.zeros(0, dtype=dtype))
    return SparseProgram(
        d_model=model.d_model, n_layers=model.n_layers, vocab_size=len(model.vocab),
        embed=np.ascontiguousarray(model.embed, dtype=np.float64),
        ptr=ptr, idx=cat(idx_parts, np.uint32), val=cat(val_parts, np.float64), bases=bases,
        layer_heads=np.array(layer_heads, dtype=np.int64),
        layer_units=np.array(layer_units, dtype=np.int64),
        head_tie=np.array(ties, dtype=np.int64),
        head_origin=np.array(origin, dtype=np.int64).reshape(-1, 2),
    )
