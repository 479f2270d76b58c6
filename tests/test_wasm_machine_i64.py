"""i64 inside the compiled WASM machine: every i64 opcode (div/rem and their traps included), i64
locals, globals, select, branch values and returns, and the i64 loads and stores.  The hull
backend must generate the reference interpreter's trace token for token; the result is also
checked against Python's 64-bit semantics."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_wasm_machine_ops import check

M64 = 2**64 - 1
WORDS = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -2**63, 2**32, 2**32 - 1, 0xFF, 0x80,
                                   0x0123456789ABCDEF]),
                  st.integers(-2**63, 2**63 - 1))


def s64(x: int) -> int:
    x &= M64
    return x - 2**64 if x >> 63 else x


def clz(x: int) -> int:
    return 64 - (x & M64).bit_length()


def ctz(x: int) -> int:
    x &= M64
    return 64 if x == 0 else (x & -x).bit_length() - 1


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b,
    "shl": lambda a, b: a << (b & 63),
    "shr_u": lambda a, b: (a & M64) >> (b & 63), "shr_s": lambda a, b: s64(a) >> (b & 63),
    "rotl": lambda a, b: ((a & M64) << (b & 63)) | ((a & M64) >> ((64 - (b & 63)) & 63)),
    "rotr": lambda a, b: ((a & M64) >> (b & 63)) | ((a & M64) << ((64 - (b & 63)) & 63)),
}
def trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


DIVIDE = {
    "div_u": lambda a, b: (a & M64) // (b & M64), "rem_u": lambda a, b: (a & M64) % (b & M64),
    "div_s": lambda a, b: trunc_div(s64(a), s64(b)),
    "rem_s": lambda a, b: s64(a) - s64(b) * trunc_div(s64(a), s64(b)),
}
COMPARE = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "lt_u": lambda a, b: a < b, "gt_u": lambda a, b: a > b, "le_u": lambda a, b: a <= b,
    "ge_u": lambda a, b: a >= b,
    "lt_s": lambda a, b: s64(a) < s64(b), "gt_s": lambda a, b: s64(a) > s64(b),
    "le_s": lambda a, b: s64(a) <= s64(b), "ge_s": lambda a, b: s64(a) >= s64(b),
}
UNARY = {
    "clz": clz, "ctz": ctz, "popcnt": lambda a: bin(a & M64).count("1"),
    "extend8_s": lambda a: s64((a & 0xFF) - (0x100 if a & 0x80 else 0)),
    "extend16_s": lambda a: s64((a & 0xFFFF) - (0x10000 if a & 0x8000 else 0)),
    "extend32_s": lambda a: s64((a & 0xFFFFFFFF) - (2**32 if a & 0x80000000 else 0)),
}


@st.composite
def i64_programs(draw):
    """Terms folded into an i64 local (acc = acc * 3 xor term) and returned as i64; every term
    is one opcode on constants, comparisons enter as i64.extend_i32_u of their i32 bool."""
    acc, terms = 0, []
    for _ in range(draw(st.integers(2, 6))):
        kind = draw(st.sampled_from(["binary", "compare", "unary", "extend", "divide"]))
        a, b = draw(WORDS) & M64, draw(WORDS) & M64
        if kind == "binary":
            op = draw(st.sampled_from(sorted(BINARY)))
            if op in ("shl", "shr_u", "shr_s", "rotl", "rotr"):
                b = draw(st.one_of(st.integers(0, 70), st.just(b)))
            text, val = f"(i64.{op} (i64.const {s64(a)}) (i64.const {s64(b)}))", BINARY[op](a, b)
        elif kind == "divide":
            op = draw(st.sampled_from(sorted(DIVIDE)))
            b = draw(st.one_of(st.just(b), st.sampled_from([1, 2, 3, 10, M64, 2**32, 2**63]),
                               st.integers(1, 2**20))) or 1
            if op == "div_s" and a == 2**63 and b == M64:
                b = 3
            text, val = f"(i64.{op} (i64.const {s64(a)}) (i64.const {s64(b)}))", DIVIDE[op](a, b)
        elif kind == "compare":
            op = draw(st.sampled_from(sorted(COMPARE) + ["eqz"]))
            b = a if draw(st.booleans()) else b
            if op == "eqz":
                a = draw(st.sampled_from([0, a]))
                text, val = f"(i64.extend_i32_u (i64.eqz (i64.const {s64(a)})))", int(a == 0)
            else:
                text = f"(i64.extend_i32_u (i64.{op} (i64.const {s64(a)}) (i64.const {s64(b)})))"
                val = int(COMPARE[op](a, b))
        elif kind == "unary":
            op = draw(st.sampled_from(sorted(UNARY)))
            text, val = f"(i64.{op} (i64.const {s64(a)}))", UNARY[op](a)
        else:
            w = a & 0xFFFFFFFF
            signed = draw(st.booleans())
            text = (f"(i64.extend_i32_{'s' if signed else 'u'} (i32.wrap_i64 (i64.const {s64(a)})))")
            val = w - 2**32 if signed and w >> 31 else w
        terms.append(text)
        acc = ((acc * 3) ^ val) & M64
    body = "\n ".join(f"(local.set 0 (i64.xor (i64.mul (local.get 0) (i64.const 3)) {t}))"
                      for t in terms)
    src = f'(module (func (export "main") (result i64) (local i64) {body} (local.get 0)))'
    return src, acc


def check_i64_program(case) -> None:
    src, expect = case
    run = check(src)
    assert run.results == (expect,)


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(i64_programs())
def test_i64_ops_hull_equal_reference_trace(case):
    check_i64_program(case)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(i64_programs())
def test_i64_ops_hull_equal_reference_trace_long(case):
    check_i64_program(case)


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(WORDS, WORDS, st.integers(0, 65536 - 16), st.booleans())
def test_i64_values_move_through_globals_select_branches_calls_and_memory(x, y, addr, pick):
    """An i64 travels through a global, a call's param and return, select, a block's branch
    value, a store and every i64 load width; the function returns their xor-fold."""
    src = f"""(module (memory 1) (global $g (mut i64) (i64.const 0))
 (func $twice (param i64) (result i64) (i64.add (local.get 0) (local.get 0)))
 (func (export "main") (result i64) (local i64 i64)
   (global.set $g (i64.const {x}))
   (local.set 0 (call $twice (global.get $g)))
   (local.set 1 (select (local.get 0) (i64.const {y}) (i32.const {int(pick)})))
   (local.set 1 (block (result i64) (br 0 (local.get 1))))
   (i64.store (i32.const {addr}) (local.get 1))
   (i64.xor (i64.load (i32.const {addr}))
     (i64.xor (i64.load32_s offset=1 (i32.const {addr}))
       (i64.xor (i64.load32_u offset=2 (i32.const {addr}))
         (i64.xor (i64.load16_s offset=3 (i32.const {addr}))
           (i64.xor (i64.load16_u offset=4 (i32.const {addr}))
             (i64.xor (i64.load8_s offset=5 (i32.const {addr})) (i64.load8_u offset=6 (i32.const {addr}))))))))))"""
    v = ((2 * x) & M64) if pick else (y & M64)
    mem = v.to_bytes(8, "little") + bytes(8)

    def load(off, n, signed):
        return int.from_bytes(mem[off:off + n], "little", signed=signed) & M64

    expect = (load(0, 8, False) ^ load(1, 4, True) ^ load(2, 4, False) ^ load(3, 2, True)
              ^ load(4, 2, False) ^ load(5, 1, True) ^ load(6, 1, False))
    run = check(src)
    assert run.results == (expect,)


@pytest.mark.parametrize("op, a, b, trap", [
    ("div_u", 5, 0, "integer divide by zero"), ("rem_s", -5, 0, "integer divide by zero"),
    ("div_s", -2**63, -1, "integer overflow"), ("rem_s", -2**63, -1, None),
])
def test_i64_division_traps_and_the_overflow_corner(op, a, b, trap):
    """Division by zero traps (every op), INT64_MIN / -1 overflows div_s, and rem_s of it is 0."""
    src = f'(module (func (export "main") (result i64) (i64.{op} (i64.const {a}) (i64.const {b}))))'
    run = check(src)
    assert run.trap == trap
    assert run.results == (None if trap else (0,))
