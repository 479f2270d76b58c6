"""stdlib/divide.rasp2d: quotient bytes emitted most significant first, each computed from the
operands and the bytes already emitted.  The property: iterating quotient_byte (feeding each
result back, with garbage in the bytes not yet emitted) reproduces WASM div_u / div_s, and the
remainder and signed-result helpers then give rem_u / rem_s / div_s exactly, in the compiled
model (every example) and the reference evaluator (the first few)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stdlib_harness import GRID32, OpSpec, check, compile_op, costs_together, to_bytes, wasm, word_strategy
from rasp2d.interpreter_spec.numeric import signed

N, D, Q = "(x0, x1, x2, x3)", "(x4, x5, x6, x7)", "(x8, x9, x10, x11)"
IMP = "import divide"
REF_EXAMPLES = 8  # the reference evaluator walks ~3.5k nodes per position here


def quotient_program(kind: str, k: int):
    return compile_op(IMP, 12, f"divide.quotient_byte_{kind}({k}, {N}, {D}, {Q})", 1)


def complement_program(k: int):
    return compile_op(IMP, 12, f"divide.quotient_byte_u_c({k}, {N}, {D}, {Q})", 1)


def magnitude_quotient(n: int, d: int) -> int:
    return abs(signed(n, 32)) // abs(signed(d, 32))


def iterate(kind: str, pairs: list[tuple[int, int]], seed: int) -> tuple[list[int], list[int]]:
    """Quotients built byte by byte by the compiled model and by the reference evaluator."""
    rng = random.Random(seed)
    garbage = [[rng.randrange(256) for _ in range(4)] for _ in pairs]
    results = []
    for source in ("compiled", "reference"):
        use = pairs if source == "compiled" else pairs[:REF_EXAMPLES]
        qs = [list(g) for g in garbage[:len(use)]]
        for k in (3, 2, 1, 0):
            examples = [to_bytes(n, 4) + to_bytes(d, 4) + tuple(q) for (n, d), q in zip(use, qs)]
            op = complement_program(k) if kind == "c" else quotient_program(kind, k)
            out = op.compiled(examples) if source == "compiled" else op.reference(examples)
            for q, (o,) in zip(qs, out):
                q[k] = o
        if kind == "c":  # the complement form carries 255 - q_k
            qs = [[255 - b for b in q] for q in qs]
        results.append([sum(b << (8 * i) for i, b in enumerate(q)) for q in qs])
    return results[0], results[1]


def check_division(pairs: list[tuple[int, int]], seed: int = 0) -> None:
    pairs = [(n, d) for n, d in pairs if d != 0]
    # unsigned: the quotient, then the remainder from it
    got, ref = iterate("u", pairs, seed)
    assert got == [n // d for n, d in pairs]
    assert ref == [n // d for n, d in pairs[:REF_EXAMPLES]]
    rem = compile_op(IMP, 12, f"divide.rem_u_from_quotient({N}, {D}, {Q})", 4)
    check(rem, [to_bytes(n, 4) + to_bytes(d, 4) + to_bytes(n // d, 4) for n, d in pairs],
          [wasm("I32_REM_U")(n, d) for n, d in pairs], REF_EXAMPLES)
    # signed: |Q|, then the div_s result from it
    got, ref = iterate("s", pairs, seed + 1)
    assert got == [magnitude_quotient(n, d) for n, d in pairs]
    assert ref == [magnitude_quotient(n, d) for n, d in pairs[:REF_EXAMPLES]]
    ok = [(n, d) for n, d in pairs if not (n == 0x80000000 and d == 0xFFFFFFFF)]
    res = compile_op(IMP, 12, f"divide.div_s_result({N}, {D}, {Q})", 4)
    check(res, [to_bytes(n, 4) + to_bytes(d, 4) + to_bytes(magnitude_quotient(n, d), 4) for n, d in ok],
          [wasm("I32_DIV_S")(n, d) for n, d in ok], REF_EXAMPLES)
    # the complement form (every byte 255 - q_k): the same quotients, remainders and results
    got, ref = iterate("c", pairs, seed + 2)
    assert got == [n // d for n, d in pairs]
    assert ref == [n // d for n, d in pairs[:REF_EXAMPLES]]
    rem = compile_op(IMP, 12, f"divide.rem_u_from_quotient_c({N}, {D}, {Q})", 4)
    check(rem, [to_bytes(n, 4) + to_bytes(d, 4) + complement(n // d) for n, d in pairs],
          [wasm("I32_REM_U")(n, d) for n, d in pairs], REF_EXAMPLES)
    res = compile_op(IMP, 12, f"divide.div_s_result_c({N}, {D}, {Q}, 1)", 4)
    check(res, [to_bytes(n, 4) + to_bytes(d, 4) + complement(magnitude_quotient(n, d)) for n, d in ok],
          [tuple(b - 255 for b in wasm("I32_DIV_S")(n, d)) for n, d in ok], REF_EXAMPLES)


def complement(q: int) -> tuple[int, ...]:
    return tuple(255 - b for b in to_bytes(q, 4))


def test_complement_form_is_zero_at_rest():
    """All-zero operands (a machine's positions away from a division) give all-zero values, so
    the runtime skips every FFN group of the division there."""
    zero = [(0,) * 12]
    for k in (3, 2, 1, 0):
        assert complement_program(k).compiled(zero) == [(0,)]
    for expr in (f"divide.rem_u_from_quotient_c({N}, {D}, {Q})", f"divide.div_s_result_c({N}, {D}, {Q}, 0)"):
        op = compile_op(IMP, 12, expr, 4)
        assert op.compiled(zero) == [(0, 0, 0, 0)] == op.reference(zero)


def test_division_edge_grid():
    check_division([(n, d) for n in GRID32 for d in GRID32] + [(0x80000000, 0xFFFFFFFF), (0x7FFFFFFF, 0xFFFFFFFF)])


nonzero = word_strategy(4).filter(lambda d: d != 0)


@settings(max_examples=2, deadline=None)
@given(pairs=st.lists(st.tuples(word_strategy(4), st.one_of(nonzero, st.integers(1, 300),
                                                              st.integers(0x100, 0xFFFF))),
                      min_size=60, max_size=100), seed=st.integers(0, 1000))
def test_division_random(pairs, seed):
    check_division(pairs, seed)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(pairs=st.lists(st.tuples(word_strategy(4), nonzero), min_size=200, max_size=400),
       seed=st.integers(0, 1000))
def test_division_random_many(pairs, seed):
    check_division(pairs, seed)


TRAPS = [
    OpSpec("divisor_is_zero", IMP, "divide.divisor_is_zero({1})", (4, 4), 1, lambda n, d: (int(d == 0),), 1),
    OpSpec("div_s_overflows", IMP, "divide.div_s_overflows({0}, {1})", (4, 4), 1,
           lambda n, d: (int(n == 0x80000000 and d == 0xFFFFFFFF),), 1),
]


def test_trap_predicates():
    from stdlib_harness import check_together
    near = [0x80000000, 0x7FFFFFFF, 0x80000001, 0xFFFFFFFF, 0xFFFFFFFE, 0xFEFFFFFF, 0, 1, 0x100]
    check_together(TRAPS, [(n, d) for n in near + list(GRID32) for d in near + list(GRID32)])


@pytest.mark.parametrize("kind,k,depth", [("u", 3, 1), ("u", 2, 2), ("u", 1, 2), ("u", 0, 2),
                                          ("s", 3, 2), ("s", 2, 2), ("s", 1, 2), ("s", 0, 2)])
def test_quotient_depth(kind, k, depth):
    assert quotient_program(kind, k).cost.depth == depth


def test_result_depths():
    assert compile_op(IMP, 12, f"divide.rem_u_from_quotient({N}, {D}, {Q})", 4).cost.depth == 2
    assert compile_op(IMP, 12, f"divide.div_s_result({N}, {D}, {Q})", 4).cost.depth == 2
    assert compile_op(IMP, 12, f"divide.rem_u_from_quotient_c({N}, {D}, {Q})", 4).cost.depth == 2
    assert compile_op(IMP, 12, f"divide.div_s_result_c({N}, {D}, {Q}, 1)", 4).cost.depth == 2
    assert [complement_program(k).cost.depth for k in (3, 2, 1, 0)] == [1, 2, 2, 2]
    assert {n: c.depth for n, c in costs_together(TRAPS).items()} == {"divisor_is_zero": 1, "div_s_overflows": 1}


def rem_s_pairs(count: int) -> list[tuple[int, int]]:
    pairs = [(n, d) for n in GRID32 + (0x80000000, 5, 0xFFFFFFFB) for d in GRID32 + (0xFFFFFFFF, 3, 0xFFFFFFFD) if d]
    rng = random.Random(7)
    return pairs + [(rng.getrandbits(32), rng.choice([rng.getrandbits(32), rng.getrandbits(9) + 1,
                                                       2 ** 32 - rng.getrandbits(9) - 1])) for _ in range(count)]


def check_rem_s(fn: str, pairs: list[tuple[int, int]]):
    op = compile_op(IMP, 12, f"divide.{fn}({N}, {D}, {Q})", 4)
    check(op, [to_bytes(n, 4) + to_bytes(d, 4) + to_bytes(magnitude_quotient(n, d), 4) for n, d in pairs],
          [wasm("I32_REM_S")(n, d) for n, d in pairs], REF_EXAMPLES)
    return op


def test_rem_s():
    assert check_rem_s("rem_s_from_quotient", rem_s_pairs(300)).cost.depth == 3


@settings(max_examples=2, deadline=None)
@given(pairs=st.lists(st.tuples(word_strategy(4), nonzero), min_size=60, max_size=100))
def test_rem_s_random(pairs):
    check_rem_s("rem_s_from_quotient", pairs)


@pytest.mark.slow
def test_rem_s_wide():
    """The depth-2 variant: ~6100 steps, each its own residual dimension (d_model ~6200, several
    GB of dense weights), hence slow."""
    assert check_rem_s("rem_s_from_quotient_wide", rem_s_pairs(100)).cost.depth == 2


def _negate_program(fn: str = "negate_if_sign"):
    return compile_op(IMP, 6, f"divide.{fn}(x4, int(x5 == 1), (x0, x1, x2, x3))", 4)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(word_strategy(4), st.integers(0, 255), st.integers(0, 2)), min_size=1, max_size=60))
def test_negate_if_sign(cases):
    """-X mod 2^32 exactly when enabled and the sign byte says negative; X itself otherwise;
    one layer (it sits in front of the division chain the signed and unsigned ops share)."""
    op = _negate_program()
    examples = [to_bytes(x, 4) + (t, en) for x, t, en in cases]
    want = [to_bytes((-x) % 2 ** 32 if en == 1 and t >= 128 else x, 4) for x, t, en in cases]
    check(op, examples, want, REF_EXAMPLES)
    # one layer after its inputs (here en is itself a layer's test of x5)
    assert op.cost.depth == 2
    assert compile_op(IMP, 5, "divide.negate_if_sign(x4, 1, (x0, x1, x2, x3))", 4).cost.depth == 1
    # negated_when: the same, times en, still in one layer
    gated = _negate_program("negated_when")
    check(gated, examples, [w if en == 1 else (0, 0, 0, 0) for w, (_, _, en) in zip(want, cases)],
          REF_EXAMPLES)
    assert gated.cost.depth == 2
