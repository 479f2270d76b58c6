"""Reference interpreter semantics: every integer operator against wasmtime on random operands,
each spec trap by name, memory growth, instantiation, host functions and the step limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp2d.interpreter_spec.decoder import decode_module
from rasp2d.interpreter_spec.frontend import wat_to_wasm
from rasp2d.interpreter_spec.numeric import BINARY, UNARY
from rasp2d.interpreter_spec.oracle import run_wasmtime
from rasp2d.interpreter_spec.program import flatten
from rasp2d.interpreter_spec.reference import Machine
from rasp2d.interpreter_spec.traps import StepLimitExceeded, Trap, UnsupportedAtRuntime

M32, M64 = (1 << 32) - 1, (1 << 64) - 1


def machine(wat: str, **kw) -> Machine:
    return Machine(flatten(decode_module(wat_to_wasm(wat))), **kw)


# -- every numeric operator vs wasmtime ---------------------------------------------------------
def _operator_module() -> tuple[str, list[tuple[str, str, int]]]:
    """One exported function per operator: name, operand type, arity."""
    funcs, ops = [], []
    for op in list(BINARY) + list(UNARY):
        name = op.text
        arity = 2 if op in BINARY else 1
        src = "i64" if name.startswith("i64") or name == "i32.wrap_i64" else "i32"
        if name.startswith("i64.extend_i32"):
            src = "i32"
        result = "i32" if name.split(".")[1].split("_")[0] in (
            "eqz", "eq", "ne", "lt", "gt", "le", "ge", "wrap") else name[:3]
        params = " ".join(f"(param {src})" for _ in range(arity))
        body = " ".join(f"(local.get {k})" for k in range(arity))
        funcs.append(f'(func (export "{name}") {params} (result {result}) ({name} {body}))')
        ops.append((name, src, arity))
    return "(module " + "\n".join(funcs) + ")", ops


OPERATOR_WAT, OPERATORS = _operator_module()
OPERATOR_WASM = wat_to_wasm(OPERATOR_WAT)
OPERATOR_MACHINE = Machine(flatten(decode_module(OPERATOR_WASM)))


def _operands(bits: int):
    edges = [0, 1, 2, 31, 32, 63, 64, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1,
             (1 << bits) - 2]
    return st.sampled_from(edges) | st.integers(0, (1 << bits) - 1)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(OPERATORS), st.data())
def test_each_operator_matches_wasmtime(operator, data):
    name, src, arity = operator
    args = [data.draw(_operands(64 if src == "i64" else 32)) for _ in range(arity)]
    theirs = run_wasmtime(OPERATOR_WASM, name, args)
    try:
        ours, trap = OPERATOR_MACHINE.invoke(name, args), None
    except Trap as exc:
        ours, trap = None, exc.message
    assert (ours, trap) == (theirs.results, theirs.trap), (name, args)


@pytest.mark.parametrize("name, args, expected", [
    ("i32.div_s", [M32, 2], 0), ("i32.rem_s", [(-7) & M32, 2], (-1) & M32),
    ("i32.rem_s", [1 << 31, M32], 0), ("i32.shr_s", [1 << 31, 33], 0xC0000000),
    ("i32.rotl", [0x80000001, 1], 3), ("i32.clz", [0], 32), ("i32.ctz", [0], 32),
    ("i64.popcnt", [M64], 64), ("i64.extend_i32_s", [M32], M64), ("i32.wrap_i64", [M64], M32),
    ("i32.extend8_s", [0x80], 0xFFFFFF80), ("i64.extend32_s", [0x80000000], 0xFFFFFFFF80000000),
    ("i32.lt_s", [M32, 0], 1), ("i32.lt_u", [M32, 0], 0),
])
def test_operator_edge_cases(name, args, expected):
    assert OPERATOR_MACHINE.invoke(name, args) == (expected,)


# -- traps ---------------------------------------------------------------------------------------
TRAPS = r"""(module
  (memory 1 2)
  (type $v (func))
  (type $i (func (result i32)))
  (table 3 funcref)
  (elem (i32.const 0) $nop $one)
  (func $nop)
  (func $one (result i32) (i32.const 1))
  (func (export "div0") (result i32) (i32.div_s (i32.const 1) (i32.const 0)))
  (func (export "rem0") (result i64) (i64.rem_u (i64.const 1) (i64.const 0)))
  (func (export "overflow") (result i32) (i32.div_s (i32.const 0x80000000) (i32.const -1)))
  (func (export "load_oob") (result i32) (i32.load (i32.const 65533)))
  (func (export "load_offset_oob") (result i32) (i32.load8_u offset=65536 (i32.const 0)))
  (func (export "store_oob") (i64.store (i32.const 65529) (i64.const 1)))
  (func (export "store_last") (i64.store (i32.const 65528) (i64.const -1)))
  (func (export "unreachable") (unreachable))
  (func (export "undefined") (call_indirect (type $v) (i32.const 3)))
  (func (export "uninitialized") (call_indirect (type $v) (i32.const 2)))
  (func (export "mismatch") (call_indirect (type $v) (i32.const 1)))
  (func $deep (export "deep") (param i32) (result i32)
    (if (result i32) (local.get 0)
      (then (i32.add (i32.const 1) (call $deep (i32.sub (local.get 0) (i32.const 1)))))
      (else (i32.const 0))))
)"""


@pytest.mark.parametrize("func, message", [
    ("div0", "integer divide by zero"), ("rem0", "integer divide by zero"),
    ("overflow", "integer overflow"), ("load_oob", "out of bounds memory access"),
    ("load_offset_oob", "out of bounds memory access"),
    ("store_oob", "out of bounds memory access"), ("unreachable", "unreachable"),
    ("undefined", "undefined element"), ("uninitialized", "uninitialized element"),
    ("mismatch", "indirect call type mismatch"),
])
def test_traps_carry_the_spec_name_and_location(func, message):
    m = machine(TRAPS)
    with pytest.raises(Trap) as info:
        m.invoke(func)
    assert info.value.message == message
    assert info.value.pc is not None and m.program.func_of[info.value.pc] == m.function(func).index
    assert run_wasmtime(wat_to_wasm(TRAPS), func).trap == message


def test_store_at_the_last_valid_address_succeeds():
    m = machine(TRAPS)
    m.invoke("store_last")
    assert m.memory[-8:] == b"\xff" * 8


def test_recursion_depth_is_limited():
    m = machine(TRAPS, max_call_depth=100)
    assert m.invoke("deep", [99]) == (99,)
    with pytest.raises(Trap, match="call stack exhausted"):
        m.invoke("deep", [100])


# -- memory, instantiation, host ------------------------------------------------------------------
def test_memory_grow_respects_the_declared_maximum():
    wat = """(module (memory (export "memory") 1 3)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "size") (result i32) (memory.size)))"""
    m = machine(wat)
    assert m.invoke("grow", [1]) == (1,) and m.invoke("size") == (2,)
    assert m.invoke("grow", [2]) == (M32,)  # 4 pages > max 3
    assert m.invoke("grow", [1]) == (2,) and len(m.memory) == 3 * 65536
    assert m.invoke("grow", [0]) == (3,)


def test_memory_grow_respects_the_machine_cap():
    wat = '(module (memory 1) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))'
    m = machine(wat, max_memory_pages=4)
    assert m.invoke("grow", [4]) == (M32,) and m.invoke("grow", [3]) == (1,)


def test_instantiation_applies_data_and_runs_start():
    wat = r"""(module (memory (export "memory") 1)
      (global $g (export "g") (mut i32) (i32.const 0))
      (data (i32.const 8) "\01\02\03")
      (func $init (global.set $g (i32.load8_u (i32.const 9))))
      (start $init))"""
    m = machine(wat)
    assert m.memory[8:11] == b"\x01\x02\x03" and m.globals == [2]


def test_out_of_bounds_data_segment_traps_at_instantiation():
    with pytest.raises(Trap, match="out of bounds memory access"):
        machine('(module (memory 1) (data (i32.const 65535) "ab"))')


def test_putchar_and_getchar():
    wat = """(module
      (import "env" "putchar" (func $p (param i32) (result i32)))
      (import "env" "getchar" (func $g (result i32)))
      (func (export "echo") (result i32) (local i32)
        (block (loop
          (local.set 0 (call $g))
          (br_if 1 (i32.lt_s (local.get 0) (i32.const 0)))
          (drop (call $p (i32.add (local.get 0) (i32.const 256))))
          (br 0)))
        (local.get 0)))"""
    m = machine(wat, input=b"hi\x00\xff")
    assert m.invoke("echo") == (M32,)  # getchar's -1 at end of input
    assert bytes(m.output) == b"hi\x00\xff"  # putchar writes the low byte


def test_other_host_imports_are_called():
    wat = """(module (import "host" "add" (func $add (param i32 i64) (result i64)))
      (func (export "f") (result i64) (call $add (i32.const 2) (i64.const -1))))"""
    m = machine(wat, host={("host", "add"): lambda a, b: a + b})
    assert m.invoke("f") == ((2 + M64) & M64,)
    with pytest.raises(UnsupportedAtRuntime, match="host.add"):
        machine(wat).invoke("f")


def test_step_limit_interrupts_and_the_run_can_resume():
    wat = """(module (func (export "count") (param i32) (result i32) (local i32)
      (block (loop (br_if 1 (i32.eqz (local.get 0)))
        (local.set 1 (i32.add (local.get 1) (i32.const 3)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br 0)))
      (local.get 1)))"""
    whole = machine(wat)
    assert whole.invoke("count", [1000]) == (3000,)
    m = machine(wat)
    m.begin("count", [1000])
    with pytest.raises(StepLimitExceeded):
        m.run(max_steps=500)
    assert 500 <= m.steps < 520 and not m.done
    m.run()
    assert m.done and m.results == (3000,) and m.steps == whole.steps


def test_calling_an_unsupported_function_says_why():
    wat = """(module (func $f (result i32) (drop (f32.const 1)) (i32.const 1))
      (func (export "g") (result i32) (call $f)))"""
    # $f has an integer type but a float body: only lenient decoding admits the module
    m = Machine(flatten(decode_module(wat_to_wasm(wat), lenient=True)))
    with pytest.raises(UnsupportedAtRuntime):
        m.invoke("g")
    with pytest.raises(TypeError, match="takes 0 arguments"):
        m.invoke("g", [1])
