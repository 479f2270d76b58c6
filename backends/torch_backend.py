"""The compiled machine as an ordinary PyTorch module, exact (hard-max) or differentiable (softmax).

Why a torch backend at all: it shows the compiled weights are a *standard* transformer (an
``nn.Embedding``, ``nn.MultiheadAttention``-shaped attention with head dimension 2, a gated
ReLU FFN and a linear unembedding), it runs batched full-sequence forwards for inspection,
and its softmax mode makes the same weights differentiable while measuring how far that
departs from the exact machine.

This file imports only ``torch`` and the standard library at module level, on purpose:
:func:`export` copies it verbatim beside the saved weights as the loader, so a user needs
nothing but PyTorch to run an exported model (``python <name>_loader.py <name>.pt 3 1 4``).
Nothing in ``rasp2d`` imports this module unless the torch backend is asked for.

Semantics are exactly those of ``rasp2d.backends.model_file`` (hard-max attention with
``latest``/``average`` ties, ReGLU FFN, position features ``(pos, pos^2)``, float64).
"""

import math
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # only for annotations: the exported loader must not need rasp2d
    from rasp2d.backends.model_file import CompiledModel

DTYPE = torch.float64
HARDMAX = "hardmax"
SOFTMAX = "softmax"
ATTENTION_MODES = (HARDMAX, SOFTMAX)
EXPORT_FORMAT = "rasp2d-torch-1"

# Query rows per block in the full-sequence forward: bounds the [B, H, block, n] score tensor.
_QUERY_BLOCK = 1024


def position_features(positions: torch.Tensor) -> torch.Tensor:
    """``(pos, pos^2)`` per position, float64 (the same features as ``model_file``)."""
    p = positions.to(DTYPE)
    return torch.stack([p, p * p], dim=-1)


def _check_mode(attention: str, temperature: float) -> None:
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention mode {attention!r} is unknown; use one of {ATTENTION_MODES}")
    if attention == SOFTMAX and not temperature > 0:
        raise ValueError(f"softmax attention needs a temperature > 0, got {temperature!r}")


# ----------------------------------------------------------------------------- attention
def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, query_pos: torch.Tensor,
           key_pos: torch.Tensor, latest: torch.Tensor, attention: str, temperature: float,
           latest_bias: float) -> torch.Tensor:
    """Mix values ``v`` for queries ``q`` over the causal window of keys ``k``.

    Shapes: ``q`` ``[B, H, nq, 2]``, ``k``/``v`` ``[B, H, nk, 2]``, positions ``[nq]``/``[nk]``,
    ``latest`` ``[H]`` bool.  Shared by the full forward and the incremental decoder so both
    compute every score and mix with the very same float operations.

    Scores are ``q0*k0 + q1*k1`` written out element-wise (not a matmul) so no fused
    multiply-add or blocked summation can make two backends disagree on an exact tie.
    """
    scores = q[..., :, None, 0] * k[..., None, :, 0] + q[..., :, None, 1] * k[..., None, :, 1]
    causal = key_pos[None, :] <= query_pos[:, None]  # [nq, nk]
    if attention == HARDMAX:
        masked = scores.masked_fill(~causal, -math.inf)
        row_max = masked.amax(dim=-1, keepdim=True)
        if not bool(torch.isfinite(row_max).all()):
            raise FloatingPointError(
                "attention scores are not finite (inf/NaN): the model's residual values overflow "
                "float64, so hard-max attention is undefined; compiled models never do this")
        is_max = (masked == row_max) & causal
        # latest: value of the largest maximising key position.
        last = torch.where(is_max, key_pos.to(torch.long), -1).amax(dim=-1)  # [B, H, nq]
        latest_out = torch.gather(v, 2, last[..., None].expand(*last.shape, 2))
        # average: exact sum of the maximisers' values (0/1 weights), then one division.
        count = is_max.sum(dim=-1, keepdim=True).to(DTYPE)
        # (contiguous: batched matmul on a strided cache view is ~25x slower)
        average_out = torch.matmul(is_max.to(DTYPE), v.contiguous()) / count
        return torch.where(latest[None, :, None, None], latest_out, average_out)
    # softmax: ties among maximisers average naturally; for `latest` heads a bounded,
    # strictly increasing recency bonus latest_bias * j/(j+1) (< 1 = the smallest gap
    # between distinct integer scores when latest_bias < 1) makes the latest maximiser win
    # as the temperature goes to 0.
    jp = key_pos.to(DTYPE)
    bonus = latest_bias * jp / (jp + 1.0)
    scores = scores + torch.where(latest[:, None, None], bonus[None, None, :], 0.0)
    weights = torch.softmax(scores.masked_fill(~causal, -math.inf) / temperature, dim=-1)
    return torch.matmul(weights, v.contiguous())


