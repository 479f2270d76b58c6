"""CHANNEL groups (look-ups by address: hats of one gate score times stream values) and
LINEAR groups (constant gates: copies and erasures, woken by their value dimensions) give
exactly the dense forward pass, including where a CHANNEL's exactness check sends it back to
its units (fractional or large values) and where a LINEAR unit's values are zero."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hull_ffn_plan import check_stages_equal_the_dense_forward

from rasp2d.backends.hull_ffn_plan import CHANNEL, LINEAR, plan_ffn
from rasp2d.backends.model_file import CompiledModel

ONE, A, B, HALF, BIG = 0, 1, 2, 3, 4  # constant, integer features, a fractional one, a huge one
OUT0 = 5
BIG_OUT = (11, 12)  # where each layer's look-ups of BIG values go (read by nothing)
D, V, L = 14, 9, 2


@st.composite
def channel_models(draw):
    """Layer 0: a look-up ``sum_k hat(s - k) * value_k`` over a drawn address ``s`` (hats
    ``relu(s-k+1) - 2 relu(s-k) + relu(s-k-1)``, each a few units of one value row), plus
    constant-gate units copying or erasing dimensions.  Layer 1 does the same reading what
    layer 0 wrote, so zero and non-zero values both occur."""
    w = {name: np.zeros(shape) for name, shape in (
        ("embed", (V, D)), ("pos_embed", (2, D)), ("W_q", (L, D // 2, 2, D)),
        ("W_k", (L, D // 2, 2, D)), ("W_v", (L, D // 2, 2, D)), ("W_o", (L, D, D // 2, 2)),
        ("W_gate", (L, 48, D)), ("W_val", (L, 48, D)), ("W_out", (L, D, 48)), ("unembed", (V, D)))}
    t = np.arange(V) - V // 2
    w["embed"][:, ONE] = 1
    w["embed"][:, A] = t
    w["embed"][:, B] = t * t - 3
    w["embed"][:, HALF] = t / 2
    # multiples of 2^48: every product and sum of them stays exact (few significant bits),
    # but the CHANNEL check must refuse them and run the units
    w["embed"][:, BIG] = t * 2.0**48
    outs = [[OUT0, OUT0 + 1, OUT0 + 2], [OUT0 + 3, OUT0 + 4, OUT0 + 5]]
    for l in range(L):
        reads = [A, B, HALF] + (outs[0] if l else [])
        addr = draw(st.sampled_from([A, B] + (outs[0] if l else [])))
        ks = draw(st.lists(st.integers(-5, 5), min_size=1, max_size=6, unique=True))
        u = 0
        for k in ks:
            if draw(st.integers(0, 3)) == 0:
                vdims, vrow, o = [BIG], [draw(st.sampled_from([-1, 1]))], BIG_OUT[l]
            else:
                vdims = draw(st.lists(st.sampled_from(reads), min_size=1, max_size=2,
                                      unique=True))
                vrow = [draw(st.integers(-2, 2).filter(bool)) for _ in vdims]
                o = draw(st.sampled_from(outs[l]))
            ow = draw(st.sampled_from([-1, 1, 2]))
            for c, m in ((1 - k, 1), (-k, -2), (-1 - k, 1)):  # relu(s - k + 1 - j) weights
                w["W_gate"][l, u, addr] = 1
                w["W_gate"][l, u, ONE] = c
                w["W_val"][l, u, vdims] = vrow
                w["W_out"][l, o, u] = m * ow
                u += 1
        for _ in range(draw(st.integers(0, 6))):  # constant gates: copies and erasures
            w["W_gate"][l, u, ONE] = draw(st.integers(1, 3))
            w["W_val"][l, u, draw(st.sampled_from(reads))] = draw(st.sampled_from([-1, 1]))
            w["W_out"][l, draw(st.sampled_from(outs[l])), u] = draw(st.sampled_from([-1, 1]))
            u += 1
    w["unembed"][:, OUT0:BIG_OUT[0]] = [[draw(st.integers(-3, 3)) for _ in range(BIG_OUT[0] - OUT0)]
                                        for _ in range(V)]
    model = CompiledModel(vocab=tuple(f"t{i}" for i in range(V)),
                          tie=np.zeros((L, D // 2), dtype=np.int8), **w)
    model.validate()
    return model


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channel_models(), st.lists(st.integers(0, V - 1), min_size=1, max_size=12))
def test_channels_and_linear_units_equal_the_dense_forward(model, ids):
    check_stages_equal_the_dense_forward(model, ids)


def test_channel_and_linear_groups_are_planned():
    """The drawn look-ups become CHANNEL groups (entries per interval, each naming the unit
    whose value row it reads; the dims their check reads) and the constant gates LINEAR
    groups woken by their value dimensions, not run on every token."""
    seen = {"channel": 0, "linear": 0, "entries": 0}

    @settings(max_examples=20, deadline=None, database=None)
    @given(channel_models())
    def collect(model):
        plan = plan_ffn(model)
        for g in np.flatnonzero(plan.group_kind == CHANNEL):
            lo = plan.iv_ptr[plan.bp_ptr[g] + g]
            hi = plan.iv_ptr[plan.bp_ptr[g + 1] + g + 1]
            assert np.all(plan.ent_unit[lo:hi] >= 0)
            assert plan.ch_vptr[g + 1] > plan.ch_vptr[g]
            seen["channel"] += 1
            seen["entries"] += int(hi - lo)
        for g in np.flatnonzero(plan.group_kind == LINEAR):
            assert g not in plan.always_groups
            seen["linear"] += 1

    collect()
    assert all(v > 0 for v in seen.values()), seen
