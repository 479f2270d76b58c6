"""Hull runtime, brute runtime and the dense NumPy forward agree exactly, token by token."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exact_models import exact_trace, random_exact_model
from handbuilt_models import difference_model
from rasp2d.backends.dense_forward import dense_forward
from rasp2d.backends.generate import generate
from rasp2d.backends.hull_cache import ExactnessError
from rasp2d.backends.hull_runtime import HullDecoder
from rasp2d.backends.model_file import AVERAGE
from rasp2d.backends.sparse_program import sparse_program

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHAPES = [(1, 6, 4), (2, 6, 4), (3, 8, 6)]


def assert_decoders_match_dense(model, ids, caches=("hull", "brute")):
    trace = dense_forward(model, ids)
    for cache in caches:
        dec = HullDecoder(model, cache=cache, record=True)
        for i, tok in enumerate(ids):
            nxt = dec.feed(tok)
            assert nxt == trace.next_tokens[i], (cache, i)
            assert np.array_equal(dec.logits, trace.logits[i]), (cache, i)
            assert np.array_equal(dec.stages, trace.residuals[:, i]), (cache, i)
    return trace


def check_random_model(seed, ids, shape):
    L, H, F = shape
    model = random_exact_model(np.random.default_rng(seed), L, H, F, vocab_size=6, max_len=12)
    trace = dense_forward(model, ids)
    assume(exact_trace(model, trace))
    assert_decoders_match_dense(model, ids)


@FAST
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 5), min_size=1, max_size=12),
       st.sampled_from(SHAPES))
def test_random_exact_models_agree_exactly(seed, ids, shape):
    check_random_model(seed, ids, shape)


@pytest.mark.slow
@SLOW
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 5), min_size=1, max_size=12),
       st.sampled_from(SHAPES + [(4, 10, 8)]))
def test_random_exact_models_agree_exactly_long_run(seed, ids, shape):
    check_random_model(seed, ids, shape)


def tie_coverage(model, trace):
    """Count the situations the tie logic must get right, so the agreement is not vacuous."""
    seen = {"multi_key_face": 0, "average_ties": 0, "latest_ties": 0, "zero_query": 0}
    n = trace.logits.shape[0]
    for l, lt in enumerate(trace.layers):
        for h in range(model.n_heads):
            if not model.W_o[l, :, h, :].any():
                continue
            q, k = lt.q[:, h], lt.k[:, h]
            for i in range(1, n):
                s = q[i, 0] * k[: i + 1, 0] + q[i, 1] * k[: i + 1, 1]
                win = np.flatnonzero(s == s.max())
                if len(win) < 2:
                    continue
                seen["average_ties" if model.tie[l, h] == AVERAGE else "latest_ties"] += 1
                if not q[i].any():
                    seen["zero_query"] += 1
                elif len({tuple(k[j]) for j in win}) >= 2:
                    seen["multi_key_face"] += 1
    return seen


def test_agreement_covers_every_kind_of_tie():
    totals: dict[str, int] = {}
    rng = np.random.default_rng(7)
    for seed in range(12):
        model = random_exact_model(np.random.default_rng(seed), 2, 6, 4, max_len=12)
        ids = [int(t) for t in rng.integers(0, 6, size=12)]
        trace = assert_decoders_match_dense(model, ids)
        assert exact_trace(model, trace)
        for key, count in tie_coverage(model, trace).items():
            totals[key] = totals.get(key, 0) + count
    assert all(count >= 20 for count in totals.values()), totals


def test_difference_model_matches_dense_and_generates():
    model = difference_model()
    ids = [3, 7, 4, 3, 1, 2, 1, 1, 7, 7, 3, 9, 5, 2, 5, 5, 2]
    assert_decoders_match_dense(model, ids)
    stop = model.token_id("0")
    for cache in ("hull", "brute"):
        out = generate(HullDecoder(model, cache), [3, 7], 32, stop)
        assert [model.vocab[t] for t in out.output] == "4 3 1 2 1 1 0".split() and out.stopped
        assert HullDecoder(model, cache).generate([3, 7], 32, stop) == out


def test_jitted_generation_equals_the_shared_loop_past_every_capacity():
    model = random_exact_model(np.random.default_rng(3), 2, 6, 4, max_len=12)
    prompt = [1, 4, 2]
    ref = generate(HullDecoder(model, "brute"), prompt, 3000)
    for cache in ("hull", "brute"):
        dec = HullDecoder(model, cache)
        assert dec.generate(prompt, 3000) == ref
        assert dec.position == len(prompt) + 2999
    # generation continues from where feeding stopped
    dec = HullDecoder(model, "hull")
    first = dec.generate(prompt, 10)
    more = dec.generate([first.output[-1]], 20)
    assert more.output == ref.output[10:30]


def test_padding_heads_and_dead_units_are_dropped():
    model = random_exact_model(np.random.default_rng(11), 3, 8, 6, max_len=12)
    prog = sparse_program(model)
    assert prog.n_used_heads == model.used_heads() < model.n_layers * model.n_heads
    live_units = sum(int((model.W_gate[l].any(1) & model.W_val[l].any(1)
                          & model.W_out[l].any(0)).sum()) for l in range(model.n_layers))
    assert prog.n_used_units == live_units < model.n_layers * model.d_ffn
    assert prog.nnz < model.nonzero_weights()


def test_hull_cache_memory_stays_small_on_repeated_keys():
    model = difference_model()
    hull, brute = HullDecoder(model, "hull"), HullDecoder(model, "brute")
    ids = [int(t) for t in np.random.default_rng(0).integers(1, 10, size=2000)]
    for tok in ids:
        assert hull.feed(tok) == brute.feed(tok)
    # prev-token head keeps one hull point per position; the three others at most ~10 each
    assert hull.pool.live_points <= 2000 + 3 * 10 + 2
    assert brute.cache_bytes() == 4 * 2000 * 32


def test_inexact_keys_raise_with_the_head_named():
    model = difference_model()
    model.W_k[1, 0, 0, 1] = 0.5  # L1 H0 keys become 2*tok + 0.5*tok: not integers for odd tok
    dec = HullDecoder(model, "hull")
    with pytest.raises(ExactnessError, match="layer 1 head 0 at position 0"):
        dec.feed(3)


def test_unknown_cache_and_token_are_rejected():
    with pytest.raises(ValueError, match="unknown cache"):
        HullDecoder(difference_model(), cache="fast")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        HullDecoder(difference_model()).feed(10)
