"""The WASM machine compiled to a transformer (interpreter_spec/wasm.rasp2d) against the
reference interpreter's trace, token for token.

The hull backend generates the whole trace from the prompt; it must equal the trace the
plain-Python reference emits (and so output, result and traps).  The reference evaluator of the
machine's dataflow graph is checked teacher-forced on a small program, and the torch backend
on a short one.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasp2d.backends.generate import generate
from rasp2d.interpreter_spec.frontend import default_entry, load_program
from rasp2d.interpreter_spec.layout import build_layout
from rasp2d.interpreter_spec.machine import (MAX_GLOBALS, SUPPORTED_OPS, UnsupportedByMachine,
                                             check_supported, compiled, make_decoder, model_path,
                                             run_in_model, teacher_forced_mismatches)
from rasp2d.interpreter_spec.model_trace import generate_trace, sparse_machine
from rasp2d.interpreter_spec.program import Op
from rasp2d.interpreter_spec.trace import run_traced
from rasp2d.interpreter_spec.vocab import TOKEN_ID, VOCAB

CALLS = """(module (import "env" "putchar" (func $p (param i32) (result i32)))
 (func $add (param i32 i32) (result i32) (local i32) local.get 0 local.get 1 i32.add local.tee 2)
 (func (export "main") (result i32) (local i32)
   i32.const 65 local.set 0
   (block (loop
     local.get 0 call $p drop
     local.get 0 i32.const 1 call $add local.tee 0
     i32.const 70 i32.lt_s br_if 0))
   i32.const 10 call $p drop
   i32.const 7))"""

def hull_trace(run) -> list[str]:
    """Generate the trace from the run's prompt with the compiled machine (hull cache), in the
    runtime's numba loop; the machine's sparse form is built once per session (building it per
    call cost seconds per hypothesis example)."""
    got = generate_trace(sparse_machine(model_path()), list(run.prompt), len(run.trace) + 2)
    return list(got.trace)


def traced(source: str, kind: str = "wat"):
    layout = build_layout(load_program(source, kind))
    check_supported(layout)
    return run_traced(layout, "main", max_steps=3000)


def test_reference_evaluator_of_the_machine_predicts_the_trace():
    run = traced(CALLS)
    assert run.output == b"ABCDE\n" and run.results == (7,)
    assert teacher_forced_mismatches(run) == []


def test_teacher_forced_check_catches_a_wrong_token():
    import dataclasses
    run = traced(CALLS)
    i = len(run.trace) // 2
    wrong = "B07" if run.trace[i] != "B07" else "B08"
    bad = dataclasses.replace(run, trace=run.trace[:i] + (wrong,) + run.trace[i + 1:])
    assert teacher_forced_mismatches(bad, limit=1)


def test_hull_generates_the_reference_trace_for_calls_and_loops():
    run = traced(CALLS)
    assert hull_trace(run) == list(run.trace)


@pytest.mark.parametrize("body", ["(result i32) i32.const 40 i32.const 2 i32.add",
                                  "(result i64) (i64.rem_s (i64.const -1000000000007) (i64.const 97))"])
def test_torch_backend_agrees_on_a_short_program(body):
    run = traced(f'(module (func (export "main") {body}))')
    m = compiled().model
    prompt = [TOKEN_ID[t] for t in run.prompt]
    for backend in ("torch", "hull"):
        got = generate(make_decoder(backend, m), prompt, len(run.trace) + 2, TOKEN_ID["HALT"])
        assert [VOCAB[t] for t in got.output] == list(run.trace), backend


def test_fizzbuzz_c_runs_inside_the_model():
    from pathlib import Path
    src = Path(__file__).resolve().parent.parent / "examples" / "wasm" / "fizzbuzz.c"
    module = load_program(src)
    entry = default_entry(module)
    r = run_in_model(module, entry)
    assert r.output == b"..F.BF..FB.F..Z" * 3 + b"\n"
    assert r.results == (3,)
    assert r.tokens == run_traced(build_layout(module), entry).tokens


def test_run_in_model_stops_at_a_trap_mid_chunk_and_reports_progress():
    """The hull loop runs in chunks and only stops by itself at HALT: a trap ends the run at
    its token (what the chunk generated after it is dropped), with every count right."""
    module = load_program("""(module
        (import "env" "putchar" (func $p (param i32) (result i32)))
        (func (export "main") (result i32) (local i32)
          (block (loop
            (drop (call $p (i32.add (i32.const 65) (i32.rem_u (local.get 0) (i32.const 26)))))
            (local.set 0 (i32.add (local.get 0) (i32.const 1)))
            (br_if 0 (i32.lt_u (local.get 0) (i32.const 700)))))
          (i32.div_u (i32.const 1) (i32.const 0))))""", "wat")
    ref = run_traced(build_layout(module), "main")
    seen = []
    r = run_in_model(module, "main", progress=lambda *a: seen.append(a))
    assert r.trap is not None and "divide by zero" in str(r.trap) and ref.trap is not None
    assert r.tokens == ref.tokens and r.tokens[-1].startswith("TRAP_")
    assert r.output == ref.output and len(r.output) == 700
    assert r.instructions == ref.instructions
    assert len(seen) >= 2 and [s[0] for s in seen] == sorted(s[0] for s in seen)
    assert seen[-1][:2] == (len(r.tokens), r.instructions)


def test_every_integer_opcode_is_supported_and_machine_limits_are_refused_by_name():
    """The machine runs every opcode of the flat program but the host call (which the token
    format refuses before the machine sees it); what it still refuses is named, e.g. more
    globals than its GLOB decoding reads."""
    assert {op for op in Op if op not in SUPPORTED_OPS} == {Op.CALL_HOST}
    globals_ = " ".join(f"(global (mut i32) (i32.const {g}))" for g in range(MAX_GLOBALS + 1))
    with pytest.raises(UnsupportedByMachine, match=f"{MAX_GLOBALS + 1} globals"):
        traced(f'(module {globals_} (func (export "main") (result i32) i32.const 1))')


# ------------------------------------------------------------------ generated programs
BIN = ["add", "sub", "and", "or", "xor", "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u",
       "ge_s", "ge_u"]
CONSTS = st.one_of(st.sampled_from([0, 1, -1, 2, 255, 256, 65535, 65536, 0x7FFFFFFF, -0x80000000]),
                   st.integers(-2**31, 2**31 - 1))


@st.composite
def expr(draw, depth=0):
    """An i32 expression over locals 0..2 and calls of $f (which adds and xors)."""
    choice = draw(st.integers(0, 5 if depth < 3 else 1))
    if choice == 0:
        return f"(i32.const {draw(CONSTS)})"
    if choice == 1:
        return f"(local.get {draw(st.integers(0, 2))})"
    if choice in (2, 3):
        return f"(i32.{draw(st.sampled_from(BIN))} {draw(expr(depth + 1))} {draw(expr(depth + 1))})"
    if choice == 4:
        return (f"(if (result i32) {draw(expr(depth + 1))} (then {draw(expr(depth + 1))}) "
                f"(else {draw(expr(depth + 1))}))")
    return f"(call $f {draw(expr(depth + 1))} {draw(expr(depth + 1))})"


@st.composite
def programs(draw):
    body = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            body.append(f"(local.set {draw(st.integers(0, 2))} {draw(expr())})")
        elif kind == 1:
            body.append(f"(drop (call $p (i32.and (i32.const 127) {draw(expr())})))")
        elif kind == 2:  # a counted loop
            n = draw(st.integers(1, 4))
            body.append(f"(local.set 3 (i32.const {n})) (block (loop "
                        f"(local.set 0 (i32.add (local.get 0) {draw(expr())})) "
                        f"(br_if 0 (local.tee 3 (i32.sub (local.get 3) (i32.const 1))))))")
        else:
            body.append(f"(block (br_if 0 {draw(expr())}) (local.set 1 {draw(expr())}))")
    return ('(module (import "env" "putchar" (func $p (param i32) (result i32)))\n'
            ' (func $f (param i32 i32) (result i32) (i32.xor (i32.add (local.get 0) (local.get 1)) '
            '(local.get 1)))\n'
            ' (func (export "main") (result i32) (local i32 i32 i32 i32)\n  '
            + "\n  ".join(body) + f"\n  {draw(expr())}))")


def check_generated(src: str) -> None:
    run = traced(src)
    assert hull_trace(run) == list(run.trace), src


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs())
def test_generated_programs_hull_equals_reference_trace(src):
    check_generated(src)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs())
def test_generated_programs_hull_equals_reference_trace_long(src):
    check_generated(src)
