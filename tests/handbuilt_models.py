"""Small CompiledModels built by hand, so backend and CLI tests do not depend on the compiler.

`difference_model` uses every mechanism of the machine: a `(2k, -k^2)` look-up keyed by
position (pos^2 is a position feature) to copy the previous token, a constant-key `average`
head (prefix mean), look-ups keyed by token value with genuine ties resolved `latest` and
`average`, and ReGLU units (|a - b|, a product, a max).  It emits |tok - prev_tok|, so from
"3 7" it generates 4 3 1 2 1 1 0 and stops at "0".

`random_integer_model` draws weights the way the compiler guarantees exactness: queries, keys,
FFN inputs and `latest` values read only "integer" dimensions, `average` heads write only
"real" dimensions, so every score is an exact integer and every average a sum of integers.
"""

from __future__ import annotations

import numpy as np

from rasp2d.backends.model_file import (
    AVERAGE, LATEST, CompiledModel, Generation, HeadLabel, Manifest, ResidualSlot, UnitGroup,
)

# residual dimensions of difference_model
ONE, TOK, POS, POS2, TOK2 = 0, 1, 2, 3, 4
PREV, MEAN_TOK = 5, 6          # layer 0 attention
ABSDIFF, PROD = 7, 8           # layer 0 FFN
LAST_POS, MEAN_POS = 9, 10     # layer 1 attention
GAP, MAXTP = 11, 12            # layer 1 FFN
D_MODEL = 14                   # dim 13 stays unused: d_model must be 2 * n_heads
DIGITS = tuple(str(i) for i in range(10))


def _zeros(L: int, d: int, F: int, V: int) -> dict[str, np.ndarray]:
    H = d // 2
    return dict(
        embed=np.zeros((V, d)), pos_embed=np.zeros((2, d)),
        W_q=np.zeros((L, H, 2, d)), W_k=np.zeros((L, H, 2, d)), W_v=np.zeros((L, H, 2, d)),
        W_o=np.zeros((L, d, H, 2)), tie=np.zeros((L, H), dtype=np.int8),
        W_gate=np.zeros((L, F, d)), W_val=np.zeros((L, F, d)), W_out=np.zeros((L, d, F)),
        unembed=np.zeros((V, d)),
    )


