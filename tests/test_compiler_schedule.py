"""Placement: fused sums and the placement search keep the minimum depth, never share a live
dimension, make models no larger than the classic placement, and stay exact."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rasp2d.backends.reference import evaluate
from rasp2d.compiler.allocate import allocate, check_allocation
from rasp2d.compiler.api import CLASSIC, CompileResult, Placement, compile_source
from rasp2d.compiler.fuse_sums import fuse_sums
from rasp2d.compiler.schedule import (_Placement, earliest, latest, min_layers, narrow_schedule, op_graph,
                                      schedule, schedule_from_stages)
from rasp2d.lang.errors import Rasp2dError

VOCAB = "0 1 2 3 4 5 6 7 8 9"
HEADER = (f"vocab {{ {VOCAB} }}\nmax_len 12\nlet x0 = int(tokens, default=0)\nlet x1 = indices\n"
          "let x2 = prev(x0, 1, default=3)\n")

# products and PWL nodes summed in fixed combinations are what fusion merges; means and
# prefix sums are what it must leave alone
TERMS = ["{a} * {b}", "min({a}, {b})", "int({a} > {b})", "abs({a} - 3)", "{a} // 3", "{a} % 4",
         "prefix_sum({a})", "int(lookup({a}, {b}, {c}, tie=average, default=0) >= 2)",
         "table({a}, {{0: 2, 2: -3, 5: 4}}, default=1)", "if {a} > 2 then {b} else {c}"]


@st.composite
def summing_programs(draw):
    n = draw(st.integers(1, 5))
    lines = [HEADER]
    for i in range(3, n + 3):
        names = [f"x{j}" for j in range(i)]
        pick = lambda: draw(st.sampled_from(names))
        terms = []
        for _ in range(draw(st.integers(1, 4))):
            t = draw(st.sampled_from(TERMS)).format(a=pick(), b=pick(), c=pick())
            terms.append(f"{draw(st.sampled_from([1, -1, 2, 3]))} * ({t})")
        lines.append(f"let x{i} = clamp({' + '.join(terms)}, -30, 30)\n")
    lines.append(f"emit token(clamp(int(x{n + 2}), 0, 9))\n")
    return "".join(lines)


def dense_floats(res: CompileResult) -> int:
    m = res.model
    return m.n_layers * m.d_model * (4 * m.d_model + 3 * m.d_ffn)


def check_exact(res: CompileResult, token_lists) -> None:
    import torch

    from rasp2d.backends.torch_backend import TorchTransformer
    net = TorchTransformer.from_compiled(res.model)
    for toks in token_lists:
        want = evaluate(res.graph, toks)[res.graph.output]
        got = net(torch.tensor([toks]))[0].argmax(-1).tolist()
        assert got == want, f"model disagrees with the reference on {toks}"


def compile_or_skip(src: str, placement: Placement) -> CompileResult:
    try:
        return compile_source(src, "random.rasp2d", placement=placement)
    except Rasp2dError as exc:  # the generator built something too big for exactness
        assume("2^53" not in str(exc) and "units" not in str(exc) and "2^50" not in str(exc))
        raise


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(summing_programs(), st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=12), min_size=1, max_size=3))
def test_fused_narrow_models_are_exact_and_no_larger(src, token_lists):
    classic = compile_or_skip(src, CLASSIC)
    new = compile_or_skip(src, Placement())
    check_allocation(new.lowered, new.schedule, new.allocation)
    assert new.model.n_layers == classic.model.n_layers  # the minimum depth is kept
    assert dense_floats(new) <= dense_floats(classic), src
    check_exact(new, token_lists)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(summing_programs(), st.integers(1, 2), st.lists(st.integers(0, 9), min_size=1, max_size=12))
def test_extra_layers_are_used_and_exact(src, extra, toks):
    base = compile_or_skip(src, Placement())
    wide = compile_or_skip(src, Placement(extra_layers=extra))
    assert wide.model.n_layers == base.model.n_layers + extra
    check_allocation(wide.lowered, wide.schedule, wide.allocation)
    check_exact(wide, [toks])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(summing_programs())
def test_search_width_model_is_the_allocators(src):
    """The search scores a placement by the most values alive at one stage (each held until its
    clearing FFN); first-fit allocation of those intervals must use exactly that many."""
    res = compile_or_skip(src, Placement())
    low = res.lowered
    g = op_graph(low)
    n = min_layers(g)
    for start in (earliest(g), latest(g, n)):
        p = _Placement(low, g, start, n)
        assert max(p.live()) == allocate(low, schedule_from_stages(low, g, start, n)).n_dims


def test_a_sum_of_products_takes_one_dimension():
    src = (f"vocab {{ {VOCAB} }}\nmax_len 12\nlet a = int(tokens, default=0)\nlet b = indices\n"
           "let c = prev(a, 1, default=2)\n"
           "let s = a * b + 2 * (b * c) - a * c + abs(a - c)\n"
           "emit token(clamp(s, 0, 9))\n")
    classic = compile_source(src, "sum.rasp2d", placement=CLASSIC)
    new = compile_source(src, "sum.rasp2d")
    fusion = fuse_sums(classic.lowered)
    assert [len(g) for g in fusion.groups] == [4]  # three products and the abs block
    assert new.allocation.n_dims < classic.allocation.n_dims
    assert new.model.n_layers == classic.model.n_layers
    check_exact(new, [[1, 5, 9, 3, 0, 7, 2, 8, 4, 6, 1, 2]])


def test_values_read_in_different_combinations_are_not_merged():
    """p and q are read as p + q and as p - q: two values, two dimensions.  The look-up's result
    and the remainder are only read as their sum: one."""
    src = (f"vocab {{ {VOCAB} }}\nmax_len 12\nlet a = int(tokens, default=0)\nlet b = indices\n"
           "let p = a * b\nlet q = min(a, b)\n"
           "emit token(clamp(lookup(indices, p + q, a, default=0) + (p - q) % 3, 0, 9))\n")
    res = compile_source(src, "mix.rasp2d", placement=CLASSIC)
    labels = [tuple(res.lowered.slots[s].label for s in g) for g in fuse_sums(res.lowered).groups]
    assert labels == [("lookup(indices, (p + q), a, default=0) (or default)", "((p - q) % 3)")]
    check_exact(compile_source(src, "mix.rasp2d"), [[4, 2, 9, 9, 0, 1, 3]])


def test_means_and_magic_rounding_are_never_merged():
    src = (f"vocab {{ {VOCAB} }}\nmax_len 12\nlet a = int(tokens, default=0)\n"
           "let s = prefix_sum(a) + prefix_sum(2 * a + 1)\n"
           "emit token(clamp(s % 10, 0, 9))\n")
    res = compile_source(src, "means.rasp2d", placement=CLASSIC)
    fusion = fuse_sums(res.lowered)
    inexact = {s.id for s in res.lowered.slots if not s.exact}
    magic = {b.output for b in res.lowered.ffns if any(abs(u.value.const) >= 2 ** 51 for u in b.units)}
    merged = {s for g in fusion.groups for s in g}
    assert magic and not merged & (inexact | magic)
    check_exact(compile_source(src, "means.rasp2d"), [[3, 1, 4, 1, 5, 9, 2, 6]])


def test_search_moves_a_late_only_value_late():
    """A value read once, at the end, is computed where it is read, not kept alive from the
    start (ASAP) — while a long chain fixes the depth."""
    chain = "".join(f"let y{i} = prev(y{i - 1}, 1, default=0) + 1\n" for i in range(1, 7))
    src = (f"vocab {{ {VOCAB} }}\nmax_len 12\nlet a = int(tokens, default=0)\nlet y0 = indices\n{chain}"
           + "".join(f"let z{j} = prev(a, {j + 1}, default=0) * {j + 2}\n" for j in range(4)) +
           "emit token(clamp((y6 + z0 + z1 * z2 + z3) % 10, 0, 9))\n")
    low = compile_source(src, "late.rasp2d", placement=CLASSIC).lowered
    early = schedule(low)
    new = narrow_schedule(low)
    assert new.n_layers == early.n_layers
    assert allocate(low, new).n_dims < allocate(low, early).n_dims


@pytest.mark.parametrize("bad", [-1])
def test_negative_extra_layers_is_refused(bad):
    with pytest.raises(ValueError, match="extra_layers"):
        compile_source("vocab { 0 1 }\nmax_len 4\nemit token(0)\n", "x.rasp2d",
                       placement=Placement(extra_layers=bad))
