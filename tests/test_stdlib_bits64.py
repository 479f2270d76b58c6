"""stdlib/bits64.rasp2d against the project's WASM semantics (interpreter_spec.numeric):
every output byte, reference evaluator (first examples) and compiled model (all); shift
amounts over the whole operand range (WASM takes them mod 64)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stdlib_harness import OpSpec, check_together, costs_together, edge_grid, wasm, word_strategy

IMP = "import bits64"
W2 = (8, 8)
W1 = (8,)


def binary(name, op, depth):
    return OpSpec(name, IMP, f"bits64.{name}({{0}}, {{1}})", W2, 8, wasm(op, 8), depth)


LOGIC = [binary("bit_and", "I64_AND", 2), binary("bit_or", "I64_OR", 2), binary("bit_xor", "I64_XOR", 2)]
SHIFTS = [binary(n, f"I64_{n.upper()}", 2) for n in ("shl", "shr_u", "shr_s", "rotl", "rotr")]
UNARY = [OpSpec(n, IMP, f"bits64.{n}({{0}})", W1, 8, wasm(f"I64_{n.upper()}", 8), 1)
         for n in ("clz", "ctz", "popcnt")]
BINARY = LOGIC + SHIFTS  # one program: the operand's bits are shared
GROUPS = {"binary": BINARY, "unary": UNARY}

amount = st.one_of(st.integers(0, 2 ** 64 - 1), st.integers(0, 140), st.sampled_from([63, 64, 65, 127, 128, 255, 256]))
shift_pairs = st.lists(st.tuples(word_strategy(8), amount), min_size=80, max_size=120)
words = st.lists(word_strategy(8).map(lambda w: (w,)), min_size=100, max_size=150)


def test_binary_edge_grid():
    check_together(BINARY, edge_grid(W2))


def test_shifts_every_amount():
    check_together(BINARY, [(0x8000000000000001, k) for k in range(256)] +
                   [(v, k) for v in (0x123456789ABCDEF0, 0xFFFFFFFFFFFFFFFF) for k in range(0, 66)] +
                   [(0xCAFEBABEDEADBEEF, k + 256 * m) for k in (0, 1, 63) for m in (1, 255, 2 ** 56 - 1)])


def test_unary_edge_values():
    check_together(UNARY, edge_grid(W1) + [(1 << k,) for k in range(64)] + [((1 << k) - 1,) for k in range(65)]
                   + [((2 ** 64 - 1) ^ (1 << k),) for k in range(64)])


@settings(max_examples=2, deadline=None)
@given(xs=shift_pairs)
def test_binary_random(xs):
    check_together(BINARY, xs)


@settings(max_examples=2, deadline=None)
@given(xs=words)
def test_unary_random(xs):
    check_together(UNARY, xs)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(xs=st.lists(st.tuples(word_strategy(8), amount), min_size=300, max_size=500))
def test_all_random_many(xs):
    check_together(BINARY, xs)
    check_together(UNARY, [x[:1] for x in xs])


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_depths(group):
    got = {name: cost.depth for name, cost in costs_together(GROUPS[group]).items()}
    assert got == {s.name: s.depth for s in GROUPS[group]}
