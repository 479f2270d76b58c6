"""The WebAssembly instruction set as data: one table the decoder and the flattener both read.

Every opcode the binary format defines up to the 2.0 core spec is named here, so that an
unsupported one (a float, SIMD or bulk-memory instruction) can be reported by name rather than
as an unknown byte. `supported` marks the integer subset this machine executes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Imm(enum.Enum):
    """Shape of an instruction's immediates in the binary encoding."""

    NONE = "none"
    BLOCKTYPE = "blocktype"  # block / loop / if
    LABEL = "label"  # br, br_if
    LABELS = "labels"  # br_table: vec(label) default
    FUNC = "func"  # call
    CALL_INDIRECT = "call_indirect"  # typeidx tableidx
    LOCAL = "local"
    GLOBAL = "global"
    MEMARG = "memarg"  # align offset
    MEMIDX = "memidx"  # memory.size / memory.grow: one zero byte (memory index)
    I32 = "i32"
    I64 = "i64"
    SELECT_T = "select_t"  # typed select: vec(valtype)


@dataclass(frozen=True)
class OpInfo:
    """One opcode: `pops`/`pushes` are its fixed stack effect (None for control and calls,
    whose effect depends on types)."""

    code: int
    name: str
    imm: Imm
    pops: int | None
    pushes: int | None
    supported: bool = True


_OPS: list[OpInfo] = []


def _op(code: int, name: str, imm: Imm = Imm.NONE, pops: int | None = 0, pushes: int | None = 0,
        supported: bool = True) -> None:
    _OPS.append(OpInfo(code, name, imm, pops, pushes, supported))


# --- control -------------------------------------------------------------------------------
_op(0x00, "unreachable")
_op(0x01, "nop")
_op(0x02, "block", Imm.BLOCKTYPE, None, None)
_op(0x03, "loop", Imm.BLOCKTYPE, None, None)
_op(0x04, "if", Imm.BLOCKTYPE, None, None)
_op(0x05, "else", Imm.NONE, None, None)
_op(0x0B, "end", Imm.NONE, None, None)
_op(0x0C, "br", Imm.LABEL, None, None)
_op(0x0D, "br_if", Imm.LABEL, None, None)
_op(0x0E, "br_table", Imm.LABELS, None, None)
_op(0x0F, "return", Imm.NONE, None, None)
_op(0x10, "call", Imm.FUNC, None, None)
_op(0x11, "call_indirect", Imm.CALL_INDIRECT, None, None)
_op(0x12, "return_call", Imm.FUNC, None, None, supported=False)
_op(0x13, "return_call_indirect", Imm.CALL_INDIRECT, None, None, supported=False)
_op(0x1A, "drop", Imm.NONE, 1, 0)
_op(0x1B, "select", Imm.NONE, 3, 1)
_op(0x1C, "select", Imm.SELECT_T, 3, 1)  # typed select (reference-types encoding)
# --- variables -----------------------------------------------------------------------------
_op(0x20, "local.get", Imm.LOCAL, 0, 1)
_op(0x21, "local.set", Imm.LOCAL, 1, 0)
_op(0x22, "local.tee", Imm.LOCAL, 1, 1)
_op(0x23, "global.get", Imm.GLOBAL, 0, 1)
_op(0x24, "global.set", Imm.GLOBAL, 1, 0)
_op(0x25, "table.get", Imm.NONE, None, None, supported=False)
_op(0x26, "table.set", Imm.NONE, None, None, supported=False)
# --- memory --------------------------------------------------------------------------------
for _code, _name, _ok in [
    (0x28, "i32.load", True), (0x29, "i64.load", True), (0x2A, "f32.load", False),
    (0x2B, "f64.load", False), (0x2C, "i32.load8_s", True), (0x2D, "i32.load8_u", True),
    (0x2E, "i32.load16_s", True), (0x2F, "i32.load16_u", True), (0x30, "i64.load8_s", True),
    (0x31, "i64.load8_u", True), (0x32, "i64.load16_s", True), (0x33, "i64.load16_u", True),
    (0x34, "i64.load32_s", True), (0x35, "i64.load32_u", True),
]:
    _op(_code, _name, Imm.MEMARG, 1, 1, _ok)
