"""stdlib/bits32.rasp2d against the project's WASM semantics (interpreter_spec.numeric):
every output byte, reference evaluator and compiled model; shift amounts over the whole
operand range (WASM takes them mod 32)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stdlib_harness import OpSpec, check_together, costs_together, edge_grid, wasm, word_strategy

IMP = "import bits32"
W2 = (4, 4)
W1 = (4,)


def binary(name, op, depth):
    return OpSpec(name, IMP, f"bits32.{name}({{0}}, {{1}})", W2, 4, wasm(op), depth)


LOGIC = [binary("bit_and", "I32_AND", 2), binary("bit_or", "I32_OR", 2), binary("bit_xor", "I32_XOR", 2)]
SHIFTS = [binary(n, f"I32_{n.upper()}", 2) for n in ("shl", "shr_u", "shr_s", "rotl", "rotr")]
UNARY = [OpSpec(n, IMP, f"bits32.{n}({{0}})", W1, 4, wasm(f"I32_{n.upper()}"), 1)
         for n in ("clz", "ctz", "popcnt")]
ALL = {s.name: s for s in LOGIC + SHIFTS + UNARY}
BINARY = LOGIC + SHIFTS  # one program: the operand's bits are shared

amount = st.one_of(st.integers(0, 2 ** 32 - 1), st.integers(0, 100), st.sampled_from([31, 32, 33, 63, 64, 255, 256]))
shift_pairs = st.lists(st.tuples(word_strategy(4), amount), min_size=100, max_size=150)
words = st.lists(word_strategy(4).map(lambda w: (w,)), min_size=100, max_size=150)


def test_binary_edge_grid():
    check_together(BINARY, edge_grid(W2))


def test_shifts_every_amount():
    check_together(BINARY, [(0x80000001, k) for k in range(256)] +
                   [(v, k) for v in (0x12345678, 0xFFFFFFFF, 0x7FFFFFFF) for k in range(0, 34)] +
                   [(0xCAFEBABE, k + 256 * m) for k in (0, 1, 31) for m in (1, 255, 65535, 16777215)])


def test_unary_edge_values():
    check_together(UNARY, edge_grid(W1) + [(1 << k,) for k in range(32)] + [((1 << k) - 1,) for k in range(33)]
                   + [(0xFFFFFFFF ^ (1 << k),) for k in range(32)])


@settings(max_examples=2, deadline=None)
@given(xs=shift_pairs)
def test_binary_random(xs):
    check_together(BINARY, xs)


@settings(max_examples=3, deadline=None)
@given(xs=words)
def test_unary_random(xs):
    check_together(UNARY, xs)


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(xs=st.lists(st.tuples(word_strategy(4), amount), min_size=300, max_size=500))
def test_all_random_many(xs):
    check_together(BINARY, xs)
    check_together(UNARY, [x[:1] for x in xs])


@pytest.mark.parametrize("group", [BINARY, UNARY], ids=["binary", "unary"])
def test_depths(group):
    got = {name: cost.depth for name, cost in costs_together(group).items()}
    assert got == {s.name: s.depth for s in group}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ALL))
def test_standalone_cost_matches_shared(name):
    group = next(g for g in (BINARY, UNARY) if ALL[name] in g)
    alone, shared = ALL[name].compile().cost, costs_together(group)[name]
    assert (alone.depth, alone.units) == (shared.depth, shared.units)
