"""The compiled model: weights of an ordinary transformer plus the manifest that names them.

This is the contract between the compiler (which writes it) and every runtime (torch, hull,
brute), so it is deliberately dumb: dense float64 arrays with standard shapes and a few
integers.  A saved model (`.npz`) loads without the source program.  On disk (format 2)
each array is stored as its non-zeros (flat indices and values): compiled weights are ~0.1%
dense, and inflating the dense arrays took longer than running a short program (the WASM
machine: 5.7 s for 1.2 GB of mostly zeros, now a fraction of a second).  Format 1 files
(dense arrays) still load.

Machine semantics every backend implements (DESIGN.md section 1):

* Residual stream of width ``d_model``; no layer norm; float64.
* Input: ``x_i = embed[token_i] + pos_features(i) @ pos_embed`` with
  ``pos_features(i) = (i, i*i)`` (positions count from 0).  The constant-one feature lives
  in ``embed`` (every row carries it), so no layer needs biases.
* Layer ``l``: ``x += attn_l(x)`` then ``x += ffn_l(x)``.
* Attention: ``n_heads = d_model // 2`` heads of dimension 2.  For head ``h``:
  ``q_i = W_q[l,h] @ x_i``, ``k_j = W_k[l,h] @ x_j``, ``v_j = W_v[l,h] @ x_j`` (2-vectors),
  score ``s_ij = q_i . k_j`` over ``j <= i`` (causal).  Hard-max: the maximisers are the ``j``
  whose score *equals* the maximum (exact float equality; the compiler only emits heads
  whose scores are exact integers).  ``tie[l,h] == LATEST`` returns ``v`` of the largest
  maximising ``j``; ``AVERAGE`` returns (sum of the maximisers' ``v``) / (their count), the sum
  taken exactly (the compiler only averages integer values, so any summation order gives
  the same float).  Output: ``x_i += sum_h W_o[l, :, h, :] @ o_ih``.
* FFN (gated ReLU, "ReGLU"): ``x += W_out[l] @ (relu(W_gate[l] @ x) * (W_val[l] @ x))``.
* Output: ``logits = unembed @ x``; the next token is the argmax (ties: lowest token id,
  which never happens for compiled models: their logits have a margin of at least 1).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

LATEST = 0
AVERAGE = 1
TIE_NAMES = {LATEST: "latest", AVERAGE: "average"}

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
WEIGHT_ARRAYS = ("embed", "pos_embed", "W_q", "W_k", "W_v", "W_o", "tie", "W_gate", "W_val",
                 "W_out", "unembed")


@dataclass(frozen=True)
class ResidualSlot:
    """One value's stay in one residual dimension.

    Stages count sub-layer boundaries: stage 0 is the embedding's output, stage ``2l+1`` the
    output of layer ``l``'s attention, stage ``2l+2`` the output of its FFN.  The value is
    present from ``first_stage`` through ``last_stage`` inclusive (``last_stage`` is the last
    stage at which something reads it).
    """

    dim: int
    label: str
    first_stage: int
    last_stage: int


@dataclass(frozen=True)
class HeadLabel:
    layer: int
    head: int
    label: str
    tie: str
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class UnitGroup:
    """A contiguous run of FFN units of one layer that compute one expression."""

    layer: int
    first_unit: int
    n_units: int
    label: str


@dataclass(frozen=True)
class Manifest:
    """Names every residual dimension, head and FFN unit after its source expression."""

    residual: tuple[ResidualSlot, ...] = ()
    heads: tuple[HeadLabel, ...] = ()
    units: tuple[UnitGroup, ...] = ()
    output_label: str = ""
    source: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> "Manifest":
        raw = json.loads(text)
        return Manifest(
            residual=tuple(ResidualSlot(**r) for r in raw.get("residual", ())),
            heads=tuple(HeadLabel(**{**h, "outputs": tuple(h["outputs"])}) for h in raw.get("heads", ())),
            units=tuple(UnitGroup(**u) for u in raw.get("units", ())),
            output_label=raw.get("output_label", ""),
            source=raw.get("source", ""),
        )

    def labels_at(self, stage: int) -> dict[int, str]:
        """Residual dimension -> label of the value it holds at ``stage``."""
        return {s.dim: s.label for s in self.residual if s.first_stage <= stage <= s.last_stage}


@dataclass(frozen=True)
class Generation:
    """How a runner turns a user's input into a prompt and when it stops generating."""

    prompt_end: str | None = None  # appended to the user's tokens unless already last
    stop: str | None = None  # generation ends after this token is emitted
    max_new_tokens: int = 256


