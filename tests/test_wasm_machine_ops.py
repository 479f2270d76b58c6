"""Opcodes of the compiled WASM machine beyond phase 1 (select, getchar, ...): the hull backend
must generate the reference interpreter's trace token for token."""

from __future__ import annotations

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


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=6))
def test_getchar_reads_the_input_then_minus_one_and_select_picks_by_it(data):
    run = check(SELECT_GETCHAR, data)
    padded = list(data) + [0xFFFFFFFF] * 6
    assert run.output[:1] == bytes([padded[0] & 255])
    a, b = (7 if padded[2] else 9), (7 if padded[3] else 9)
    assert run.results == ((padded[4] + a + b) & 0xFFFFFFFF,)
