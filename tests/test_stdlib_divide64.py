"""stdlib/divide64.rasp2d: the quotient of an i64 division as nibbles emitted most significant
first, each computed from the magnitudes and the nibbles already emitted.  The property:
iterating quotient_nibble (feeding each nibble back) reproduces |N| div |D| on the whole 64-bit
range, and the magnitude, remainder, negation and trap helpers then give WASM's i64
div_u / rem_u / div_s / rem_s exactly, in the compiled model (every example) and the reference
evaluator (the first few)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stdlib_harness import GRID64, OpSpec, check, check_together, compile_op, to_bytes, wasm, word_strategy
from rasp2d.interpreter_spec.numeric import signed

IMP = "import divide64"
N = "(x0, x1, x2, x3, x4, x5, x6, x7)"
D = "(x8, x9, x10, x11, x12, x13, x14, x15)"
Q = "(x16, x17, x18, x19, x20, x21, x22, x23)"
REF_EXAMPLES = 4  # the reference evaluator walks every node at every position


def nibble_program():
    return compile_op(IMP, 25, f"divide64.quotient_nibble(x24, {N}, {D}, {Q})", 1)


def iterate_quotients(pairs: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """|N| div |D| (magnitudes given) built nibble by nibble, each nibble from the ones above it,
    by the compiled model (all pairs) and the reference evaluator (the first few)."""
    op = nibble_program()
    out = []
    for source, use in (("compiled", pairs), ("reference", pairs[:REF_EXAMPLES])):
        qs = [0] * len(use)
        for v in range(15, -1, -1):
            examples = [to_bytes(n, 8) + to_bytes(d, 8) + to_bytes(q, 8) + (16 - v,) for (n, d), q in zip(use, qs)]
            got = op.compiled(examples) if source == "compiled" else op.reference(examples)
            qs = [q | (g << (4 * v)) for q, (g,) in zip(qs, got)]
        out.append(qs)
    return out[0], out[1]


def check_unsigned(pairs: list[tuple[int, int]]) -> None:
    pairs = [(n, d) for n, d in pairs if d]
    got, ref = iterate_quotients(pairs)
    assert got == [n // d for n, d in pairs]
    assert ref == [n // d for n, d in pairs[:REF_EXAMPLES]]


def test_quotient_edge_grid():
    check_unsigned([(n, d) for n in GRID64 for d in GRID64] + [(2 ** 64 - 1, 1), (2 ** 64 - 1, 3), (10 ** 19, 10)])


nonzero64 = word_strategy(8).filter(lambda d: d != 0)


@settings(max_examples=2, deadline=None)
@given(pairs=st.lists(st.tuples(word_strategy(8), st.one_of(nonzero64, st.integers(1, 300),
                                                              st.integers(0x100, 0xFFFFFFFF),
                                                              st.integers(2 ** 32, 2 ** 48))),
                      min_size=60, max_size=100))
def test_quotient_random(pairs):
    check_unsigned(pairs)


def magnitude(x: int, en: int) -> int:
    return abs(signed(x, 64)) % 2 ** 64 if en else x


# magnitudes (en = 1: signed operands) and a negation by a 0/1 flag, over (x, en)
SIGN_OPS = [
    OpSpec("magnitude", IMP, "divide64.magnitude({0}[7], {1}, {0})", (8, 1), 8,
           lambda x, en: to_bytes(magnitude(x, en & 1), 8), 1),
    OpSpec("negate_if", IMP, "divide64.negate_if({1}, {0})", (8, 1), 8,
           lambda x, c: to_bytes(-x % 2 ** 64 if c else x, 8), 1),
]


@settings(max_examples=3, deadline=None)
@given(ops=st.lists(st.tuples(word_strategy(8), st.integers(0, 1)), min_size=40, max_size=80))
def test_signs(ops):
    check_together(SIGN_OPS, ops + [(x, en) for x in GRID64 for en in (0, 1)])


def remainder_check(pairs: list[tuple[int, int, int]]) -> None:
    """remainder(|N|, |D|, |Q|) = |N| mod |D|, for every sign combination of div_s / rem_s
    as well as the unsigned ones (en picks signed magnitudes)."""
    rem = compile_op(IMP, 24, f"divide64.remainder({N}, {D}, {Q})", 8)
    examples, expected = [], []
    for n, d, en in pairs:
        an, ad = magnitude(n, en), magnitude(d, en)
        if not ad:
            continue
        examples.append(to_bytes(an, 8) + to_bytes(ad, 8) + to_bytes(an // ad, 8))
        expected.append(to_bytes(an % ad, 8))
    check(rem, examples, expected, REF_EXAMPLES)


@settings(max_examples=2, deadline=None)
@given(pairs=st.lists(st.tuples(word_strategy(8), st.one_of(nonzero64, st.integers(1, 300)), st.integers(0, 1)),
                      min_size=40, max_size=80))
def test_remainder(pairs):
    remainder_check(pairs + [(n, d, en) for n in GRID64 for d in GRID64[:6] for en in (0, 1)])


TRAPS = [
    OpSpec("divisor_is_zero", IMP, "int(divide64.divisor_is_zero({1}))", (8, 8), 1,
           lambda n, d: (int(d == 0),), 1),
    OpSpec("div_s_overflows", IMP, "int(divide64.div_s_overflows({0}, {1}))", (8, 8), 1,
           lambda n, d: (int(n == 2 ** 63 and d == 2 ** 64 - 1),), 1),
]


def test_traps():
    near = [2 ** 63, 2 ** 63 + 1, 2 ** 63 - 1, 2 ** 64 - 1, 2 ** 64 - 2, 0, 1, 0x80FF000000000000,
            0x7F00000000000000 + 0xFF, 0x8100000000000000]
    check_together(TRAPS, [(n, d) for n in near + list(GRID64) for d in near + list(GRID64)])


def test_signed_results_compose():
    """The rule the machine composes the signed results by (div_s negates |Q| when the signs
    differ, rem_s negates |N| mod |D| when N < 0) is WASM's semantics on the edge grid."""
    cases = [(n, d) for n in GRID64 for d in GRID64 if d and not (n == 2 ** 63 and d == 2 ** 64 - 1)]
    for n, d in cases:
        an, ad = magnitude(n, 1), magnitude(d, 1)
        q, r = an // ad, an % ad
        assert to_bytes(-q % 2 ** 64 if (n ^ d) >> 63 else q, 8) == wasm("I64_DIV_S", 8)(n, d)
        assert to_bytes(-r % 2 ** 64 if n >> 63 else r, 8) == wasm("I64_REM_S", 8)(n, d)


def test_depths():
    """A nibble is 4 FFN layers from its inputs (products, the divisor's one-hot, the clamp, the
    steps); the remainder 8 (negation, the products fused with its byte clamp, three carry layers
    twice over)."""
    assert nibble_program().cost.depth == 4
    assert compile_op(IMP, 24, f"divide64.remainder({N}, {D}, {Q})", 8).cost.depth == 8
