"""Cheap ALU opcodes of the compiled WASM machine (clz, ctz, popcnt, extend8_s, extend16_s, and
division): the hull backend must generate the reference interpreter's trace token for token."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_wasm_machine_ops import WORDS, check

UNARY = ["clz", "ctz", "popcnt", "extend8_s", "extend16_s"]
# words whose bit counts and sign bits sit at every byte boundary
UNARY_WORDS = st.one_of(WORDS, st.sampled_from([0x80, 0x8000, 0x800000, 0x7F, 0x7FFF, 0x100,
                                                0x10000, 0x1000000, 0xFF00, 0x00FF0000]),
                        st.integers(0, 31).map(lambda s: 1 << s))


@st.composite
def unary_programs(draw):
    """Each unary op on words covering every leading/trailing-zero count and sign byte; the
    results are folded into one value so every step's result is checked by the final word."""
    terms = [f"(i32.{draw(st.sampled_from(UNARY))} (i32.const {draw(UNARY_WORDS)}))"
             for _ in range(draw(st.integers(3, 8)))]
    body = "\n ".join(f"(local.set 0 (i32.xor (i32.add (local.get 0) (local.get 0)) {t}))"
                      for t in terms)
    return f'(module (func (export "main") (result i32) (local i32) {body} (local.get 0)))'


def _sext(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return (v - (1 << bits) if v >> (bits - 1) else v) & 0xFFFFFFFF


_UNARY_SEMANTICS = {
    "clz": lambda w: 32 - w.bit_length(),
    "ctz": lambda w: (w & -w).bit_length() - 1 if w else 32,
    "popcnt": lambda w: bin(w).count("1"),
    "extend8_s": lambda w: _sext(w, 8),
    "extend16_s": lambda w: _sext(w, 16),
}


def test_unary_ops_on_edge_words_hull_equal_reference_trace():
    words = [0, 1, 0x80000000, 0xFFFFFFFF, 0x80, 0x8000, 0x7F, 0x7FFF, 0x10000, 0x00F0F000]
    body = "\n ".join(f"(local.set 0 (i32.xor (i32.add (local.get 0) (local.get 0)) "
                      f"(i32.{op} (i32.const {w}))))"
                      for op in UNARY for w in words)
    run = check(f'(module (func (export "main") (result i32) (local i32) {body} (local.get 0)))')
    acc = 0
    for op in UNARY:
        for w in words:
            acc = ((2 * acc) ^ _UNARY_SEMANTICS[op](w)) & 0xFFFFFFFF
    assert run.results == (acc,)


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(unary_programs())
def test_unary_ops_hull_equal_reference_trace(src):
    check(src)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(unary_programs())
def test_unary_ops_hull_equal_reference_trace_long(src):
    check(src)


DIVISORS = st.one_of(st.sampled_from([1, 2, 3, 7, 10, 255, 256, 257, 65535, 65536, 0x01000000,
                                      0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]),
                     st.integers(1, 2**32 - 1), st.integers(1, 300))


DIVISIONS = ["div_u", "rem_u", "div_s", "rem_s"]


@st.composite
def division_programs(draw):
    """Quotients and remainders, unsigned and signed (the divisors read as signed too: 2^32 - 1
    is -1), with divisors of every byte length (each quotient byte counted against the
    remainder the bytes above it leave), folded into one result."""
    terms = []
    for _ in range(draw(st.integers(2, 5))):
        op, n, d = draw(st.sampled_from(DIVISIONS)), draw(WORDS), draw(DIVISORS)
        if op == "div_s" and n == 0x80000000 and d == 0xFFFFFFFF:
            d = 1  # the overflow trap has its own test
        terms.append(f"(i32.{op} (i32.const {n}) (i32.const {d}))")
    body = "\n ".join(f"(local.set 0 (i32.xor (i32.add (local.get 0) (local.get 0)) {t}))"
                      for t in terms)
    return f'(module (func (export "main") (result i32) (local i32) {body} (local.get 0)))'


def i32_divisions(n: int, d: int) -> tuple[int, int, int, int]:
    """div_u, rem_u, div_s, rem_s by WASM's rules (signed: truncate towards zero, the remainder
    takes the dividend's sign), written here independently of the reference interpreter."""
    sn, sd = n - (n >> 31 << 32), d - (d >> 31 << 32)
    q = abs(sn) // abs(sd) * (1 if (sn < 0) == (sd < 0) else -1)
    return n // d, n % d, q & 0xFFFFFFFF, (sn - q * sd) & 0xFFFFFFFF


def test_divisions_edges_and_traps():
    pairs = [(0xFFFFFFFF, 1), (0xFFFFFFFF, 0xFFFFFFFF), (0x80000000, 3), (12345678, 256),
             (0xFEDCBA98, 0x10001), (7, 0x80000000), (1000000007, 97), (0, 5),
             (0xFFFFFFF6, 2), (0xFFFFFFF6, 3), (10, 0xFFFFFFFD), (0xFFFFFFF6, 0xFFFFFFFD),
             (0x80000000, 0xFFFFFFFE), (0x80000000, 0x80000000), (0x7FFFFFFF, 0x80000000),
             (0x80000000, 1), (0x80000001, 0xFFFFFF00)]
    body = "\n ".join(f"(local.set 0 (i32.xor (i32.add (local.get 0) (local.get 0)) "
                      f"(i32.{op} (i32.const {n}) (i32.const {d}))))"
                      for n, d in pairs for op in DIVISIONS)
    run = check(f'(module (func (export "main") (result i32) (local i32) {body} (local.get 0)))')
    acc = 0
    for n, d in pairs:
        for r in i32_divisions(n, d):
            acc = ((2 * acc) & 0xFFFFFFFF) ^ r
    assert run.results == (acc,)
    # INT_MIN rem_s -1 is 0; INT_MIN div_s -1 traps
    assert check('(module (func (export "main") (result i32) '
                 '(i32.rem_s (i32.const 0x80000000) (i32.const -1))))').results == (0,)
    overflow = check('(module (func (export "main") (result i32) '
                     '(i32.div_s (i32.const 0x80000000) (i32.const -1))))')
    assert overflow.trace[-1] == "TRAP_integer_overflow"
    for op in DIVISIONS:
        trapped = check(f'(module (func (export "main") (result i32) (local i32) '
                        f'(local.set 0 (i32.const 5)) (i32.{op} (i32.const 9) (local.get 1))))'
                        .replace("(local i32)", "(local i32 i32)"))
        assert trapped.trace[-1] == "TRAP_integer_divide_by_zero"


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(division_programs())
def test_divisions_hull_equal_reference_trace(src):
    check(src)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(division_programs())
def test_divisions_hull_equal_reference_trace_long(src):
    check(src)
