"""FAMILY groups (same-table TABLE groups whose directions lie on a line ``D + t E``) give
exactly the dense forward pass, on both sides of E.x = 0 and when their guard sends the
members back one by one (fractional inputs)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hull_ffn_plan import check_stages_equal_the_dense_forward

from rasp2d.backends.hull_ffn_plan import FAMILY, plan_ffn
from rasp2d.backends.model_file import CompiledModel

ONE, A, B, HALF = 0, 1, 2, 3  # constant, two integer token features, a fractional one
OUT0 = 4
D, V = 10, 9


@st.composite
def family_models(draw):
    """One FFN layer: a family of ``n`` members, each the same units (gate ``a (r_k . x) + c``,
    constant value, shared out rows) with ``r_k = D + t_k E``; a second layer reads what the
    first wrote through another family, so family outputs feed family inputs."""
    n = draw(st.integers(4, 9))
    units = draw(st.lists(st.tuples(st.integers(1, 3), st.integers(-4, 4),
                                    st.integers(-3, 3).filter(bool)), min_size=1, max_size=3))
    L = 2
    F = 2 * n * len(units)
    w = {name: np.zeros(shape) for name, shape in (
        ("embed", (V, D)), ("pos_embed", (2, D)), ("W_q", (L, D // 2, 2, D)),
        ("W_k", (L, D // 2, 2, D)), ("W_v", (L, D // 2, 2, D)), ("W_o", (L, D, D // 2, 2)),
        ("W_gate", (L, F, D)), ("W_val", (L, F, D)), ("W_out", (L, D, F)), ("unembed", (V, D)))}
    t = np.arange(V) - V // 2
    w["embed"][:, ONE] = 1
    w["embed"][:, A] = t
    w["embed"][:, B] = t * t - 3
    w["embed"][:, HALF] = t / 2
    reads = ([A, B, HALF] if draw(st.booleans()) else [A, B], [A, OUT0, OUT0 + 1])
    outs = ([OUT0, OUT0 + 1], [OUT0 + 2, OUT0 + 3])
    for l in range(L):
        dims = reads[l]
        d0 = [draw(st.integers(-3, 3)) for _ in dims]
        e = [draw(st.integers(-2, 2)) for _ in dims]
        if not any(e):
            e[0] = 1
        ts = draw(st.lists(st.integers(-6, 6), min_size=n, max_size=n, unique=True))
        o = [draw(st.sampled_from([-2, -1, 1, 2])) for _ in outs[l]]
        u = 0
        for tk in ts:
            r = [dv + tk * ev for dv, ev in zip(d0, e)]
            for a, c, v in units:
                w["W_gate"][l, u, dims] = [a * x for x in r]
                w["W_gate"][l, u, ONE] += c
                w["W_val"][l, u, ONE] = v
                w["W_out"][l, outs[l], u] = o
                u += 1
    w["unembed"][:, OUT0:] = [[draw(st.integers(-3, 3)) for _ in range(D - OUT0)]
                              for _ in range(V)]
    model = CompiledModel(vocab=tuple(f"t{i}" for i in range(V)),
                          tie=np.zeros((L, D // 2), dtype=np.int8), **w)
    model.validate()
    return model


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family_models(), st.lists(st.integers(0, V - 1), min_size=1, max_size=12))
def test_families_equal_the_dense_forward(model, ids):
    check_stages_equal_the_dense_forward(model, ids)


def test_families_are_planned():
    """The drawn models do form families (not only groups run one by one), with members
    sorted by t and the prefix sums of t that the aggregate reads."""
    seen = {"families": 0, "members": 0}

    @settings(max_examples=20, deadline=None, database=None)
    @given(family_models())
    def collect(model):
        plan = plan_ffn(model)
        for g in np.flatnonzero(plan.group_kind == FAMILY):
            m0, m1 = plan.fam_mptr[g], plan.fam_mptr[g + 1]
            ts = plan.fam_t[m0:m1]
            assert np.all(np.diff(ts) > 0)
            tc = plan.fam_tcum[plan.fam_tptr[g]:plan.fam_tptr[g] + m1 - m0 + 1]
            assert np.array_equal(tc, np.concatenate([[0.0], np.cumsum(ts)]))
            seen["families"] += 1
            seen["members"] += int(m1 - m0)

    collect()
    assert seen["families"] > 0 and seen["members"] >= 4 * seen["families"], seen
