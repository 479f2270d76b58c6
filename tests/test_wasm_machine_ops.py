"""Opcodes of the compiled WASM machine beyond phase 1 (select, getchar, ...): the hull backend
must generate the reference interpreter's trace token for token."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_wasm_machine import hull_trace

from rasp2d.interpreter_spec.frontend import load_program
from rasp2d.interpreter_spec.layout import build_layout
from rasp2d.interpreter_spec.machine import check_supported
from rasp2d.interpreter_spec.trace import run_traced

IO = ('(import "env" "putchar" (func $p (param i32) (result i32)))'
      '(import "env" "getchar" (func $g (result i32)))')

SELECT_GETCHAR = f"""(module {IO}
 (func (export "main") (result i32) (local i32)
   call $g call $p drop
   call $g i32.const 1 i32.add call $p drop
   i32.const 7 i32.const 9 call $g select local.set 0
   i32.const 7 i32.const 9 call $g select local.get 0 i32.add local.set 0
   call $g local.get 0 i32.add))"""


def check(src: str, input_bytes: bytes = b""):
    layout = build_layout(load_program(src, "wat"))
    check_supported(layout)
    run = run_traced(layout, "main", input_bytes=input_bytes, max_steps=3000)
    assert hull_trace(run) == list(run.trace), (src, input_bytes)
    return run


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=6))
def test_getchar_reads_the_input_then_minus_one_and_select_picks_by_it(data):
    run = check(SELECT_GETCHAR, data)
    padded = list(data) + [0xFFFFFFFF] * 6
    assert run.output[:1] == bytes([padded[0] & 255])
    a, b = (7 if padded[2] else 9), (7 if padded[3] else 9)
    assert run.results == ((padded[4] + a + b) & 0xFFFFFFFF,)


SHIFTS = ["shl", "shr_u", "shr_s", "rotl", "rotr", "mul"]
WORDS = st.one_of(st.sampled_from([0, 1, -1, 0x80000000, 0x7FFFFFFF, 0x12345678, 255, 256]),
                  st.integers(-2**31, 2**31 - 1))


@st.composite
def shift_programs(draw):
    """Every shift and rotation by amounts covering each byte offset and bit offset (and
    amounts >= 32, which wrap), and products (whose carries cross every byte), folded into one
    result."""
    terms = []
    for _ in range(draw(st.integers(3, 8))):
        op = draw(st.sampled_from(SHIFTS))
        amount = draw(st.one_of(st.integers(0, 40), st.integers(-2**31, 2**31 - 1)))
        terms.append(f"(i32.{op} (i32.const {draw(WORDS)}) (i32.const {amount}))")
    body = "\n ".join(f"(local.set 0 (i32.xor (i32.add (local.get 0) (local.get 0)) {t}))"
                    for t in terms)
    return f'(module (func (export "main") (result i32) (local i32) {body} (local.get 0)))'


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(shift_programs())
def test_shifts_rotations_and_mul_hull_equal_reference_trace(src):
    check(src)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(shift_programs())
def test_shifts_rotations_and_mul_hull_equal_reference_trace_long(src):
    check(src)


def br_table_program(indices: list[int]) -> str:
    """A loop over the given indices: each `br_table` picks one of four blocks (index 3 and
    beyond, including negative i32s read unsigned, take the default), and the chosen block adds
    its own constant to an accumulator carried as a branch value."""
    cases = "".join(f"(local.set 1 (i32.add (i32.mul (local.get 1) (i32.const 5)) "
                    f"(call $pick (i32.const {i}))))" for i in indices)
    return f"""(module
 (func $pick (param i32) (result i32)
   (block $d (result i32) (block $c2 (block $c1 (block $c0
     (br_table $c0 $c1 $c2 $d (i32.const 40) (local.get 0)))
     (return (i32.const 10)))
     (return (i32.const 20)))
     (return (i32.const 30))))
 (func (export "main") (result i32) (local i32 i32) {cases} (local.get 1)))"""


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(st.integers(0, 4), st.integers(-2**31, 2**31 - 1)), min_size=1,
                max_size=6))
def test_br_table_jumps_to_the_indexed_entry_or_the_default(indices):
    run = check(br_table_program(indices))
    expect = 0
    for i in indices:
        expect = (expect * 5 + {0: 10, 1: 20, 2: 30}.get(i, 40)) & 0xFFFFFFFF
    assert run.results == (expect,)


I64 = st.one_of(st.sampled_from([0, -1, 2**63 - 1, -2**63, 0x0123456789ABCDEF]),
                st.integers(-2**63, 2**63 - 1))


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(I64, st.integers(0, 65536 - 8), I64)
def test_i64_const_stored_and_read_back_as_two_words(value, addr, other):
    """i64.store writes 8 bytes (the constant's two halves); i32 loads read them back; a
    store whose last byte is past the memory traps."""
    src = f"""(module (memory 1)
 (func (export "main") (result i32)
   (i64.store (i32.const {addr}) (i64.const {value}))
   (i64.store offset=8 (i32.const 0) (i64.const {other}))
   (i32.xor (i32.load (i32.const {addr})) (i32.load offset=4 (i32.const {addr})))))"""
    mem = bytearray(65536 + 8)
    mem[addr:addr + 8] = (value & 2**64 - 1).to_bytes(8, "little")
    mem[8:16] = (other & 2**64 - 1).to_bytes(8, "little")
    run = check(src)
    lo, hi = int.from_bytes(mem[addr:addr + 4], "little"), int.from_bytes(mem[addr + 4:addr + 8], "little")
    assert run.results == (lo ^ hi,)


@pytest.mark.parametrize("addr", [65528, 65529, 70000])
def test_i64_store_past_the_memory_traps(addr):
    src = f"""(module (memory 1) (func (export "main")
   (i64.store (i32.const {addr}) (i64.const -1))))"""
    run = check(src)
    assert (run.trap is None) == (addr == 65528)


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 256), st.booleans())
def test_memory_size_reads_the_page_count_and_unreachable_traps(pages, trap):
    src = f"""(module (memory {pages})
 (func (export "main") (result i32)
   (if (i32.const {int(trap)}) (then unreachable))
   (memory.size)))"""
    run = check(src)
    assert (run.trap is not None) == trap
    assert trap or run.results == (pages,)


def call_indirect_program(indices: list[int]) -> str:
    """A chain of call_indirect through a table of five slots: two signatures, a callee with
    extra locals (its Z run comes from the table entry), one slot of the wrong type and a null
    slot; an index past the table is undefined."""
    calls = "".join(f"(local.set 0 (call_indirect (type $un) (local.get 0) (i32.const {i})))"
                    for i in indices)
    return f"""(module
 (type $un (func (param i32) (result i32)))
 (type $k (func (result i32)))
 (table 5 funcref)
 (elem (i32.const 0) $double $inc $seven $double)
 (func $double (param i32) (result i32) (local i32 i64 i32)
   (local.set 1 (i32.add (local.get 0) (local.get 0))) (local.get 1))
 (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
 (func $seven (result i32) (i32.const 7))
 (func (export "main") (result i32) (local i32) (local.set 0 (i32.const 3)) {calls} (local.get 0)))"""


CALLEES = {0: lambda x: 2 * x, 1: lambda x: x + 1, 3: lambda x: 2 * x}
TABLE_TRAPS = {2: "TRAP_indirect_call_type_mismatch", 4: "TRAP_uninitialized_element"}


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(st.integers(0, 1), st.integers(0, 6), st.integers(-2**31, 2**31 - 1)),
                min_size=1, max_size=5))
def test_call_indirect_calls_the_table_entry_or_traps(indices):
    run = check(call_indirect_program(indices))
    x = 3
    for i in indices:
        if i not in CALLEES:
            assert run.trace[-1] == TABLE_TRAPS.get(i, "TRAP_undefined_element")
            return
        x = CALLEES[i](x) & 0xFFFFFFFF
    assert run.results == (x,)


def test_call_indirect_each_table_trap():
    for i, trap in [*TABLE_TRAPS.items(), (5, "TRAP_undefined_element"), (-1, "TRAP_undefined_element")]:
        assert check(call_indirect_program([0, i, 1])).trace[-1] == trap


@pytest.mark.slow
def test_call_stack_exhausted_when_the_frame_base_passes_the_format_limit():
    """A frame base above 0xFFFF cannot be written as FH FL: the call traps there (the plain
    interpreter's 10000-frame limit is not what the tokens carry)."""
    src = """(module
 (func $deep (param i32) (result i32) (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
   (if (result i32) (local.get 0)
     (then (call $deep (i32.sub (local.get 0) (i32.const 1)))) (else (i32.const 0))))
 (func (export "main") (result i32) (call $deep (i32.const 100000))))"""
    layout = build_layout(load_program(src, "wat"))
    check_supported(layout)
    run = run_traced(layout, "main", max_steps=200_000)
    assert run.trace[-1] == "TRAP_call_stack_exhausted"
    assert hull_trace(run) == list(run.trace)
