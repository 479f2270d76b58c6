"""Flat program layout: exact lowering of structured control flow, and invariants (static stack
heights, branch targets, immediate ranges) on random modules and the example C programs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from rasp2d.interpreter_spec.decoder import MalformedModule, decode_module
from rasp2d.interpreter_spec.frontend import load_program, wat_to_wasm
from rasp2d.interpreter_spec.opcodes import BY_NAME
from rasp2d.interpreter_spec.program import IMMEDIATE_OPS, NUMERIC_OPS, Op, Program, flatten
from wasm_programs import wat_modules

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples" / "wasm").glob("*.c"))
NO_FALLTHROUGH = {Op.BR, Op.BR_TABLE, Op.RETURN, Op.UNREACHABLE}


def flat(wat: str) -> Program:
    return flatten(decode_module(wat_to_wasm(wat)))


def ops_of(program: Program, func: int) -> list[tuple]:
    return [(ins.op.text, ins.a, ins.b, ins.c) for pc, ins in enumerate(program.code)
            if program.func_of[pc] == func]


def stack_effect(program: Program, pc: int) -> tuple[int, int]:
    """(pops, pushes) when the instruction at pc falls through."""
    ins = program.code[pc]
    op = ins.op
    if op == Op.CALL:
        callee = next(f for f in program.functions if f.entry_pc == ins.a)
        return callee.n_params, callee.n_results
    if op == Op.CALL_INDIRECT:
        t = program.types[ins.a]
        return len(t.params) + 1, len(t.results)
    if op == Op.CALL_HOST:
        f = program.functions[ins.a]
        return f.n_params, f.n_results
    fixed = {Op.PUTCHAR: (1, 1), Op.GETCHAR: (0, 1), Op.IF: (1, 0), Op.BR_IF: (1, 0)}
    if op in fixed:
        return fixed[op]
    if op in IMMEDIATE_OPS and ins.b:  # the second operand is the immediate a
        return 1, 1
    info = BY_NAME[op.text]
    return info.pops, info.pushes


def check_invariants(p: Program) -> None:
    n = len(p.code)
    assert len(p.heights) == len(p.func_of) == len(p.source_offsets) == n
    for f in p.functions:
        if f.entry_pc >= 0:
            assert p.heights[f.entry_pc] == 0 and p.func_of[f.entry_pc] == f.index
    for pc, ins in enumerate(p.code):
        assert all(0 <= v < 1 << 32 for v in (ins.a, ins.b, ins.c)), (pc, ins)
        h = p.heights[pc]
        fn = p.functions[p.func_of[pc]]
        pops, pushes = (0, 0) if ins.op in NO_FALLTHROUGH else stack_effect(p, pc)
        assert h >= pops, f"pc {pc}: {ins} needs {pops} values, height {h}"
        if ins.op not in NO_FALLTHROUGH:
            assert pc + 1 < n and p.func_of[pc + 1] == fn.index, f"pc {pc} falls off its function"
            assert p.heights[pc + 1] == h - pops + pushes, f"height mismatch after pc {pc}: {ins}"
        if ins.op in (Op.BR, Op.BR_IF):
            target, arity, height = ins.a, ins.b, ins.c
            assert p.func_of[target] == fn.index
            assert height + arity <= h - (ins.op == Op.BR_IF)
            assert p.heights[target] == height + arity, f"pc {pc}: {ins} lands at wrong height"
        elif ins.op == Op.IF:
            assert p.func_of[ins.a] == fn.index and p.heights[ins.a] == h - 1
        elif ins.op == Op.BR_TABLE:
            entries = p.code[pc + 1:pc + 2 + ins.a]
            assert len(entries) == ins.a + 1
            assert all(e.op in (Op.BR, Op.RETURN) for e in entries)
            assert all(p.heights[pc + 1 + k] == h - 1 for k in range(ins.a + 1))
        elif ins.op == Op.RETURN:
            assert ins.a == fn.n_results and h >= fn.n_results


def test_if_else_lowers_to_conditional_jump_and_skip():
    p = flat("""(module (func (param i32) (result i32)
        (if (result i32) (local.get 0) (then (i32.const 10)) (else (i32.const 20)))))""")
    assert ops_of(p, 0) == [
        ("local.get", 0, 0, 0),
        ("if", 4, 0, 0),  # condition zero: jump to the else branch
        ("i32.const", 10, 0, 0),
        ("br", 5, 1, 0),  # then branch done: jump past the else, carrying its value
        ("i32.const", 20, 0, 0),
        ("return", 1, 0, 0),
    ]
    assert p.heights == (0, 1, 0, 1, 0, 1)


def test_branch_out_of_a_block_carries_values_and_cuts_the_stack():
    p = flat("""(module (func (result i32)
        (i32.const 1)
        (block (result i32) (i32.const 2) (i32.const 3) (br 0 (i32.const 4)))
        (i32.add)))""")
    ops = ops_of(p, 0)
    br = ops[4]
    assert br[0] == "br" and br[2:] == (1, 1)  # keep 1 value, cut to height 1 (above the 1)
    assert ops[br[1]][0] == "i32.add" and p.heights[br[1]] == 2


def test_br_table_is_followed_by_its_entries():
    p = flat("""(module (func (param i32) (result i32)
        (block (block (br_table 0 1 0 (local.get 0))) (return (i32.const 1)))
        (i32.const 2)))""")
    ops = ops_of(p, 0)
    assert ops[1] == ("br_table", 2, 0, 0)
    assert [o[0] for o in ops[2:5]] == ["br", "br", "br"]
    check_invariants(p)


def test_branches_to_the_function_label_become_returns():
    p = flat("""(module (func (param i32) (result i32)
        (br_if 0 (i32.const 5) (local.get 0))
        (drop) (br 0 (i32.const 6))))""")
    ops = ops_of(p, 0)
    assert ops[2][0] == "br_if" and ops[ops[2][1]] == ("return", 1, 0, 0)
    assert ops[3:6] == [("drop", 0, 0, 0), ("i32.const", 6, 0, 0), ("return", 1, 0, 0)]
    check_invariants(p)


def test_unreachable_code_is_dropped():
    p = flat("(module (func (result i32) (return (i32.const 1)) (i32.const 2) (drop) (i32.const 3)))")
    assert ops_of(p, 0) == [("i32.const", 1, 0, 0), ("return", 1, 0, 0)]


def test_host_imports_become_instructions_and_stubs():
    p = flat("""(module
        (import "env" "putchar" (func $p (param i32) (result i32)))
        (import "env" "getchar" (func $g (result i32)))
        (func (export "main") (drop (call $p (call $g)))))""")
    assert [o[0] for o in ops_of(p, 2)] == ["getchar", "putchar", "drop", "return"]
    assert [o[0] for o in ops_of(p, 0)] == ["local.get", "putchar", "return"]
    assert [o[0] for o in ops_of(p, 1)] == ["getchar", "return"]
    assert p.functions[0].imported == ("env", "putchar")


def test_calls_name_entry_pc_params_and_locals():
    p = flat("""(module
        (func $f (param i32 i64) (result i32) (local i32 i32 i32) (local.get 0))
        (func (export "main") (result i32) (call $f (i32.const 1) (i64.const 2))))""")
    call = next(ins for ins in p.code if ins.op == Op.CALL)
    f = p.functions[0]
    assert (call.a, call.b, call.c) == (f.entry_pc, 2, 3)


def test_a_constant_folds_into_the_operator_after_it():
    wat = """(module (func (param i32) (result i32)
        (i32.shl (i32.add (local.get 0) (i32.const 5)) (i32.const 2))))"""
    p = flat(wat)
    assert ops_of(p, 0) == [("local.get", 0, 0, 0), ("i32.add", 5, 1, 0), ("i32.shl", 2, 1, 0),
                            ("return", 1, 0, 0)]
    assert p.heights == (0, 1, 1, 1)
    check_invariants(p)
    plain = flatten(decode_module(wat_to_wasm(wat)), fuse=False)
    assert [o[:3] for o in ops_of(plain, 0)][:3] == [("local.get", 0, 0), ("i32.const", 5, 0),
                                                   ("i32.add", 0, 0)]


def test_a_local_folds_into_the_operator_after_it():
    p = flat("""(module (func (param i32 i32 i64) (result i32)
        (drop (i64.add (local.get 2) (local.get 2)))
        (i32.sub (local.get 0) (local.get 1))))""")
    assert ops_of(p, 0)[-3:] == [("local.get", 0, 0, 0), ("i32.sub", 1, 2, 0), ("return", 1, 0, 0)]
    assert [o[0] for o in ops_of(p, 0)[:4]] == ["local.get", "local.get", "i64.add", "drop"]
    check_invariants(p)


def test_a_label_between_constant_and_operator_keeps_them_apart():
    # the loop's first instruction is a branch target: a jump there must find the operator
    p = flat("""(module (func (param i32) (result i32)
        (local.get 0) (i32.const 7)
        (loop (param i32 i32) (result i32) (i32.sub))))""")
    assert [o[:3] for o in ops_of(p, 0)] == [("local.get", 0, 0), ("i32.const", 7, 0),
                                             ("i32.sub", 0, 0), ("return", 1, 0)]
    check_invariants(p)


def test_only_i32_operators_with_two_operands_take_an_immediate():
    p = flat("""(module (func (param i32 i64) (result i32)
        (drop (i64.add (local.get 1) (i64.const 3)))
        (drop (i32.div_u (local.get 0) (i32.const 3)))
        (i32.eqz (i32.const 0))))""")
    assert not any(ins.b for ins in p.code if ins.op in NUMERIC_OPS)
    assert {ins.op for ins in p.code} >= {Op.I64_CONST, Op.I32_CONST}


def test_the_machine_folds_the_same_operators_as_the_flattener():
    # wasm.rasp2d cannot import IMMEDIATE_OPS: its op_fold table must list the same opcodes
    source = (Path(__file__).resolve().parent.parent / "interpreter_spec" / "wasm.rasp2d").read_text()
    table = re.search(r"let op_fold = table\(op, \{(.*?)\}", source, re.S).group(1)
    assert set(re.findall(r'"OP_([a-z0-9_.]+)"', table)) == {op.text for op in IMMEDIATE_OPS}


def test_examples_fold_many_constants():
    p = flatten(load_program(next(path for path in EXAMPLES if path.stem == "sudoku")))
    fused = sum(1 for ins in p.code if ins.op in IMMEDIATE_OPS and ins.b)
    assert fused > 100
    check_invariants(p)


def test_i64_constants_split_into_two_32_bit_halves():
    p = flat("(module (func (result i64) (i64.const -2)))")
    assert ops_of(p, 0)[0] == ("i64.const", 0xFFFFFFFE, 0xFFFFFFFF, 0)


def test_equal_signatures_share_a_type_id():
    p = flat("""(module (type $a (func (param i32))) (type $b (func (param i32)))
        (func (type $a)) (func (type $b)))""")
    assert p.functions[0].type_id == p.functions[1].type_id == 0


def test_stack_underflow_is_reported_as_malformed():
    # hand-assembled: a function of type [] -> [i32] whose body is just `i32.add`
    body = bytes([0x00, 0x6A, 0x0B])
    code = bytes([1, len(body)]) + body
    module = (b"\0asm\x01\0\0\0" + bytes([1, 5, 1, 0x60, 0, 1, 0x7F]) + bytes([3, 2, 1, 0])
              + bytes([10, len(code)]) + code)
    with pytest.raises(MalformedModule, match="underflow"):
        flatten(decode_module(module))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(wat_modules())
def test_random_modules_satisfy_layout_invariants(wat):
    check_invariants(flat(wat))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_programs_satisfy_layout_invariants(path):
    p = flatten(load_program(path))
    check_invariants(p)
    assert "i32.const" in p.listing()