@dataclass(frozen=True, eq=False)
class CompiledModel:
    vocab: tuple[str, ...]
    embed: np.ndarray  # [V, d]
    pos_embed: np.ndarray  # [2, d]: rows for the features (pos, pos^2)
    W_q: np.ndarray  # [L, H, 2, d]
    W_k: np.ndarray  # [L, H, 2, d]
    W_v: np.ndarray  # [L, H, 2, d]
    W_o: np.ndarray  # [L, d, H, 2]
    tie: np.ndarray  # [L, H] int8, LATEST or AVERAGE
    W_gate: np.ndarray  # [L, F, d]
    W_val: np.ndarray  # [L, F, d]
    W_out: np.ndarray  # [L, d, F]
    unembed: np.ndarray  # [V, d]
    manifest: Manifest = field(default_factory=Manifest)
    generation: Generation = field(default_factory=Generation)
    # sha256 of the weights, vocabulary and generation settings, set by :meth:`load` (None for
    # a model built in memory): lets a runtime cache what it derives from the weights
    digest: str | None = None

    @property
    def d_model(self) -> int:
        return int(self.embed.shape[1])

    @property
    def n_layers(self) -> int:
        return int(self.W_q.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.W_q.shape[1])

    @property
    def d_ffn(self) -> int:
        return int(self.W_gate.shape[1])

    def token_id(self, token: str) -> int:
        try:
            return self.vocab.index(token)
        except ValueError:
            raise KeyError(f"token {token!r} is not in the model's vocabulary") from None

    def nonzero_weights(self) -> int:
        arrays = (self.embed, self.pos_embed, self.W_q, self.W_k, self.W_v, self.W_o,
                  self.W_gate, self.W_val, self.W_out, self.unembed)
        return int(sum(np.count_nonzero(a) for a in arrays))

    def used_heads(self) -> int:
        """Heads with any non-zero weight (the rest are padding of the standard shape)."""
        return int(np.count_nonzero(np.abs(self.W_o).sum(axis=(1, 3))))

    def summary(self) -> str:
        return (f"layers={self.n_layers} d_model={self.d_model} heads/layer={self.n_heads} "
                f"(used {self.used_heads()}) ffn_width={self.d_ffn} vocab={len(self.vocab)} "
                f"nonzero_weights={self.nonzero_weights()}")

    def validate(self) -> None:
        L, H, d, F, V = self.n_layers, self.n_heads, self.d_model, self.d_ffn, len(self.vocab)
        expect = {
            "embed": (V, d), "pos_embed": (2, d), "W_q": (L, H, 2, d), "W_k": (L, H, 2, d),
            "W_v": (L, H, 2, d), "W_o": (L, d, H, 2), "tie": (L, H), "W_gate": (L, F, d),
            "W_val": (L, F, d), "W_out": (L, d, F), "unembed": (V, d),
        }
        for name, shape in expect.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(f"model array {name} has shape {got}, expected {shape}")
        if d != 2 * H:
            raise ValueError(f"d_model={d} must equal 2 * n_heads={2 * H}")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        self.validate()
        arrays = {}
        for name in WEIGHT_ARRAYS:
            shape, index, value = _nonzeros(getattr(self, name))
            arrays[f"{name}.shape"] = np.array(shape, dtype=np.int64)
            arrays[f"{name}.index"] = index
            arrays[f"{name}.value"] = value
        meta = {"format": FORMAT_VERSION, "vocab": list(self.vocab),
                "generation": asdict(self.generation)}
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays, meta=np.array(json.dumps(meta)),
                                manifest=np.array(self.manifest.to_json()))

    @staticmethod
    def load(path: str | Path) -> "CompiledModel":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            fmt = meta.get("format")
            if fmt not in READABLE_FORMATS:
                raise ValueError(f"{path}: unsupported model format {fmt!r} (this rasp2d reads "
                                 f"formats {READABLE_FORMATS}; recompile the model)")
            if fmt == 1:
                arrays = {name: z[name] for name in WEIGHT_ARRAYS}
                parts = {name: _nonzeros(a) for name, a in arrays.items()}
            else:
                parts = _stored_parts(z)
                arrays = {name: _densify(*parts[name]) for name in WEIGHT_ARRAYS}
            manifest = Manifest.from_json(str(z["manifest"]))
        digest = _digest(parts, meta["vocab"], meta["generation"])
        model = CompiledModel(vocab=tuple(meta["vocab"]), **arrays, manifest=manifest,
                              generation=Generation(**meta["generation"]), digest=digest)
        model.validate()
        return model


