"""The traced stepper: exact per-step records, and agreement with the fast loop."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from rasp2d.interpreter_spec.decoder import decode_module
from rasp2d.interpreter_spec.frontend import default_entry, load_program, wat_to_wasm
from rasp2d.interpreter_spec.program import Op, flatten
from rasp2d.interpreter_spec.reference import Machine
from rasp2d.interpreter_spec.stepper import MemAccess, StepRecord, Stepper, trace
from rasp2d.interpreter_spec.traps import StepLimitExceeded, Trap
from wasm_programs import main_args, wat_modules

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"

PROGRAM = r"""(module
  (import "env" "putchar" (func $putchar (param i32) (result i32)))
  (import "env" "getchar" (func $getchar (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 5))
  (func $sq (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
  (func (export "main") (result i32) (local i32)
    (local.set 0 (call $getchar))
    (i32.store8 offset=3 (i32.const 1) (local.get 0))
    (global.set $g (call $sq (i32.load8_u (i32.const 4))))
    (drop (call $putchar (i32.const 0x141)))
    (block (br_if 0 (i32.const 0)))
    (i32.const 7)
    (block (param i32) (result i32) (br 0 (i32.const 9) (i32.const 8)))
    (drop)
    (global.get $g)))"""


def machine(wat: str, fuse: bool = True, **kw) -> Machine:
    return Machine(flatten(decode_module(wat_to_wasm(wat)), fuse=fuse), **kw)


def test_every_step_is_recorded_exactly():
    m = machine(PROGRAM, fuse=False, input=b"\x0c")
    records = list(trace(m, "main"))
    R = StepRecord
    expected = [
        R(0, 9, Op.GETCHAR, 0, (), (12,), 10, input_byte=12),
        R(1, 10, Op.LOCAL_SET, 0, (12,), (), 11, local_write=(0, 12)),
        R(2, 11, Op.I32_CONST, 0, (), (1,), 12),
        R(3, 12, Op.LOCAL_GET, 0, (), (12,), 13),
        R(4, 13, Op.I32_STORE8, 0, (1, 12), (), 14, mem_write=MemAccess(4, 1, 12)),
        R(5, 14, Op.I32_CONST, 0, (), (4,), 15),
        R(6, 15, Op.I32_LOAD8_U, 0, (4,), (12,), 16, mem_read=MemAccess(4, 1, 12)),
        R(7, 16, Op.CALL, 0, (12,), (), 5),  # the argument becomes the callee's local 0
        R(8, 5, Op.LOCAL_GET, 1, (), (12,), 6),
        R(9, 6, Op.LOCAL_GET, 1, (), (12,), 7),
        R(10, 7, Op.I32_MUL, 1, (12, 12), (144,), 8),
        R(11, 8, Op.RETURN, 1, (144,), (144,), 17),
        R(12, 17, Op.GLOBAL_SET, 0, (144,), (), 18, global_write=(0, 144)),
        R(13, 18, Op.I32_CONST, 0, (), (321,), 19),
        R(14, 19, Op.PUTCHAR, 0, (321,), (65,), 20, output_byte=65),
        R(15, 20, Op.DROP, 0, (65,), (), 21),
        R(16, 21, Op.I32_CONST, 0, (), (0,), 22),
        R(17, 22, Op.BR_IF, 0, (0,), (), 23, taken=False),
        R(18, 23, Op.I32_CONST, 0, (), (7,), 24),
        R(19, 24, Op.I32_CONST, 0, (), (9,), 25),
        R(20, 25, Op.I32_CONST, 0, (), (8,), 26),
        # the block consumed its param 7: the branch cuts to below it and carries 8
        R(21, 26, Op.BR, 0, (7, 9, 8), (8,), 27, taken=True),
        R(22, 27, Op.DROP, 0, (8,), (), 28),
        R(23, 28, Op.GLOBAL_GET, 0, (), (144,), 29),
        R(24, 29, Op.RETURN, 0, (144,), (144,), -1),
    ]
    assert records == expected
    assert m.results == (144,) and bytes(m.output) == b"A" and m.steps == 25


def test_an_operand_folded_into_the_operator_is_not_popped():
    m = machine("""(module (func (export "main") (param i32) (result i32) (local i32)
        (local.set 1 (i32.const 5))
        (i32.mul (i32.add (local.get 0) (i32.const 3)) (local.get 1))))""")
    records = list(trace(m, "main", (4,)))
    folded = [(r.op, r.popped, r.pushed) for r in records if r.op in (Op.I32_ADD, Op.I32_MUL)]
    assert folded == [(Op.I32_ADD, (4,), (7,)), (Op.I32_MUL, (7,), (35,))]
    assert m.results == (35,)


def test_records_are_frozen_and_hashable():
    record = next(trace(machine(PROGRAM), "main"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.pc = 3  # type: ignore[misc]
    assert hash(record) == hash(dataclasses.replace(record))
    assert record.input_byte == -1  # no input: getchar reports end of input


def test_branch_records_show_the_stack_cut_and_if_direction():
    wat = """(module (func (export "f") (param i32) (result i32)
        (i32.const 1) (i32.const 2)
        (block (result i32) (i32.const 3) (br_if 0 (i32.const 4) (local.get 0)) (drop) (drop) (i32.const 5))
        (i32.add) (i32.add)
        (if (result i32) (i32.const 0) (then (i32.const 6)) (else (i32.const 7))) (i32.add)))"""
    taken = [r for r in trace(machine(wat), "f", [1]) if r.op in (Op.BR_IF, Op.IF)]
    assert taken[0].popped == (3, 4, 1) and taken[0].pushed == (4,) and taken[0].taken
    assert taken[1].popped == (0,) and taken[1].taken  # `if` jumps to else on zero
    not_taken = [r for r in trace(machine(wat), "f", [0]) if r.op == Op.BR_IF]
    assert not_taken[0].popped == (0,) and not not_taken[0].taken


def test_trap_leaves_the_machine_at_the_trapping_pc():
    wat = '(module (func (export "f") (result i32) (i32.div_u (i32.const 1) (i32.const 0))))'
    m = machine(wat)
    steps = trace(m, "f")
    next(steps), next(steps)
    with pytest.raises(Trap, match="integer divide by zero") as info:
        next(steps)
    assert info.value.pc == 2 and m.pc == 2 and m.steps == 3


def test_step_limit_stops_the_traced_run():
    wat = '(module (func (export "spin") (loop (br 0))))'
    with pytest.raises(StepLimitExceeded):
        for _ in trace(machine(wat), "spin", max_steps=1000):
            pass


def test_stepping_needs_a_started_call():
    with pytest.raises(RuntimeError, match="begin"):
        Stepper(machine(PROGRAM)).step()


@pytest.mark.parametrize("name, input", [
    ("addition", b"123456789 + 987654321"), ("collatz", b"97"), ("crc32", b"hello, world"),
    ("hungarian", b""), ("primes", b"300"),
])
def test_traced_and_fast_runs_agree_on_examples(name, input):
    module = load_program(EXAMPLES / f"{name}.c")
    program = flatten(module)
    entry = default_entry(module)
    fast = Machine(program, input=input)
    fast.invoke(entry)
    traced = Machine(program, input=input)
    records = list(trace(traced, entry))
    assert traced.results == fast.results
    assert traced.output == fast.output and traced.memory == fast.memory
    assert traced.globals == fast.globals and traced.steps == fast.steps == len(records)
    assert bytes(r.output_byte for r in records if r.output_byte is not None) == fast.output
    assert [r.step for r in records] == list(range(len(records)))
    assert all(r.next_pc == s.pc for r, s in zip(records, records[1:]))


@pytest.mark.slow
def test_traced_sudoku_matches_the_fast_run():
    module = load_program(EXAMPLES / "sudoku.c")
    program, entry = flatten(module), default_entry(module)
    fast = Machine(program)
    fast.invoke(entry)
    traced = Machine(program)
    n = sum(1 for _ in trace(traced, entry))
    assert (traced.results, traced.output, traced.memory, traced.steps, n) == (
        fast.results, fast.output, fast.memory, fast.steps, fast.steps)


def _assert_static_heights_hold(m: Machine, func: str, args=()) -> int:
    """Steps `func`, checking len(stack) - base == program.heights[pc] before every step."""
    m.begin(func, args)
    stepper = Stepper(m)
    heights = m.program.heights
    n = 0
    while not m.done:
        assert len(m.stack) - m.base == heights[m.pc], f"pc {m.pc}"
        try:
            stepper.step()
        except Trap:
            break
        n += 1
    return n


@pytest.mark.parametrize("name", ["hungarian", "primes", "collatz"])
def test_static_heights_match_the_running_stack_on_examples(name):
    module = load_program(EXAMPLES / f"{name}.c")
    assert _assert_static_heights_hold(Machine(flatten(module)), default_entry(module)) > 1000


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(wat_modules(), main_args)
def test_static_heights_match_the_running_stack_on_random_programs(wat, args):
    _assert_static_heights_hold(machine(wat), "main", args)