class TwoDimAttention(nn.Module):
    """Multi-head attention with head dimension 2, parameter names and shapes of
    ``nn.MultiheadAttention(d, d // 2, bias=False)``: ``in_proj_weight`` ``[3d, d]`` (q, k, v
    stacked, head ``h`` owning rows ``2h, 2h+1`` of each) and ``out_proj.weight`` ``[d, d]``.
    ``latest`` (a buffer) holds each head's tie rule."""

    def __init__(self, d_model: int):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model={d_model} must be even (heads have dimension 2)")
        self.d_model = d_model
        self.n_heads = d_model // 2
        self.in_proj_weight = nn.Parameter(torch.zeros(3 * d_model, d_model, dtype=DTYPE))
        self.out_proj = nn.Linear(d_model, d_model, bias=False, dtype=DTYPE)
        nn.init.zeros_(self.out_proj.weight)
        self.register_buffer("latest", torch.ones(self.n_heads, dtype=torch.bool))

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` ``[B, n, d]`` -> q, k, v each ``[B, H, n, 2]``."""
        B, n, _ = x.shape
        qkv = F.linear(x, self.in_proj_weight).view(B, n, 3, self.n_heads, 2)
        q, k, v = qkv.unbind(dim=2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def combine(self, o: torch.Tensor) -> torch.Tensor:
        """Head outputs ``[B, H, n, 2]`` -> residual update ``[B, n, d]``."""
        B, H, n, _ = o.shape
        return self.out_proj(o.transpose(1, 2).reshape(B, n, 2 * H))

    def forward(self, x: torch.Tensor, attention: str, temperature: float,
                latest_bias: float) -> torch.Tensor:
        q, k, v = self.project(x)
        n = x.shape[1]
        pos = torch.arange(n)
        blocks = [attend(q[:, :, s:s + _QUERY_BLOCK], k, v, pos[s:s + _QUERY_BLOCK], pos,
                         self.latest, attention, temperature, latest_bias)
                  for s in range(0, n, _QUERY_BLOCK)]
        return self.combine(torch.cat(blocks, dim=2))


class ReGLU(nn.Module):
    """Gated ReLU feed-forward: ``out(relu(gate(x)) * value(x))``; products of two stream
    values are exact through the gate."""

    def __init__(self, d_model: int, d_ffn: int):
        super().__init__()
        with warnings.catch_warnings():  # d_ffn == 0 (no units) is legal; torch warns on init
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.gate = nn.Linear(d_model, d_ffn, bias=False, dtype=DTYPE)
            self.value = nn.Linear(d_model, d_ffn, bias=False, dtype=DTYPE)
            self.out = nn.Linear(d_ffn, d_model, bias=False, dtype=DTYPE)
        for lin in (self.gate, self.value, self.out):
            nn.init.zeros_(lin.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.gate(x)) * self.value(x))


class Block(nn.Module):
    def __init__(self, d_model: int, d_ffn: int):
        super().__init__()
        self.attn = TwoDimAttention(d_model)
        self.ffn = ReGLU(d_model, d_ffn)


@dataclass(frozen=True)
class TorchConfig:
    """Everything besides the state dict needed to rebuild a :class:`TorchTransformer`."""

    vocab: tuple[str, ...]
    d_model: int
    n_layers: int
    d_ffn: int


class TorchTransformer(nn.Module):
    """The compiled machine as a standard decoder-only transformer (float64, no norms).

    ``attention`` is ``"hardmax"`` (exact machine semantics, the default) or ``"softmax"``
    (differentiable; scores divided by ``temperature``; see :func:`attend`).  Both can also be
    overridden per call of :meth:`forward`.
    """

    def __init__(self, config: TorchConfig, attention: str = HARDMAX, temperature: float = 1.0,
                 latest_bias: float = 0.5):
        super().__init__()
        _check_mode(attention, temperature)
        self.config = config
        V, d = len(config.vocab), config.d_model
        self.embed = nn.Embedding(V, d, dtype=DTYPE)
        self.pos_embed = nn.Linear(2, d, bias=False, dtype=DTYPE)
        self.layers = nn.ModuleList(Block(d, config.d_ffn) for _ in range(config.n_layers))
        self.unembed = nn.Linear(d, V, bias=False, dtype=DTYPE)
        self.attention = attention
        self.temperature = float(temperature)
        self.latest_bias = float(latest_bias)

    @property
    def vocab(self) -> tuple[str, ...]:
        return self.config.vocab

    @property
    def n_stages(self) -> int:
        """Residual snapshots: the embedding plus one per sub-layer."""
        return 1 + 2 * self.config.n_layers

    @staticmethod
    def from_compiled(model: "CompiledModel", attention: str = HARDMAX, temperature: float = 1.0,
                      latest_bias: float = 0.5) -> "TorchTransformer":
        """Copy a ``CompiledModel``'s weights into standard-shaped modules (no approximation)."""
        model.validate()
        config = TorchConfig(tuple(model.vocab), model.d_model, model.n_layers, model.d_ffn)
        net = TorchTransformer(config, attention, temperature, latest_bias)
        t = lambda a: torch.tensor(a, dtype=DTYPE)  # noqa: E731 - copies, never aliases numpy
        d, H = model.d_model, model.n_heads
        with torch.no_grad():
            net.embed.weight.copy_(t(model.embed))
            net.pos_embed.weight.copy_(t(model.pos_embed).T)
            net.unembed.weight.copy_(t(model.unembed))
            for l, block in enumerate(net.layers):
                # W_q[l] is [H, 2, d]: flattening heads-major gives rows 2h + c, as MHA lays them.
                block.attn.in_proj_weight.copy_(torch.cat(
                    [t(model.W_q[l]).reshape(d, d), t(model.W_k[l]).reshape(d, d),
                     t(model.W_v[l]).reshape(d, d)], dim=0))
                block.attn.out_proj.weight.copy_(t(model.W_o[l]).reshape(d, 2 * H))
                block.attn.latest.copy_(torch.tensor(model.tie[l] == 0))  # LATEST == 0
                block.ffn.gate.weight.copy_(t(model.W_gate[l]))
                block.ffn.value.weight.copy_(t(model.W_val[l]))
                block.ffn.out.weight.copy_(t(model.W_out[l]))
        return net

    def embed_tokens(self, token_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.embed(token_ids) + self.pos_embed(position_features(positions))

    def forward(self, token_ids: torch.Tensor, return_residuals: bool = False,
                attention: str | None = None, temperature: float | None = None):
        """``token_ids`` ``[batch, n]`` (positions 0..n-1) -> logits ``[batch, n, V]``.

        With ``return_residuals`` the result is ``(logits, residuals)`` where ``residuals[s]``
        is the stream ``[batch, n, d]`` at stage ``s`` (0 = embedding, ``2l+1`` after layer
        ``l``'s attention, ``2l+2`` after its FFN), the stage numbering of the Manifest.
        """
        attention = self.attention if attention is None else attention
        temperature = self.temperature if temperature is None else float(temperature)
        _check_mode(attention, temperature)
        if token_ids.dim() != 2:
            raise ValueError(f"token_ids must be [batch, n], got shape {tuple(token_ids.shape)}")
        x = self.embed_tokens(token_ids, torch.arange(token_ids.shape[1]))
        residuals = [x]
        for block in self.layers:
            x = x + block.attn(x, attention, temperature, self.latest_bias)
            residuals.append(x)
            x = x + block.ffn(x)
            residuals.append(x)
        logits = self.unembed(x)
        return (logits, tuple(residuals)) if return_residuals else logits


# ----------------------------------------------------------------------------- decoding
class _KVCache:
    """Keys and values of one layer, all heads: ``[1, H, capacity, 2]``, grown by doubling."""

    def __init__(self, n_heads: int, capacity: int = 64):
        self.keys = torch.empty(1, n_heads, capacity, 2, dtype=DTYPE)
        self.values = torch.empty(1, n_heads, capacity, 2, dtype=DTYPE)
        self.size = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size == self.keys.shape[2]:
            grow = lambda a: torch.cat([a, torch.empty_like(a)], dim=2)  # noqa: E731
            self.keys, self.values = grow(self.keys), grow(self.values)
        self.keys[:, :, self.size] = k[:, :, 0]
        self.values[:, :, self.size] = v[:, :, 0]
        self.size += 1
        return self.keys[:, :, :self.size], self.values[:, :, :self.size]


class TorchDecoder:
    """Token-by-token decoding (the ``Decoder`` protocol) with a K/V cache per layer.

    Each ``feed`` costs one embedding, per layer one projection of the new position and one
    score row against the cached keys; the prefix is never recomputed.  It uses the module's
    attention mode (hard-max unless the module was built otherwise).  ``last_logits`` holds
    the logits behind the most recent prediction (a ``[V]`` tensor), for inspection.
    """

    def __init__(self, model: "CompiledModel | TorchTransformer"):
        net = model if isinstance(model, TorchTransformer) else TorchTransformer.from_compiled(model)
        self.net = net
        self.reset()

    def reset(self) -> None:
        self.position = 0
        self.caches = [_KVCache(layer.attn.n_heads) for layer in self.net.layers]
        self.last_logits: torch.Tensor | None = None

    def feed(self, token_id: int) -> int:
        # One position is a few dozen tiny ops: intra-op threads only add synchronisation
        # (measured: a [7, 1, 300] x [7, 300, 2] float64 bmm took 8 ms with 2 threads on a busy
        # 2-core machine, 13 us with 1), so decode single-threaded and restore the setting.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                return self._feed(token_id)
        finally:
            torch.set_num_threads(threads)

    def _feed(self, token_id: int) -> int:
        net = self.net
        if not 0 <= token_id < len(net.vocab):
            raise ValueError(f"token id {token_id} is outside the vocabulary (size {len(net.vocab)})")
        pos = torch.tensor([self.position])
        x = net.embed_tokens(torch.tensor([[token_id]]), pos)  # [1, 1, d]
        for block, cache in zip(net.layers, self.caches):
            attn = block.attn
            q, k, v = attn.project(x)
            keys, values = cache.append(k, v)
            o = attend(q, keys, values, pos, torch.arange(cache.size), attn.latest,
                       net.attention, net.temperature, net.latest_bias)
            x = x + attn.combine(o)
            x = x + block.ffn(x)
        self.position += 1
        self.last_logits = net.unembed(x)[0, 0]
        return int(torch.argmax(self.last_logits))


# ----------------------------------------------------------------------------- softmax check
@dataclass(frozen=True)
class SoftmaxCheck:
    """How far softmax attention at ``temperature`` is from the exact machine on one input.

    ``stage_deviation[s]`` is the largest absolute difference of the residual stream at stage
    ``s``; ``tokens_agree`` says whether every position's argmax token is the same;
    ``first_disagreement`` is the first (batch, position) where it is not, else ``None``.
    """

    temperature: float
    max_abs_deviation: float
    stage_deviation: tuple[float, ...]
    logit_deviation: float
    tokens_agree: bool
    first_disagreement: tuple[int, int] | None

    @property
    def exact(self) -> bool:
        """Bit-for-bit the hard-max result (softmax saturated to one-hot everywhere)."""
        return self.max_abs_deviation == 0.0 and self.logit_deviation == 0.0


@torch.no_grad()
def check_softmax(net: TorchTransformer, token_ids, temperature: float) -> SoftmaxCheck:
    """Run ``token_ids`` (``[n]`` or ``[batch, n]``) through both attention modes and compare."""
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    hard_logits, hard_res = net(ids, return_residuals=True, attention=HARDMAX)
    soft_logits, soft_res = net(ids, return_residuals=True, attention=SOFTMAX,
                                temperature=temperature)
    stage_dev = tuple(float((h - s).abs().max()) if h.numel() else 0.0
                      for h, s in zip(hard_res, soft_res))
    hard_tok, soft_tok = hard_logits.argmax(-1), soft_logits.argmax(-1)
    differ = (hard_tok != soft_tok).nonzero()
    first = None if differ.numel() == 0 else (int(differ[0, 0]), int(differ[0, 1]))
    logit_dev = float((hard_logits - soft_logits).abs().max()) if hard_logits.numel() else 0.0
    return SoftmaxCheck(float(temperature), max(stage_dev), stage_dev, logit_dev,
                        first is None, first)


# ----------------------------------------------------------------------------- export
@dataclass(frozen=True)
class ExportedModel:
    net: TorchTransformer
    generation: dict  # prompt_end / stop / max_new_tokens, as in the model file

    def token_ids(self, words: list[str]) -> list[int]:
        vocab = self.net.vocab
        missing = [w for w in words if w not in vocab]
        if missing:
            raise KeyError(f"tokens {missing} are not in the model's vocabulary")
        return [vocab.index(w) for w in words]


def export(model: "CompiledModel", path: str | Path) -> Path:
    """Save ``model`` for plain PyTorch: ``path`` gets ``torch.save`` of the state dict plus the
    config; ``<stem>_loader.py`` beside it is this very file (torch-only), whose
    :func:`load_exported` rebuilds the module.  Returns the loader's path."""
    path = Path(path)
    net = TorchTransformer.from_compiled(model)
    g = model.generation
    payload = {
        "format": EXPORT_FORMAT,
        "config": {"vocab": list(net.config.vocab), "d_model": net.config.d_model,
                   "n_layers": net.config.n_layers, "d_ffn": net.config.d_ffn},
        "generation": {"prompt_end": g.prompt_end, "stop": g.stop,
                       "max_new_tokens": int(g.max_new_tokens)},
        "state_dict": net.state_dict(),
    }
    torch.save(payload, path)
    loader = path.with_name(path.stem + "_loader.py")
    shutil.copyfile(__file__, loader)
    return loader


def load_exported(path: str | Path, attention: str = HARDMAX,
                  temperature: float = 1.0) -> ExportedModel:
    """Rebuild a module saved by :func:`export` (needs only torch)."""
    payload = torch.load(Path(path), weights_only=True)
    if payload.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: not a {EXPORT_FORMAT} file (format {payload.get('format')!r})")
    c = payload["config"]
    config = TorchConfig(tuple(c["vocab"]), int(c["d_model"]), int(c["n_layers"]), int(c["d_ffn"]))
    net = TorchTransformer(config, attention, temperature)
    net.load_state_dict(payload["state_dict"])
    return ExportedModel(net, dict(payload["generation"]))


def _main(argv: list[str]) -> int:
    """``python <loader>.py MODEL.pt TOKEN...``: generate greedily, print tokens."""
    if len(argv) < 2:
        print(f"usage: {Path(sys.argv[0]).name} MODEL.pt TOKEN [TOKEN ...]", file=sys.stderr)
        return 2
    exported = load_exported(argv[0])
    gen, vocab = exported.generation, exported.net.vocab
    words = list(argv[1:])
    if gen["prompt_end"] is not None and words[-1] != gen["prompt_end"]:
        words.append(gen["prompt_end"])
    decoder = TorchDecoder(exported.net)
    for tok in exported.token_ids(words):
        nxt = decoder.feed(tok)
    out = [vocab[nxt]]
    while out[-1] != gen["stop"] and len(out) < gen["max_new_tokens"]:
        out.append(vocab[decoder.feed(vocab.index(out[-1]))])
    print(" ".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