def file_digest(path: str | Path) -> str | None:
    """The digest :meth:`CompiledModel.load` would give the model in ``path``, read from the
    stored non-zeros alone (milliseconds: no dense array is built); None for a format-1 file."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != 2:
            return None
        parts = _stored_parts(z)
    return _digest(parts, meta["vocab"], meta["generation"])


def _stored_parts(z) -> dict:
    """Every weight array of an open format-2 file as (shape, flat indices, values)."""
    return {name: (tuple(int(n) for n in z[f"{name}.shape"]), z[f"{name}.index"],
                   z[f"{name}.value"]) for name in WEIGHT_ARRAYS}


def _nonzeros(a: np.ndarray):
    """(shape, flat indices, values) of the non-zeros of ``a``: the format-2 form of an array.
    A -0.0 counts as non-zero: the file keeps every weight bit for bit."""
    flat = np.flatnonzero((a != 0) | np.signbit(a))
    return a.shape, flat.astype(np.uint32 if a.size < 2**32 else np.int64), a.reshape(-1)[flat]


def _densify(shape, index: np.ndarray, value: np.ndarray) -> np.ndarray:
    """A format-2 array back to its dense form (zeros from calloc: untouched pages stay free)."""
    out = np.zeros(shape, dtype=value.dtype)
    out.reshape(-1)[index] = value
    return out


def _digest(parts: dict, vocab, generation) -> str:
    """Content hash of a model: every array's shape, dtype and non-zeros, vocabulary and
    generation settings (not the manifest: names do not change what a runtime computes)."""
    h = hashlib.sha256(json.dumps([list(vocab), generation], sort_keys=True).encode())
    for name in WEIGHT_ARRAYS:
        shape, index, value = parts[name]
        h.update(f"{name}:{value.dtype.str}:{tuple(shape)}".encode())
        h.update(index.astype(np.int64).tobytes())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def position_features(positions: np.ndarray) -> np.ndarray:
    """The fixed position features ``(pos, pos^2)`` as a float64 ``[n, 2]`` array."""
    p = np.asarray(positions, dtype=np.float64)
    return np.stack([p, p * p], axis=-1)


def prompt_tokens(model: CompiledModel, text: str) -> list[int]:
    """Whitespace-separated tokens of ``text`` (plus the program's prompt-end marker) as ids."""
    words = text.split()
    end = model.generation.prompt_end
    if end is not None and (not words or words[-1] != end):
        words.append(end)
    return [model.token_id(w) for w in words]
