"""stdlib/arith64.rasp2d against the project's WASM semantics (interpreter_spec.numeric):
every output byte, reference evaluator (first examples) and compiled model (all)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stdlib_harness import OpSpec, check_together, costs_together, edge_grid, to_bytes, wasm, word_strategy

IMP = "import arith64"
W2 = (8, 8)
W1 = (8,)


def binary(name, op, depth, result_bytes=None):
    return OpSpec(name, IMP, f"arith64.{name}({{0}}, {{1}})", W2, 8 if result_bytes is None else 1,
                  wasm(op, 8, result_bytes), depth)


BINARY = [binary("add", "I64_ADD", 2), binary("sub", "I64_SUB", 2)] + [
    binary(c, f"I64_{c.upper()}", 2, 0)
    for c in ("eq", "ne", "lt_u", "gt_u", "le_u", "ge_u", "lt_s", "gt_s", "le_s", "ge_s")]
MUL = [binary("mul", "I64_MUL", 7)]
UNARY = [
    OpSpec("neg", IMP, "arith64.neg({0})", W1, 8, lambda a: wasm("I64_SUB", 8)(0, a), 1),
    OpSpec("eqz", IMP, "arith64.eqz({0})", W1, 1, wasm("I64_EQZ", 8, 0), 1),
    OpSpec("wrap", IMP, "arith64.wrap({0})", W1, 4, wasm("I32_WRAP_I64", 8, 4), 0),
    OpSpec("extend8_s", IMP, "arith64.extend8_s({0})", W1, 8, wasm("I64_EXTEND8_S", 8), 1),
    OpSpec("extend16_s", IMP, "arith64.extend16_s({0})", W1, 8, wasm("I64_EXTEND16_S", 8), 1),
    OpSpec("extend32_s", IMP, "arith64.extend32_s({0})", W1, 8, wasm("I64_EXTEND32_S", 8), 1),
]
FROM32 = [
    OpSpec("extend_i32_s", IMP, "arith64.extend_i32_s({0})", (4,), 8, wasm("I64_EXTEND_I32_S", 8), 1),
    OpSpec("extend_i32_u", IMP, "arith64.extend_i32_u({0})", (4,), 8, lambda w: to_bytes(w, 8), 0),
]


GROUPS = {"binary": BINARY, "mul": MUL, "unary": UNARY, "from32": FROM32}
pairs = st.lists(st.tuples(word_strategy(8), word_strategy(8)), min_size=100, max_size=150)
words = st.lists(word_strategy(8).map(lambda w: (w,)), min_size=100, max_size=150)


def test_binary_edge_grid():
    check_together(BINARY, edge_grid(W2))


def test_mul_edge_grid():
    check_together(MUL, edge_grid(W2))


def test_unary_edge_values():
    check_together(UNARY, edge_grid(W1) + [(1 << k,) for k in range(64)])
    check_together(FROM32, edge_grid((4,)))


@settings(max_examples=2, deadline=None)
@given(xs=pairs)
def test_binary_random(xs):
    check_together(BINARY, xs)
    check_together(MUL, xs)


@settings(max_examples=2, deadline=None)
@given(xs=words)
def test_unary_random(xs):
    check_together(UNARY, xs)
    check_together(FROM32, [(x & 0xFFFFFFFF,) for (x,) in xs])


@pytest.mark.slow
# (hundreds of word pairs per example are more than hypothesis's default entropy budget allows)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(xs=st.lists(st.tuples(word_strategy(8), word_strategy(8)), min_size=300, max_size=500))
def test_binary_random_many(xs):
    check_together(BINARY, xs)
    check_together(MUL, xs)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_depths(group):
    got = {name: cost.depth for name, cost in costs_together(GROUPS[group]).items()}
    assert got == {s.name: s.depth for s in GROUPS[group]}
