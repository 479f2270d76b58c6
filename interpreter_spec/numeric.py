"""Semantics of the integer numeric instructions, once, as pure functions on bit patterns.

Values are Python ints holding the *unsigned* bit pattern (i32 in [0, 2**32), i64 in
[0, 2**64)); signed views are taken only where an instruction needs them. Both the fast run
loop and the traced stepper call these tables, so the two cannot disagree on arithmetic.
"""

from __future__ import annotations

from typing import Callable

from .program import Op
from .traps import INTEGER_DIVIDE_BY_ZERO, INTEGER_OVERFLOW, Trap

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def signed(x: int, bits: int) -> int:
    """Two's-complement value of an unsigned `bits`-wide pattern."""
    return x - ((x >> (bits - 1)) << bits)


def _div_s(bits: int) -> Callable[[int, int], int]:
    mask = (1 << bits) - 1
    int_min = 1 << (bits - 1)

    def div_s(x: int, y: int) -> int:
        if y == 0:
            raise Trap(INTEGER_DIVIDE_BY_ZERO)
        if x == int_min and y == mask:
            raise Trap(INTEGER_OVERFLOW)
        a, b = signed(x, bits), signed(y, bits)
        q = abs(a) // abs(b)
        return (-q if (a < 0) != (b < 0) else q) & mask

    return div_s


def _rem_s(bits: int) -> Callable[[int, int], int]:
    mask = (1 << bits) - 1

    def rem_s(x: int, y: int) -> int:
        if y == 0:
            raise Trap(INTEGER_DIVIDE_BY_ZERO)
        a, b = signed(x, bits), signed(y, bits)
        r = abs(a) % abs(b)  # the remainder takes the dividend's sign (truncating division)
        return (-r if a < 0 else r) & mask

    return rem_s


def _div_u(x: int, y: int) -> int:
    if y == 0:
        raise Trap(INTEGER_DIVIDE_BY_ZERO)
    return x // y


def _rem_u(x: int, y: int) -> int:
    if y == 0:
        raise Trap(INTEGER_DIVIDE_BY_ZERO)
    return x % y


def _int_ops(bits: int) -> tuple[dict[str, Callable[[int], int]], dict[str, Callable[[int, int], int]]]:
    mask = (1 << bits) - 1
    sh = bits - 1
    sign = 1 << (bits - 1)

    def rotl(x: int, y: int) -> int:
        k = y & sh
        return ((x << k) | (x >> (bits - k))) & mask

    def rotr(x: int, y: int) -> int:
        k = y & sh
        return ((x >> k) | (x << (bits - k))) & mask

    unary = {
        "eqz": lambda x: int(x == 0),
        "clz": lambda x: bits - x.bit_length(),
        "ctz": lambda x: (x & -x).bit_length() - 1 if x else bits,
        "popcnt": lambda x: x.bit_count(),
    }
    binary = {
        "eq": lambda x, y: int(x == y),
        "ne": lambda x, y: int(x != y),
        "lt_s": lambda x, y: int((x ^ sign) < (y ^ sign)),
        "lt_u": lambda x, y: int(x < y),
        "gt_s": lambda x, y: int((x ^ sign) > (y ^ sign)),
        "gt_u": lambda x, y: int(x > y),
        "le_s": lambda x, y: int((x ^ sign) <= (y ^ sign)),
        "le_u": lambda x, y: int(x <= y),
        "ge_s": lambda x, y: int((x ^ sign) >= (y ^ sign)),
        "ge_u": lambda x, y: int(x >= y),
        "add": lambda x, y: (x + y) & mask,
        "sub": lambda x, y: (x - y) & mask,
        "mul": lambda x, y: (x * y) & mask,
        "div_s": _div_s(bits),
        "div_u": _div_u,
        "rem_s": _rem_s(bits),
        "rem_u": _rem_u,
        "and": lambda x, y: x & y,
        "or": lambda x, y: x | y,
        "xor": lambda x, y: x ^ y,
        "shl": lambda x, y: (x << (y & sh)) & mask,
        "shr_s": lambda x, y: (signed(x, bits) >> (y & sh)) & mask,
        "shr_u": lambda x, y: x >> (y & sh),
        "rotl": rotl,
        "rotr": rotr,
    }
    return unary, binary


def _sext(from_bits: int, to_mask: int) -> Callable[[int], int]:
    low = (1 << from_bits) - 1
    sign = 1 << (from_bits - 1)
    return lambda x: (((x & low) ^ sign) - sign) & to_mask


UNARY: dict[Op, Callable[[int], int]] = {}
BINARY: dict[Op, Callable[[int, int], int]] = {}
for _prefix, _bits in (("I32", 32), ("I64", 64)):
    _un, _bin = _int_ops(_bits)
    for _name, _fn in _un.items():
        UNARY[Op[f"{_prefix}_{_name.upper()}"]] = _fn
    for _name, _fn in _bin.items():
        BINARY[Op[f"{_prefix}_{_name.upper()}"]] = _fn
UNARY[Op.I32_WRAP_I64] = lambda x: x & M32
UNARY[Op.I64_EXTEND_I32_S] = _sext(32, M64)
UNARY[Op.I64_EXTEND_I32_U] = lambda x: x
UNARY[Op.I32_EXTEND8_S] = _sext(8, M32)
UNARY[Op.I32_EXTEND16_S] = _sext(16, M32)
UNARY[Op.I64_EXTEND8_S] = _sext(8, M64)
UNARY[Op.I64_EXTEND16_S] = _sext(16, M64)
UNARY[Op.I64_EXTEND32_S] = _sext(32, M64)


# Loads and stores: (byte width, signed?, result mask) for loads; (byte width) for stores.
LOADS: dict[Op, tuple[int, bool, int]] = {
    Op.I32_LOAD: (4, False, M32), Op.I64_LOAD: (8, False, M64),
    Op.I32_LOAD8_S: (1, True, M32), Op.I32_LOAD8_U: (1, False, M32),
    Op.I32_LOAD16_S: (2, True, M32), Op.I32_LOAD16_U: (2, False, M32),
    Op.I64_LOAD8_S: (1, True, M64), Op.I64_LOAD8_U: (1, False, M64),
    Op.I64_LOAD16_S: (2, True, M64), Op.I64_LOAD16_U: (2, False, M64),
    Op.I64_LOAD32_S: (4, True, M64), Op.I64_LOAD32_U: (4, False, M64),
}
STORES: dict[Op, int] = {
    Op.I32_STORE: 4, Op.I64_STORE: 8, Op.I32_STORE8: 1, Op.I32_STORE16: 2,
    Op.I64_STORE8: 1, Op.I64_STORE16: 2, Op.I64_STORE32: 4,
}

assert set(UNARY) | set(BINARY) == {op for op in Op if op.text[1:3] in ("32", "64")
                                   and op not in LOADS and op not in STORES
                                   and not op.text.endswith("const")}
