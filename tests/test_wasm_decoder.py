"""Binary decoder: sections, immediates, block matching, and clear rejection of what the machine
does not run."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rasp2d.interpreter_spec.decoder import (
    MalformedModule,
    UnsupportedFeature,
    _Reader,
    decode_module,
)
from rasp2d.interpreter_spec.frontend import wat_to_wasm
from rasp2d.interpreter_spec.module import ExternKind, InitKind, SegmentMode, ValType

FULL = r"""
(module
  (import "env" "putchar" (func $putchar (param i32) (result i32)))
  (import "env" "g" (global $imp i32))
  (type $bin (func (param i32 i32) (result i32)))
  (memory (export "memory") 1 4)
  (global $counter (export "counter") (mut i64) (i64.const -5))
  (table 2 funcref)
  (elem (i32.const 0) $add $main)
  (data (i32.const 16) "hi\00")
  (func $add (type $bin) (i32.add (local.get 0) (local.get 1)))
  (func $main (export "main") (result i32) (local i64 i64)
    (block $out (result i32)
      (if (result i32) (i32.const 1)
        (then (br_table 0 1 (i32.const 7) (i32.const 0)))
        (else (i32.const 2)))))
  (start $add_start)
  (func $add_start)
)
"""


def test_sections_are_decoded():
    m = decode_module(wat_to_wasm(FULL))
    assert [(i.module, i.name, i.kind) for i in m.imports] == [
        ("env", "putchar", ExternKind.FUNC), ("env", "g", ExternKind.GLOBAL)]
    assert m.n_imported_funcs == 1 and m.n_funcs == 4
    assert m.func_type(1).params == (ValType.I32, ValType.I32)
    assert m.memories[0].minimum == 1 and m.memories[0].maximum == 4
    g = m.globals[0]
    assert g.type.mutable and g.type.valtype is ValType.I64
    assert g.init.kind is InitKind.CONST and g.init.value == (1 << 64) - 5
    assert m.tables[0].limits.minimum == 2
    (elem,) = m.elems
    assert elem.mode is SegmentMode.ACTIVE and [i.value for i in elem.items] == [1, 2]
    (data,) = m.datas
    assert data.offset.value == 16 and data.data == b"hi\0"
    assert m.start == 3
    assert {e.name: (e.kind, e.index) for e in m.exports} == {
        "memory": (ExternKind.MEMORY, 0), "counter": (ExternKind.GLOBAL, 1),
        "main": (ExternKind.FUNC, 2)}
    main = m.functions[1]
    assert main.locals == (ValType.I64, ValType.I64)


def test_blocks_know_their_else_and_end():
    m = decode_module(wat_to_wasm(FULL))
    body = m.functions[1].body
    names = [i.name for i in body]
    block_at, if_at = names.index("block"), names.index("if")
    else_at = names.index("else")
    ends = [k for k, n in enumerate(names) if n == "end"]
    assert body[if_at].imm == (else_at, ends[0])
    assert body[block_at].imm == (-1, ends[1])
    assert ends[-1] == len(body) - 1  # the function's own end closes the body
    br_table = body[names.index("br_table")]
    assert br_table.imm == (0, 1)  # one label and the default


def test_immediates_are_unsigned_bit_patterns():
    wat = "(module (func (result i64) (drop (i32.const -1)) (i64.const -2)))"
    body = decode_module(wat_to_wasm(wat)).functions[0].body
    assert body[0].imm == (0xFFFFFFFF,)
    assert body[2].imm == ((1 << 64) - 2,)


@pytest.mark.parametrize("wat, needle", [
    ("(module (func (result f32) (f32.const 1)))", "f32"),
    ("(module (func (result i32) (i32.trunc_f32_s (f32.const 1))))", "f32.const (0x43)"),
    ("(module (memory 1) (func (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))))",
     "memory.fill (0xfc 11)"),
    ("(module (func (local f64)))", "local declaration uses value type f64"),
    ("(module (func (drop (block (result f64) (f64.const 0)))))", "f64"),
])
def test_unsupported_features_are_named_with_offset(wat, needle):
    with pytest.raises(UnsupportedFeature) as info:
        decode_module(wat_to_wasm(wat))
    assert needle in str(info.value)
    assert "byte offset 0x" in str(info.value)
    assert info.value.offset is not None


def test_lenient_mode_keeps_integer_functions_and_stubs_the_rest():
    wat = """(module
      (func (export "int") (result i32) (i32.const 3))
      (func (export "float") (result f32) (f32.const 1.5)))"""
    m = decode_module(wat_to_wasm(wat), lenient=True)
    assert m.functions[0].unsupported is None
    assert "f32" in m.functions[1].unsupported and m.functions[1].body == ()


def test_simd_is_rejected_by_name():
    wat = "(module (func (drop (v128.const i32x4 0 0 0 0))))"
    with pytest.raises(UnsupportedFeature, match="v128|SIMD"):
        decode_module(wat_to_wasm(wat))


def test_malformed_input_says_what_is_wrong():
    with pytest.raises(MalformedModule, match="magic header"):
        decode_module(b"\x7fELF\x01\x00\x00\x00")
    with pytest.raises(MalformedModule, match="version"):
        decode_module(b"\0asm\x02\0\0\0")
    with pytest.raises(MalformedModule, match="runs past the end"):
        decode_module(wat_to_wasm("(module (func))")[:-3])


def _uleb(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _sleb(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        done = (v == 0 and not b & 0x40) or (v == -1 and b & 0x40)
        out.append(b | (0 if done else 0x80))
        if done:
            return bytes(out)


@given(st.integers(0, (1 << 32) - 1))
def test_uleb32_round_trips(v):
    assert _Reader(_uleb(v)).uleb() == v


@given(st.integers(-(1 << 63), (1 << 63) - 1))
def test_sleb64_round_trips(v):
    assert _Reader(_sleb(v)).sleb(64) == v


def test_leb_rejects_out_of_range_values():
    with pytest.raises(MalformedModule, match="too large|too long"):
        _Reader(_uleb(1 << 32)).uleb()
    with pytest.raises(MalformedModule, match="too large|too long"):
        _Reader(_sleb(1 << 31)).sleb(32)
