"""Globals and linear memory in the compiled WASM machine (wasm.rasp2d): the hull backend must
generate the reference interpreter's trace token for token.

Globals are slots written by the prompt's GLOB bytes; memory is the MEM stream written by data
segment bytes and store bodies (never-written bytes read 0).  Generated programs mix stores and
loads of every i32 width at addresses that overlap each other and the data segment, so a load
sees the latest writer of each of its bytes, and some accesses run off the end of memory.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_wasm_machine import hull_trace, traced

from rasp2d.interpreter_spec.frontend import load_program
from rasp2d.interpreter_spec.layout import build_layout
from rasp2d.interpreter_spec.machine import UnsupportedByMachine, check_supported

PUTCHAR = '(import "env" "putchar" (func $p (param i32) (result i32)))'


def check(src: str):
    run = traced(src)
    assert hull_trace(run) == list(run.trace), src
    return run


def test_globals_are_read_from_the_prompt_and_written_by_global_set():
    run = check(f"""(module {PUTCHAR}
     (global $g (mut i32) (i32.const 65)) (global $h (mut i32) (i32.const -100000))
     (global $k i32 (i32.const 0x12345678))
     (func (export "main") (result i32)
       global.get $g call $p drop
       global.get $g i32.const 1 i32.add global.set $g
       global.get $g call $p drop
       global.get $h global.get $k i32.add global.set $h
       global.get $h))""")
    assert run.output == b"AB" and run.results == ((0x12345678 - 100000) & 0xFFFFFFFF,)


def test_loads_see_data_segments_stores_and_zeros():
    run = check(f"""(module {PUTCHAR} (memory 1)
     (data (i32.const 100) "Hi\\ff\\80\\01\\02")
     (func (export "main") (result i32) (local i32)
       i32.const 100 i32.load8_u call $p drop
       i32.const 101 i32.load8_u call $p drop
       i32.const 8 i32.const 0x41424344 i32.store
       i32.const 8 i32.load call $p drop
       i32.const 96 i32.load offset=6 local.set 0
       i32.const 102 i32.load8_s local.get 0 i32.add local.set 0
       i32.const 102 i32.load16_s local.get 0 i32.xor local.set 0
       i32.const 200 i32.const -1 i32.store16
       i32.const 200 i32.const 0x1234 i32.store8 offset=1
       i32.const 199 i32.load local.get 0 i32.add
       i32.const 65532 i32.load i32.add))""")
    assert run.output == b"HiD" and run.results is not None


def test_an_access_past_the_end_of_memory_traps():
    run = check(f"""(module (memory 1) (func (export "main") (result i32)
       i32.const 65533 i32.load))""")
    assert run.trap == "out of bounds memory access"
    run = check(f"""(module (memory 1) (func (export "main")
       i32.const -1 i32.const 7 i32.store8 offset=1))""")
    assert run.trap == "out of bounds memory access"


def test_a_memory_larger_than_the_machine_addresses_is_refused():
    src = '(module (memory 1025) (func (export "main") (result i32) i32.const 0))'
    with pytest.raises(UnsupportedByMachine, match="1025 pages"):
        check_supported(build_layout(load_program(src, "wat")))


def test_memory_grow_moves_the_bounds_and_fails_past_the_maximum():
    run = check(f"""(module {PUTCHAR} (memory 1 3)
     (func (export "main") (result i32)
       (drop (call $p (i32.add (i32.const 48) (memory.grow (i32.const 1)))))
       (drop (call $p (i32.add (i32.const 48) (memory.size))))
       (i32.store (i32.const 131068) (i32.const 0x41424344))
       (drop (call $p (i32.load8_u (i32.const 131070))))
       (drop (call $p (i32.add (i32.const 48) (memory.grow (i32.const 2)))))
       (drop (call $p (i32.add (i32.const 48) (memory.grow (i32.const -1)))))
       (drop (call $p (i32.add (i32.const 48) (memory.grow (i32.const 0)))))
       (drop (call $p (i32.add (i32.const 48) (memory.grow (i32.const 1)))))
       (drop (call $p (i32.add (i32.const 48) (memory.size))))
       (i32.add (i32.load (i32.const 196604)) (i32.load (i32.const 196605)))))""")
    # 1 -> 2 pages, the new page is usable; +2 and +2^32-1 fail (-1 = "/"), +0 and +1 return the old size 2
    assert run.output == b"12B//223"
    assert run.trap == "out of bounds memory access"


def test_memory_grows_to_the_format_cap_of_1024_pages():
    """No declared maximum: DATA caps it at 1024 pages, so the last byte is at 2^26 - 1
    (addresses this wide need the compiler's centred look-up keys)."""
    run = check("""(module (memory 0)
     (func (export "main") (result i32)
       (drop (memory.grow (i32.const 1000)))
       (drop (memory.grow (i32.const 25)))
       (drop (memory.grow (i32.const 24)))
       (i64.store (i32.const 67108856) (i64.const 0x0102030405060708))
       (i32.store8 (i32.const 3) (i32.const 9))
       (i32.add (i32.add (i32.load (i32.const 67108860)) (i32.load8_u (i32.const 3)))
                (i32.mul (memory.size) (i32.const 65536)))))""")
    assert run.results == ((0x01020304 + 9 + (1024 << 16)) & 0xFFFFFFFF,)


LOADS = ["i32.load", "i32.load8_s", "i32.load8_u", "i32.load16_s", "i32.load16_u"]
STORES = ["i32.store", "i32.store8", "i32.store16"]
VALUES = st.one_of(st.sampled_from([0, -1, 127, 128, 255, 0x8000, 0x7FFF8081]),
                   st.integers(-2**31, 2**31 - 1))


@st.composite
def memory_programs(draw):
    """Stores and loads near a data segment and near the end of a 1-page memory; each load is
    folded into a global accumulator, so every loaded value shows in the result."""
    seg = draw(st.binary(min_size=1, max_size=6))
    seg_at = draw(st.integers(0, 12))
    data = "".join(f"\\{b:02x}" for b in seg)
    body = []
    for _ in range(draw(st.integers(2, 7))):
        near_end = draw(st.integers(0, 9)) == 0
        addr = draw(st.integers(65530, 65535)) if near_end else draw(st.integers(0, 16))
        offset = draw(st.integers(0, 3))
        if draw(st.booleans()):
            body.append(f"(i32.{draw(st.sampled_from(STORES)).split('.')[1]} offset={offset} "
                        f"(i32.const {addr}) (i32.const {draw(VALUES)}))")
        else:
            op = draw(st.sampled_from(LOADS))
            body.append(f"(global.set $acc (i32.xor (i32.add (global.get $acc) (global.get $acc)) "
                        f"({op} offset={offset} (i32.const {addr}))))")
    return (f'(module (memory 1) (data (i32.const {seg_at}) "{data}")\n'
            f' (global $acc (mut i32) (i32.const {draw(VALUES)}))\n'
            ' (func (export "main") (result i32)\n  ' + "\n  ".join(body) + "\n  global.get $acc))")


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(memory_programs())
def test_generated_memory_programs_hull_equals_reference_trace(src):
    check(src)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(memory_programs())
def test_generated_memory_programs_hull_equals_reference_trace_long(src):
    check(src)


@st.composite
def grow_programs(draw):
    """memory.grow by small and huge deltas (some past the maximum) between loads, stores and
    memory.size near the page boundaries they move; results fold into a global."""
    pages = draw(st.integers(0, 2))
    top = draw(st.one_of(st.none(), st.integers(pages, 5)))
    body = []
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            delta = draw(st.one_of(st.integers(0, 3), st.sampled_from([-1, 1 << 20, 2000])))
            body.append(f"(global.set $acc (i32.add (global.get $acc) (memory.grow (i32.const {delta}))))")
        elif kind == 1:
            body.append("(global.set $acc (i32.xor (global.get $acc) (memory.size)))")
        else:
            addr = draw(st.integers(0, 5)) * 65536 + draw(st.integers(-4, 3))
            if kind == 2:
                body.append(f"(i32.store16 (i32.const {addr}) (i32.const {draw(VALUES)}))")
            else:
                body.append("(global.set $acc (i32.add (i32.mul (global.get $acc) (i32.const 3)) "
                            f"(i32.load (i32.const {addr}))))")
    limits = f"{pages}" if top is None else f"{pages} {top}"
    return (f"(module (memory {limits}) (global $acc (mut i32) (i32.const 0))\n"
            ' (func (export "main") (result i32)\n  ' + "\n  ".join(body) + "\n  global.get $acc))")


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(grow_programs())
def test_generated_grow_programs_hull_equals_reference_trace(src):
    check(src)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(grow_programs())
def test_generated_grow_programs_hull_equals_reference_trace_long(src):
    check(src)
