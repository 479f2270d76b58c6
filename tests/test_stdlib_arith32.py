"""stdlib/arith32.rasp2d against the project's WASM semantics (interpreter_spec.numeric):
every output byte, reference evaluator and compiled model, edge-case grid plus hypothesis.
Ops of one operand shape are checked together in one compiled program (fast); each op's
depth is pinned from its own standalone program."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stdlib_harness import OpSpec, check_together, costs_together, edge_grid, wasm, word_strategy

IMP = "import arith32"
W2 = (4, 4)
W1 = (4,)


def binary(name, op, depth, result_bytes=None):
    return OpSpec(name, IMP, f"arith32.{name}({{0}}, {{1}})", W2, 4 if result_bytes is None else 1,
                  wasm(op, 4, result_bytes), depth)


BINARY = [binary("add", "I32_ADD", 1), binary("sub", "I32_SUB", 1), binary("mul", "I32_MUL", 2)] + [
    binary(c, f"I32_{c.upper()}", 1, 0)
    for c in ("eq", "ne", "lt_u", "gt_u", "le_u", "ge_u", "lt_s", "gt_s", "le_s", "ge_s")]
UNARY = [
    OpSpec("neg", IMP, "arith32.neg({0})", W1, 4, lambda a: wasm("I32_SUB")(0, a), 1),
    OpSpec("eqz", IMP, "arith32.eqz({0})", W1, 1, wasm("I32_EQZ", 4, 0), 1),
    OpSpec("extend8_s", IMP, "arith32.extend8_s({0})", W1, 4, wasm("I32_EXTEND8_S"), 1),
    OpSpec("extend16_s", IMP, "arith32.extend16_s({0})", W1, 4, wasm("I32_EXTEND16_S"), 1),
]
ALL = {s.name: s for s in BINARY + UNARY}
pairs = st.lists(st.tuples(word_strategy(4), word_strategy(4)), min_size=100, max_size=150)
words = st.lists(word_strategy(4).map(lambda w: (w,)), min_size=100, max_size=150)


def test_binary_edge_grid():
    check_together(BINARY, edge_grid(W2))


def test_unary_edge_values():
    check_together(UNARY, edge_grid(W1) + [(v,) for v in range(0, 70000, 97)])


@settings(max_examples=3, deadline=None)
@given(xs=pairs)
def test_binary_random(xs):
    check_together(BINARY, xs)


@settings(max_examples=3, deadline=None)
@given(xs=words)
def test_unary_random(xs):
    check_together(UNARY, xs)


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(xs=st.lists(st.tuples(word_strategy(4), word_strategy(4)), min_size=300, max_size=500))
def test_binary_random_many(xs):
    check_together(BINARY, xs)


@pytest.mark.parametrize("group", [BINARY, UNARY], ids=["binary", "unary"])
def test_depths(group):
    got = {name: cost.depth for name, cost in costs_together(group).items()}
    assert got == {s.name: s.depth for s in group}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ALL))
def test_standalone_cost_matches_shared(name):
    group = BINARY if ALL[name] in BINARY else UNARY
    alone, shared = ALL[name].compile().cost, costs_together(group)[name]
    assert (alone.depth, alone.units) == (shared.depth, shared.units)
