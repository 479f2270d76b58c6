"""Reference interpreter vs wasmtime on random integer programs (see wasm_programs.py).

Each case compares results or trap, output bytes, final memory and exported globals; the traced
stepper must agree with the fast loop on all of that and on the instruction count.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from rasp2d.interpreter_spec.frontend import wat_to_wasm
from rasp2d.interpreter_spec.oracle import run_reference, run_wasmtime
from wasm_programs import main_args, wat_modules

MAX_STEPS = 2_000_000  # generated programs are bounded far below this
FAST = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=4000, deadline=None, suppress_health_check=list(HealthCheck))


def check_against_wasmtime(wat: str, args: tuple[int, int]) -> None:
    wasm = wat_to_wasm(wat)
    ours = run_reference(wasm, "main", args, max_steps=MAX_STEPS)
    theirs = run_wasmtime(wasm, "main", args)
    assert ours.trap == theirs.trap, wat
    assert ours.results == theirs.results, wat
    assert ours.output == theirs.output, wat
    assert ours.globals == theirs.globals, wat
    assert ours.memory == theirs.memory, wat


@FAST
@given(wat_modules(), main_args)
def test_random_programs_match_wasmtime(wat, args):
    check_against_wasmtime(wat, args)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(wat_modules(allow_traps=False), main_args)
def test_random_trap_free_programs_match_wasmtime(wat, args):
    check_against_wasmtime(wat, args)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(wat_modules(), main_args)
def test_traced_stepper_matches_fast_loop(wat, args):
    wasm = wat_to_wasm(wat)
    fast = run_reference(wasm, "main", args, max_steps=MAX_STEPS)
    traced = run_reference(wasm, "main", args, traced=True, max_steps=MAX_STEPS)
    assert traced == fast


@pytest.mark.slow
@SLOW
@given(wat_modules(max_depth=4), main_args)
def test_many_random_programs_match_wasmtime(wat, args):
    check_against_wasmtime(wat, args)
