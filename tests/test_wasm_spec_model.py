"""The spec suite through the compiled WASM machine (interpreter_spec/spec_model.py).

A hand-made suite folder pins the harness itself (a wrong expectation fails, state carries from
one command to the next, a function the machine cannot run is skipped by name while its
module's other functions run); a few files of the real suite run by default, all of it under
`slow`. The real suite is read from ../shared/wasm-spec and the tests skip when it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp2d.interpreter_spec.frontend import load_program, wat_to_wasm
from rasp2d.interpreter_spec.invocation import DRIVER_EXPORT, UNREACHED, invocation
from rasp2d.interpreter_spec.layout import build_layout
from rasp2d.interpreter_spec import machine
from rasp2d.interpreter_spec.machine import SUPPORTED_OPS
from rasp2d.interpreter_spec.program import Op
from rasp2d.interpreter_spec.program import flatten
from rasp2d.interpreter_spec.prompt import build_prompt
from rasp2d.interpreter_spec.reference import Machine
from rasp2d.interpreter_spec.spec_model import run_spec_file_in_model
from rasp2d.interpreter_spec.spec_suite import DEFAULT_SPEC_DIR, spec_folders
from rasp2d.interpreter_spec.trace import run_traced

WITHHELD = "i32.rem_s"


@pytest.fixture
def missing_op(monkeypatch) -> str:
    """An (i32, i32) -> i32 opcode the machine is made to refuse: it now runs every integer
    opcode, and the harness's skip-by-name path must still be exercised."""
    monkeypatch.setattr(machine, "SUPPORTED_OPS", SUPPORTED_OPS - {Op[WITHHELD.upper().replace(".", "_")]})
    return WITHHELD


def module_source(op: str = "i32.mul") -> str:
    body = f"local.get 0 local.get 1 {op}"
    return f"""(module
  (global $g (mut i32) (i32.const 5))
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "set") (param i32) local.get 0 global.set $g)
  (func (export "get") (result i32) global.get $g)
  (func (export "other") (param i32 i32) (result i32) {body})
  (func (export "lt") (param i32 i32) (result i32) local.get 0 local.get 1 call $lt_s)
  (func $lt_s (param i32 i32) (result i32) local.get 0 local.get 1 i32.lt_s)
  (func (export "float") (result f32) f32.const 1))"""


MODULE = module_source()


def i32(v: int) -> dict:
    return {"type": "i32", "value": str(v & 0xFFFFFFFF)}


def invoke(field: str, *args: int) -> dict:
    return {"type": "invoke", "field": field, "args": [i32(a) for a in args]}


def make_suite(tmp_path: Path, commands: list[dict], source: str = MODULE) -> Path:
    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "mini.0.wasm").write_bytes(wat_to_wasm(source))
    cmds = [{"type": "module", "line": 1, "filename": "mini.0.wasm"}]
    cmds += [dict(c, line=10 + i) for i, c in enumerate(commands)]
    (folder / "mini.json").write_text(json.dumps({"source_filename": "mini.wast", "commands": cmds}))
    return folder


def test_harness_passes_fails_and_skips_by_the_model_result(tmp_path, missing_op):
    op = missing_op
    folder = make_suite(tmp_path, [
        {"type": "assert_return", "action": invoke("add", 40, 2), "expected": [i32(42)]},
        {"type": "assert_return", "action": invoke("add", -1, 1), "expected": [i32(0)]},
        {"type": "assert_return", "action": invoke("add", 1, 1), "expected": [i32(3)]},  # wrong
        {"type": "assert_return", "action": invoke("lt", -5, 3), "expected": [i32(1)]},
        {"type": "assert_return", "action": invoke("get"), "expected": [i32(5)]},
        {"type": "action", "action": invoke("set", 77)},  # state for the next command
        {"type": "assert_return", "action": invoke("get"), "expected": [i32(77)]},
        {"type": "assert_return", "action": invoke("other", 6, 7), "expected": [i32(0)]},
        {"type": "assert_return", "action": {"type": "invoke", "field": "add",
                                             "args": [{"type": "f32", "value": "0"}]},
         "expected": []},
        {"type": "assert_return", "action": invoke("float"), "expected": [{"type": "f32", "value": "0"}]},
    ], module_source(op))
    r = run_spec_file_in_model(folder)
    assert (r.passed, r.failed, r.skipped) == (5, 1, 3), (r.failures, r.skip_reasons)
    assert "expected results [3], the model gave results [2]" in r.failures[0]
    assert [n for reason, n in r.skip_reasons.items() if f"machine: {op} is not" in reason] == [1]
    assert r.skip_reasons["float or reference values"] == 2
    assert r.tokens > 0 and r.seconds > 0