for _code, _name, _ok in [
    (0x36, "i32.store", True), (0x37, "i64.store", True), (0x38, "f32.store", False),
    (0x39, "f64.store", False), (0x3A, "i32.store8", True), (0x3B, "i32.store16", True),
    (0x3C, "i64.store8", True), (0x3D, "i64.store16", True), (0x3E, "i64.store32", True),
]:
    _op(_code, _name, Imm.MEMARG, 2, 0, _ok)
_op(0x3F, "memory.size", Imm.MEMIDX, 0, 1)
_op(0x40, "memory.grow", Imm.MEMIDX, 1, 1)
# --- constants -----------------------------------------------------------------------------
_op(0x41, "i32.const", Imm.I32, 0, 1)
_op(0x42, "i64.const", Imm.I64, 0, 1)
_op(0x43, "f32.const", Imm.NONE, 0, 1, supported=False)
_op(0x44, "f64.const", Imm.NONE, 0, 1, supported=False)


def _numeric(start: int, names: str, pops: int, supported: bool = True) -> None:
    for i, name in enumerate(names.split()):
        _op(start + i, name, Imm.NONE, pops, 1, supported)


_CMP = "eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u"
_FCMP = "eq ne lt gt le ge"
_IBIN = "add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr"
_FUN = "abs neg ceil floor trunc nearest sqrt"
_FBIN = "add sub mul div min max copysign"
_numeric(0x45, "i32.eqz", 1)
_numeric(0x46, " ".join("i32." + n for n in _CMP.split()), 2)
_numeric(0x50, "i64.eqz", 1)
_numeric(0x51, " ".join("i64." + n for n in _CMP.split()), 2)
_numeric(0x5B, " ".join("f32." + n for n in _FCMP.split()), 2, False)
_numeric(0x61, " ".join("f64." + n for n in _FCMP.split()), 2, False)
_numeric(0x67, "i32.clz i32.ctz i32.popcnt", 1)
_numeric(0x6A, " ".join("i32." + n for n in _IBIN.split()), 2)
_numeric(0x79, "i64.clz i64.ctz i64.popcnt", 1)
_numeric(0x7C, " ".join("i64." + n for n in _IBIN.split()), 2)
_numeric(0x8B, " ".join("f32." + n for n in _FUN.split()), 1, False)
_numeric(0x92, " ".join("f32." + n for n in _FBIN.split()), 2, False)
_numeric(0x99, " ".join("f64." + n for n in _FUN.split()), 1, False)
_numeric(0xA0, " ".join("f64." + n for n in _FBIN.split()), 2, False)
_numeric(0xA7, "i32.wrap_i64", 1)
_numeric(0xA8, "i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u", 1, False)
_numeric(0xAC, "i64.extend_i32_s i64.extend_i32_u", 1)
_numeric(0xAE, "i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u", 1, False)
_numeric(0xB2, "f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u "
         "f32.demote_f64 f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s "
         "f64.convert_i64_u f64.promote_f32 i32.reinterpret_f32 i64.reinterpret_f64 "
         "f32.reinterpret_i32 f64.reinterpret_i64", 1, False)
_numeric(0xC0, "i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s i64.extend32_s", 1)
# --- reference types (recognised so they can be named; not executed) ----------------------
_op(0xD0, "ref.null", Imm.NONE, None, None, supported=False)
_op(0xD1, "ref.is_null", Imm.NONE, None, None, supported=False)
_op(0xD2, "ref.func", Imm.NONE, None, None, supported=False)

OPS: dict[int, OpInfo] = {op.code: op for op in _OPS}
"""Single-byte opcodes by byte value."""

PREFIXED_FC: dict[int, str] = {
    0: "i32.trunc_sat_f32_s", 1: "i32.trunc_sat_f32_u", 2: "i32.trunc_sat_f64_s",
    3: "i32.trunc_sat_f64_u", 4: "i64.trunc_sat_f32_s", 5: "i64.trunc_sat_f32_u",
    6: "i64.trunc_sat_f64_s", 7: "i64.trunc_sat_f64_u", 8: "memory.init", 9: "data.drop",
    10: "memory.copy", 11: "memory.fill", 12: "table.init", 13: "elem.drop", 14: "table.copy",
    15: "table.grow", 16: "table.size", 17: "table.fill",
}
"""0xFC-prefixed opcodes (saturating truncation, bulk memory, table ops): all unsupported."""

BY_NAME: dict[str, OpInfo] = {op.name: op for op in _OPS if op.code != 0x1C}
"""Opcodes by text name (untyped `select` for the name "select")."""
