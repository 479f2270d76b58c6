"""FFN units grouped by gate direction (TABLE and SELECT groups, the guard's fallback, inline
moves) give exactly the dense forward pass: residual streams equal bit for bit at every stage."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasp2d.backends.dense_forward import dense_forward
from rasp2d.backends.hull_ffn_plan import LINEAR, SELECT, TABLE, first_writes, plan_ffn
from rasp2d.backends.hull_runtime import HullDecoder
from rasp2d.backends.model_file import CompiledModel, Manifest, ResidualSlot

ONE, A, B, HALF = 0, 1, 2, 3  # constant, two integer token features, a fractional one
INPUTS = (A, B, HALF)
OUT0 = 4
D, F, V, L = 12, 24, 9, 2

small = st.integers(-3, 3)


@st.composite
def ffn_models(draw):
    """Two FFN layers of units drawn in groups sharing a gate direction (staircases, hats,
    selectors, constant gates); layer 1 reads what layer 0 wrote.  Directions reading HALF
    (x.5 values) must take the guard's unit-by-unit path."""
    w = {name: np.zeros(shape) for name, shape in (
        ("embed", (V, D)), ("pos_embed", (2, D)), ("W_q", (L, D // 2, 2, D)),
        ("W_k", (L, D // 2, 2, D)), ("W_v", (L, D // 2, 2, D)), ("W_o", (L, D, D // 2, 2)),
        ("W_gate", (L, F, D)), ("W_val", (L, F, D)), ("W_out", (L, D, F)), ("unembed", (V, D)))}
    t = np.arange(V) - V // 2
    w["embed"][:, ONE] = 1
    w["embed"][:, A] = t
    w["embed"][:, B] = t * t - 3
    w["embed"][:, HALF] = t / 2
    outs = [list(range(OUT0, OUT0 + 4)), list(range(OUT0 + 4, D))]
    for l in range(L):
        reads = list(INPUTS) + (outs[0] if l else [])
        u = 0
        while u < F:
            n = draw(st.integers(1, 8))
            dims = draw(st.lists(st.sampled_from(reads), min_size=0, max_size=2, unique=True))
            r = [draw(st.integers(-2, 2).filter(bool)) for _ in dims]
            const_values = draw(st.booleans())
            for _ in range(min(n, F - u)):
                a = draw(small)
                w["W_gate"][l, u, dims] = [a * x for x in r]
                w["W_gate"][l, u, ONE] = draw(st.integers(-6, 6))
                if const_values:
                    w["W_val"][l, u, ONE] = draw(small.filter(bool))
                else:
                    w["W_val"][l, u, draw(st.sampled_from(reads))] = draw(small.filter(bool))
                for o in draw(st.lists(st.sampled_from(outs[l]), min_size=1, max_size=2,
                                       unique=True)):
                    w["W_out"][l, o, u] = draw(st.sampled_from([-2, -1, 1, 2]))
                u += 1
    w["unembed"][:, OUT0:] = [[draw(small) for _ in range(D - OUT0)] for _ in range(V)]
    # with a manifest, each layer's outputs are new values (fresh dimensions, unread by the
    # layer that writes them): the step writes them straight into x (sparse_program's direct
    # writes), fractional and multi-writer sums included; without one, through delta
    manifest = Manifest(residual=tuple(
        ResidualSlot(o, f"out{l}_{o}", 2 * l + 2, 2 * L) for l in range(L) for o in outs[l]
    )) if draw(st.booleans()) else Manifest()
    model = CompiledModel(vocab=tuple(f"t{i}" for i in range(V)),
                          tie=np.zeros((L, D // 2), dtype=np.int8), manifest=manifest, **w)
    model.validate()
    return model


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ffn_models(), st.lists(st.integers(0, V - 1), min_size=1, max_size=12))
def test_grouped_units_equal_the_dense_forward(model, ids):
    check_stages_equal_the_dense_forward(model, ids)


def check_stages_equal_the_dense_forward(model, ids) -> None:
    """Every stage of every decoded token equals the dense forward pass, bit for bit."""
    trace = dense_forward(model, ids)
    dec = HullDecoder(model, record=True)
    for i, tok in enumerate(ids):
        assert dec.feed(tok) == trace.next_tokens[i]
        assert np.array_equal(dec.stages, trace.residuals[:, i]), i


def test_every_path_is_planned():
    """Across drawn models the plan has TABLE and SELECT groups, groups with no input
    (constant gates), groups the guard sends unit by unit (HALF inputs), tables folded into
    the layer's constant, groups run only when an input is non-zero, and moves (constant-gate
    units of power-of-two weights reading one dimension, added inline by their wake entry)."""
    seen = {"table": 0, "select": 0, "constant": 0, "guarded": 0, "folded": 0, "woken": 0,
            "linear": 0, "move": 0}

    @settings(max_examples=30, deadline=None, database=None)
    @given(ffn_models())
    def collect(model):
        plan = plan_ffn(model)
        seen["table"] += int((plan.group_kind == TABLE).sum())
        seen["select"] += int((plan.group_kind == SELECT).sum())
        n_in = np.diff(plan.in_ptr)
        seen["constant"] += int((n_in == 0).sum())
        seen["guarded"] += int(np.isin(plan.in_dim, [HALF]).sum())
        seen["folded"] += int(plan.z_dim.size)  # tables relative to their output at s = 0
        seen["woken"] += int(plan.wake_groups.size)
        seen["linear"] += int((plan.group_kind == LINEAR).sum())
        seen["move"] += int(plan.mv_dst.size)

    collect()
    assert all(v > 0 for v in seen.values()), seen


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ffn_models())
def test_fresh_outputs_skip_the_fold_only_with_a_manifest(model):
    from rasp2d.backends.sparse_program import sparse_program
    prog = sparse_program(model)
    folded = [prog.fold_ptr[s + 1] - prog.fold_ptr[s] for s in range(2 * L)]
    if model.manifest.residual:
        assert folded == [0] * (2 * L)  # every output dimension is a fresh, unread value
    else:
        assert (prog.ffn.ent_dim >= D).all() and (prog.ffn.mv_dst >= D).all()
    check_stages_equal_the_dense_forward(model, list(range(V)))


def test_staircase_is_one_table_with_one_entry_per_interval():
    """floor(s / 4) for s = A in -4..4 as units relu(s - 4k + 1) - relu(s - 4k): one group."""
    model_arrays = {name: np.zeros(shape) for name, shape in (
        ("embed", (V, D)), ("pos_embed", (2, D)), ("W_q", (1, D // 2, 2, D)),
        ("W_k", (1, D // 2, 2, D)), ("W_v", (1, D // 2, 2, D)), ("W_o", (1, D, D // 2, 2)),
        ("W_gate", (1, F, D)), ("W_val", (1, F, D)), ("W_out", (1, D, F)), ("unembed", (V, D)))}
    t = np.arange(V) - V // 2
    model_arrays["embed"][:, ONE] = 1
    model_arrays["embed"][:, A] = t
    u = 0
    for k in range(-2, 3):
        for c, sign in ((1, 1), (0, -1)):
            model_arrays["W_gate"][0, u, [A, ONE]] = [1, c - 4 * k]
            model_arrays["W_val"][0, u, ONE] = sign
            model_arrays["W_out"][0, OUT0, u] = 1
            u += 1
    model_arrays["unembed"][np.arange(V), OUT0] = t
    model = CompiledModel(vocab=tuple(f"t{i}" for i in range(V)),
                          tie=np.zeros((1, D // 2), dtype=np.int8), **model_arrays)
    plan = plan_ffn(model)
    assert plan.n_groups == 1 and plan.group_kind[0] == TABLE
    assert np.diff(plan.iv_ptr).max() <= 1  # one affine piece per interval: the step value
    assert first_writes(model)[OUT0] == 1
    ids = list(range(V))
    trace = dense_forward(model, ids)
    dec = HullDecoder(model, record=True)
    for i, tok in enumerate(ids):
        dec.feed(tok)
        assert np.array_equal(dec.stages, trace.residuals[:, i])