def test_limit_stops_after_that_many_model_runs(tmp_path):
    folder = make_suite(tmp_path, [
        {"type": "assert_return", "action": invoke("add", i, i), "expected": [i32(2 * i)]}
        for i in range(5)])
    r = run_spec_file_in_model(folder, limit=2)
    assert (r.passed, r.failed) == (2, 0)


def test_invocation_driver_prunes_unreachable_functions_and_keeps_indices():
    module = load_program(MODULE, "wat", lenient=True)
    inv = invocation(module, "lt", [3, 4])
    prog = flatten(inv.module)
    by_name = {f.name: f for f in prog.functions}
    assert by_name["other"].unsupported == UNREACHED and by_name["add"].unsupported == UNREACHED
    assert by_name["float"].unsupported not in (None, UNREACHED)  # the lenient decoder's stub
    assert by_name["lt"].entry_pc >= 0 and prog.functions[inv.func].name == "lt"
    assert [f.index for f in prog.functions[:len(module.functions)]] == list(range(len(module.functions)))
    run = run_traced(build_layout(inv.module), DRIVER_EXPORT)
    assert run.results == (1,)
    assert run_traced(build_layout(invocation(module, "lt", [4, 3]).module), DRIVER_EXPORT).results == (0,)


MIXED = """(module
  (func (export "f") (param i32 i64 i32) (result i64)
    local.get 1 local.get 0 i64.extend_i32_s i64.sub local.get 2 i64.extend_i32_u i64.xor))"""


@settings(max_examples=30, deadline=None)
@given(st.integers(-2**31, 2**32 - 1), st.integers(-2**63, 2**64 - 1), st.integers(0, 2**32 - 1))
def test_driver_passes_arguments_like_a_direct_invocation(a, b, c):
    """The driver's constants reach the callee as the same bit patterns (i32 and i64)."""
    module = load_program(MIXED, "wat")
    direct = Machine(flatten(module)).invoke("f", [a & 0xFFFFFFFF, b & 2**64 - 1, c])
    inv = invocation(module, "f", [a, b, c])
    assert run_traced(build_layout(inv.module), DRIVER_EXPORT).results == direct


def test_prompt_lays_out_a_used_machines_state():
    """Globals and memory an earlier invocation changed appear in the prompt."""
    src = """(module (memory 1) (data (i32.const 8) "\\01\\02")
      (global $g (mut i32) (i32.const 1))
      (func (export "poke") (i32.store (i32.const 300) (i32.const 0x0a0b0c0d)) (global.set $g (i32.const 9)))
      (func (export "main") (result i32) global.get $g))"""
    module = load_program(src, "wat")
    layout = build_layout(module)
    machine = Machine(layout.program)
    fresh = build_prompt(layout, "main", instance=machine)
    assert fresh == build_prompt(layout, "main")  # an unused machine gives the ordinary prompt
    machine.invoke("poke")
    used = build_prompt(layout, "main", instance=machine)
    glob = used.index("GLOB")
    assert used[glob + 1] == "B09"
    mem = bytearray(65536)
    i = used.index("DATA") + 5
    while used[i] == "SEG":
        base = int.from_bytes(bytes(int(t[1:], 16) for t in used[i + 1:i + 5]), "little")
        j = i + 5
        while used[j].startswith("B"):
            mem[base + j - i - 5] = int(used[j][1:], 16)
            j += 1
        i = j
    assert mem == machine.memory


# ------------------------------------------------------------------ the real suite
needs_suite = pytest.mark.skipif(not spec_folders(DEFAULT_SPEC_DIR),
                                 reason=f"spec test suite not found at {DEFAULT_SPEC_DIR}")
FAST_FILES = ("br_if", "local_tee", "i32", "memory_trap")


@needs_suite
@pytest.mark.parametrize("name", FAST_FILES)
def test_spec_file_subset_through_the_model(name):
    r = run_spec_file_in_model(DEFAULT_SPEC_DIR / name, limit=12)
    assert r.failed == 0, r.failures
    assert r.passed == 12  # these files have at least 12 commands the machine already runs


@needs_suite
@pytest.mark.slow
@pytest.mark.parametrize("folder", spec_folders(DEFAULT_SPEC_DIR), ids=lambda p: p.name)
def test_spec_file_through_the_model(folder):
    r = run_spec_file_in_model(folder)
    assert r.failed == 0, r.failures[:20]
