"""Heads whose keys are a fixed quadratic curve of the position are answered in closed form
(no hull); the answer must be exactly the brute-force hard-max with the head's tie rule.

Keys here are any small-integer mix of (1, pos, pos^2) on both components: concave, convex,
linear and constant score curves, with queries that read the token (zero queries, negative
and positive directions), so ties between two positions, at both ends and everywhere occur.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rasp2d.backends.dense_forward import dense_forward
from rasp2d.backends.hull_cache import ExactnessError
from rasp2d.backends.hull_kernels import HEAD_HULL, HEAD_POSITION
from rasp2d.backends.hull_runtime import HullDecoder
from rasp2d.backends.model_file import AVERAGE, LATEST, CompiledModel
from rasp2d.backends.sparse_program import sparse_program

ONE, POS, POS2, TOK, TOK2 = 0, 1, 2, 3, 4
N_HEADS = 4
FIRST_OUT = 5
V = 7

small = st.integers(-3, 3)


def build_model(pick, n_heads: int = N_HEADS) -> CompiledModel:
    """One layer of N_HEADS heads keyed by position, queried by token (weights from ``pick()``,
    small integers); a second layer with a head keyed by a dimension layer 0 writes, which the
    planner must leave to the hull."""
    d = 2 * (FIRST_OUT // 2 + n_heads + 1)  # room for two outputs per head
    L, H = 2, d // 2
    w = {name: np.zeros(shape) for name, shape in (
        ("embed", (V, d)), ("pos_embed", (2, d)), ("W_q", (L, H, 2, d)), ("W_k", (L, H, 2, d)),
        ("W_v", (L, H, 2, d)), ("W_o", (L, d, H, 2)), ("W_gate", (L, 2, d)),
        ("W_val", (L, 2, d)), ("W_out", (L, d, 2)), ("unembed", (V, d)))}
    toks = np.arange(V)
    w["embed"][:, ONE] = 1
    w["embed"][:, TOK] = toks - 3
    w["embed"][:, TOK2] = (toks - 3) ** 2
    w["pos_embed"][0, POS] = 1
    w["pos_embed"][1, POS2] = 1
    tie = np.zeros((L, H), dtype=np.int8)
    for h in range(n_heads):
        for c in range(2):
            w["W_k"][0, h, c, [ONE, POS, POS2]] = [pick() for _ in range(3)]
            w["W_q"][0, h, c, [ONE, TOK, TOK2]] = [pick() for _ in range(3)]
        w["W_v"][0, h, 0, [TOK, POS]] = [pick(), pick()]
        w["W_v"][0, h, 1, TOK2] = pick()
        out = FIRST_OUT + 2 * h
        w["W_o"][0, out, h, 0] = 1
        w["W_o"][0, out + 1, h, 1] = 1
        # head 0's output is layer 1's key, which must be an integer as compiled keys are (a
        # mean of several positions' values is not): head 0 keeps the latest maximiser
        tie[0, h] = LATEST if h == 0 or pick() >= 0 else AVERAGE
    w["W_k"][1, 0, 0, FIRST_OUT] = 2
    w["W_k"][1, 0, 1, ONE] = 1
    w["W_q"][1, 0, 0, ONE] = 1
    w["W_v"][1, 0, 0, POS] = 1
    w["W_o"][1, d - 1, 0, 0] = 1
    w["unembed"][:, [TOK, FIRST_OUT, FIRST_OUT + 3, d - 1]] = [[pick() for _ in range(4)]
                                                               for _ in range(V)]
    model = CompiledModel(vocab=tuple(f"t{i}" for i in range(V)), tie=tie, **w)
    model.validate()
    return model


@st.composite
def position_head_models(draw):
    return build_model(lambda: draw(small))


def rng_model(seed: int) -> CompiledModel:
    rng = np.random.default_rng(seed)
    return build_model(lambda: int(rng.integers(-3, 4)))


def assert_same_logits(got, want, x, unembed):
    """Bit for bit where the final residual is integral (every sum is then exact, in any
    order).  An average tie leaves fractions there, and the runtime sums the unembedding
    column by column while the dense forward lets BLAS pick the order, so the last bit may
    differ (found by hypothesis: -15.200000000000003 vs -15.200000000000001); then within what
    two summation orders can differ by."""
    if np.array_equal(x, np.floor(x)):
        assert np.array_equal(got, want)
    else:
        bound = 2 * len(x) * np.finfo(np.float64).eps * (np.abs(unembed) @ np.abs(x))
        assert np.all(np.abs(got - want) <= bound)


def assert_agrees(model, ids):
    trace = dense_forward(model, ids)
    for cache in ("hull", "brute"):
        dec = HullDecoder(model, cache=cache, record=True)
        for i, tok in enumerate(ids):
            assert dec.feed(tok) == trace.next_tokens[i], (cache, i)
            assert np.array_equal(dec.stages, trace.residuals[:, i]), (cache, i)
            assert_same_logits(dec.logits, trace.logits[i], dec.stages[-1], model.unembed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position_head_models(), st.lists(st.integers(0, V - 1), min_size=1, max_size=40))
def test_position_heads_equal_brute_force(model, ids):
    prog = sparse_program(model)
    modes = {tuple(o): m for o, m in zip(prog.head_origin, prog.head_mode)}
    assert all(modes[(0, h)] == HEAD_POSITION for h in range(N_HEADS))
    assert modes[(1, 0)] == HEAD_HULL
    assert_agrees(model, ids)


def test_prev_token_lookup_far_back_and_ties():
    """(2j, -j^2) keys, query (i - 3, 1): position i - 3, clamped to 0 at the start; plus a
    concave curve with its vertex between two integers (a tie of two positions)."""
    model = rng_model(0)  # layer 0's heads replaced below
    W_q, W_k = model.W_q, model.W_k
    W_q[0] = 0
    W_k[0] = 0
    W_k[0, 0, 0, POS], W_k[0, 0, 1, POS2] = 2, -1
    W_q[0, 0, 0, [POS, ONE]], W_q[0, 0, 1, ONE] = [1, -3], 1
    W_k[0, 1, 0, POS], W_k[0, 1, 1, POS2] = 1, -1  # score j - j^2: positions 0 and 1 tie
    W_q[0, 1, 0, ONE], W_q[0, 1, 1, ONE] = 1, 1
    W_k[0, 2, 0, POS2], W_k[0, 2, 0, POS] = 1, -20  # convex j^2 - 20 j: an end wins, or both
    W_q[0, 2, 0, TOK] = 1
    W_k[0, 3, 0, POS] = 1  # linear: the token's sign picks the first or the last position
    for tie in (LATEST, AVERAGE):
        model.tie[0, :N_HEADS] = tie
        ids = [int(t) for t in np.random.default_rng(tie).integers(0, V, size=300)]
        assert_agrees(model, ids)


def test_position_head_past_its_exact_range_raises():
    model = rng_model(1)
    model.W_k[0] = 0
    model.W_k[0, 0, 0, POS2] = 2.0**26  # key = 2^26 j^2: exact only for j <= 2^13
    prog = sparse_program(model)
    g = [tuple(o) for o in prog.head_origin].index((0, 0))
    assert prog.head_mode[g] == HEAD_POSITION and prog.head_pmax[g] == 2**13
    dec = HullDecoder(prog)
    dec.position = 2**13 + 1  # jump ahead: the next key is out of the exact range
    dec._make_room()
    with pytest.raises(ExactnessError, match="layer 0 head 0"):
        dec.feed(1)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([2.0**25 + 1, 2.0**40 + 3, 1e300]))
def test_values_float32_cannot_hold_come_back_exactly(seed, scale):
    """Position heads keep values as float32; pairs float32 cannot hold (integers past 2^24,
    huge values, fractions) go to the side table, which grows past its first size here
    (~600 pairs): every answer still equals the dense forward's, bit for bit."""
    model = rng_model(seed % 1000)
    model.W_v[0, :N_HEADS] *= scale  # head 0 feeds layer 1's key: keep it small
    model.W_v[0, 0] = 0
    model.W_v[0, 0, 0, POS] = 1
    model.W_v[0, 2, 1, ONE] = 1.0 / 3.0  # a fraction (so head 2 keeps the latest)
    model.tie[0, 2] = LATEST
    # the logits then read no scaled value: the dense logits sum in another order than the
    # dense forward, which rounds such sums differently; the residual streams compare exactly
    model.unembed[:, FIRST_OUT + 3] = 0
    if scale > 2.0**30:  # averages need running sums below 2^53: only 2^25 + 1 keeps them
        model.tie[0] = LATEST
    ids = [int(t) for t in np.random.default_rng(seed).integers(0, V, size=200)]
    dec = HullDecoder(model)
    assert_agrees(model, ids)
    for t in ids:
        dec.feed(t)
    assert dec._exc_meta[0] > 64  # the table grew and was rehashed


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_heads=st.sampled_from([31, 32, 33, 40, 70]))
@example(seed=1, n_heads=31)  # (averaged answers made the logits' summation order matter)
def test_packed_store_spans_several_mask_words(seed, n_heads):
    """The packed store keeps only non-zero values, found by counting set mask bits, two per
    head: with 31 to 70 position heads a position's mask spans one to three 64-bit words and
    values sit behind others of the same position; many values are 0 (a weight drawn as 0, a
    token feature that is 0).  Every answer equals the dense forward's, and the store holds
    exactly the non-zero values."""
    rng = np.random.default_rng(seed)
    model = build_model(lambda: int(rng.integers(-2, 3)), n_heads)
    model.tie[0] = LATEST  # integer answers only: the logits then compare bit for bit too
    ids = [int(t) for t in rng.integers(0, V, size=60)]
    assert_agrees(model, ids)
    dec = HullDecoder(model)
    dec.generate(ids, 1)
    prog = dec.program
    assert dec._pmask.shape[1] == (2 * prog.n_position_heads + 63) // 64
    stored = int(dec._pmeta[0])
    bits = sum(bin(int(w)).count("1") for w in dec._pmask[:dec.position].ravel())
    assert stored == bits > 0
    assert np.all(dec._pstore[:stored] != 0)