def difference_model(max_new_tokens: int = 32) -> CompiledModel:
    V, d, F, L = len(DIGITS), D_MODEL, 3, 2
    w = _zeros(L, d, F, V)
    for t in range(V):
        w["embed"][t, ONE] = 1.0
        w["embed"][t, TOK] = t
        w["embed"][t, TOK2] = t * t
    w["pos_embed"][0, POS] = 1.0
    w["pos_embed"][1, POS2] = 1.0

    # L0 H0 (latest): prev token. key (2j, -j^2), query (i-1, 1): score -(j-(i-1))^2 + (i-1)^2.
    w["W_q"][0, 0, 0, POS], w["W_q"][0, 0, 0, ONE], w["W_q"][0, 0, 1, ONE] = 1, -1, 1
    w["W_k"][0, 0, 0, POS], w["W_k"][0, 0, 1, POS2] = 2, -1
    w["W_v"][0, 0, 0, TOK] = 1
    w["W_o"][0, PREV, 0, 0] = 1
    w["tie"][0, 0] = LATEST
    # L0 H1 (average): constant (zero) keys tie everywhere -> prefix mean of tokens.
    w["W_v"][0, 1, 0, TOK] = 1
    w["W_o"][0, MEAN_TOK, 1, 0] = 1
    w["tie"][0, 1] = AVERAGE
    # L0 FFN: |tok - prev| in two units, tok * prev in one.
    w["W_gate"][0, 0, TOK], w["W_gate"][0, 0, PREV], w["W_val"][0, 0, ONE] = 1, -1, 1
    w["W_gate"][0, 1, TOK], w["W_gate"][0, 1, PREV], w["W_val"][0, 1, ONE] = -1, 1, 1
    w["W_out"][0, ABSDIFF, 0] = w["W_out"][0, ABSDIFF, 1] = 1
    w["W_gate"][0, 2, TOK], w["W_val"][0, 2, PREV], w["W_out"][0, PROD, 2] = 1, 1, 1

    # L1 H0 (latest) / H1 (average): positions j whose token equals prev token (ties!).
    for h, tie, out in ((0, LATEST, LAST_POS), (1, AVERAGE, MEAN_POS)):
        w["W_q"][1, h, 0, PREV], w["W_q"][1, h, 1, ONE] = 1, 1
        w["W_k"][1, h, 0, TOK], w["W_k"][1, h, 1, TOK2] = 2, -1
        w["W_v"][1, h, 0, POS] = 1
        w["W_o"][1, out, h, 0] = 1
        w["tie"][1, h] = tie
    # L1 FFN: relu(pos - last_pos); max(tok, prev) = relu(tok - prev) + relu(1) * prev.
    w["W_gate"][1, 0, POS], w["W_gate"][1, 0, LAST_POS], w["W_val"][1, 0, ONE] = 1, -1, 1
    w["W_out"][1, GAP, 0] = 1
    w["W_gate"][1, 1, TOK], w["W_gate"][1, 1, PREV], w["W_val"][1, 1, ONE] = 1, -1, 1
    w["W_gate"][1, 2, ONE], w["W_val"][1, 2, PREV] = 1, 1
    w["W_out"][1, MAXTP, 1] = w["W_out"][1, MAXTP, 2] = 1

    # logits_t = 2t*absdiff - t^2 = -(t - absdiff)^2 + const: margin 1 at integers.
    for t in range(V):
        w["unembed"][t, ABSDIFF] = 2 * t
        w["unembed"][t, ONE] = -t * t

    manifest = Manifest(
        residual=(
            ResidualSlot(ONE, "1", 0, 4), ResidualSlot(TOK, "tokens", 0, 3),
            ResidualSlot(POS, "indices", 0, 3), ResidualSlot(POS2, "indices^2", 0, 1),
            ResidualSlot(TOK2, "tokens^2", 0, 1), ResidualSlot(PREV, "prev(tokens, 1)", 1, 3),
            ResidualSlot(MEAN_TOK, "prefix_mean(tokens)", 1, 4),
            ResidualSlot(ABSDIFF, "abs(tokens - prev(tokens, 1))", 2, 4),
            ResidualSlot(PROD, "tokens * prev(tokens, 1)", 2, 4),
            ResidualSlot(LAST_POS, "lookup(tokens, prev, indices, tie=latest)", 3, 4),
            ResidualSlot(MEAN_POS, "lookup(tokens, prev, indices, tie=average)", 3, 4),
            ResidualSlot(GAP, "indices - last_pos", 4, 4),
            ResidualSlot(MAXTP, "max(tokens, prev)", 4, 4),
        ),
        heads=(
            HeadLabel(0, 0, "prev(tokens, 1)", "latest", ("prev(tokens, 1)",)),
            HeadLabel(0, 1, "prefix_mean(tokens)", "average", ("prefix_mean(tokens)",)),
            HeadLabel(1, 0, "lookup(tokens, prev, indices, tie=latest)", "latest", ("last_pos",)),
            HeadLabel(1, 1, "lookup(tokens, prev, indices, tie=average)", "average", ("mean_pos",)),
        ),
        units=(
            UnitGroup(0, 0, 2, "abs(tokens - prev(tokens, 1))"),
            UnitGroup(0, 2, 1, "tokens * prev(tokens, 1)"),
            UnitGroup(1, 0, 1, "indices - last_pos"),
            UnitGroup(1, 1, 2, "max(tokens, prev)"),
        ),
        output_label="abs(tokens - prev(tokens, 1))",
    )
    model = CompiledModel(vocab=DIGITS, **w, manifest=manifest,
                          generation=Generation(prompt_end=None, stop="0",
                                                max_new_tokens=max_new_tokens))
    model.validate()
    return model


def random_integer_model(rng: np.random.Generator, n_layers: int = 2, d_model: int = 8,
                         d_ffn: int = 4, vocab_size: int = 5) -> CompiledModel:
    """Random small-integer weights whose every score and averaged value is an exact integer.

    Dimensions split into "integer" (the first ``d_model - 2``) and "real" (the last two).
    The position features feed only ``pos`` (``pos^2`` would make scores huge, not inexact).
    """
    L, d, F, V = n_layers, d_model, d_ffn, vocab_size
    H = d // 2
    n_int = d - 2
    w = _zeros(L, d, F, V)

    def ints(*shape, lo=-2, hi=2, density=0.5):
        a = rng.integers(lo, hi + 1, size=shape).astype(np.float64)
        return a * (rng.random(shape) < density)

    w["embed"][:, :n_int] = ints(V, n_int)
    w["pos_embed"][0, :n_int] = ints(n_int, density=0.3)
    w["tie"][:] = rng.integers(0, 2, size=(L, H))
    for l in range(L):
        w["W_q"][l, :, :, :n_int] = ints(H, 2, n_int)
        w["W_k"][l, :, :, :n_int] = ints(H, 2, n_int)
        w["W_v"][l, :, :, :n_int] = ints(H, 2, n_int)
        for h in range(H):
            rows = slice(0, n_int) if w["tie"][l, h] == LATEST else slice(n_int, d)
            w["W_o"][l, rows, h, :] = ints(rows.stop - rows.start, 2)
        w["W_gate"][l, :, :n_int] = ints(F, n_int)
        w["W_val"][l, :, :n_int] = ints(F, n_int)
        w["W_out"][l, :n_int, :] = ints(n_int, F)
    w["unembed"][:] = ints(V, d, lo=-3, hi=3, density=0.7)
    model = CompiledModel(vocab=tuple(f"t{i}" for i in range(V)), **w)
    model.validate()
    return model


def integer_dims(model: CompiledModel) -> slice:
    """The dimensions of a `random_integer_model` that hold exact integers."""
    return slice(0, model.d_model - 2)
