"""The WASM machine's token vocabulary (TRACE_FORMAT.md), in one stable order.

The order is part of the format: a compiled interpreter's embedding rows follow it, so tokens
are only ever appended to a family, never reordered. Families, in order: the specials (section
markers, step tokens), the bytes `B00..Bff`, the jump-delta halves `JHxx`/`JLxx`, the frame-base
halves `FHxx`/`FLxx`, the output bytes `Oxx`, one `OP_<name>` per flat opcode (in `Op` order)
and one `TRAP_<name>` per trap kind (in `TRAP_MESSAGES` order).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .program import FLAT_OP_NAMES, Op
from .traps import TRAP_MESSAGES

SECTIONS: tuple[str, ...] = ("PROG", "GLOB", "ARGS", "DATA", "SEG", "TABLE", "INPUT", "RUN")
"""Prompt section markers, in the order they appear in a prompt."""

STEP_SPECIALS: tuple[str, ...] = ("M", "J", "Z", "HALT")

SPECIALS: tuple[str, ...] = SECTIONS + STEP_SPECIALS


def _family(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{v:02x}" for v in range(256))


BYTES = _family("B")
JUMP_HIGH = _family("JH")
JUMP_LOW = _family("JL")
FRAME_HIGH = _family("FH")
FRAME_LOW = _family("FL")
OUTPUT = _family("O")
OPCODES: tuple[str, ...] = tuple(f"OP_{name}" for name in FLAT_OP_NAMES)
TRAPS: tuple[str, ...] = tuple("TRAP_" + m.replace(" ", "_") for m in TRAP_MESSAGES)

VOCAB: tuple[str, ...] = (SPECIALS + BYTES + JUMP_HIGH + JUMP_LOW + FRAME_HIGH + FRAME_LOW
                          + OUTPUT + OPCODES + TRAPS)
"""Every token of the format; a token's id is its index here."""

TOKEN_ID: dict[str, int] = {tok: i for i, tok in enumerate(VOCAB)}
assert len(TOKEN_ID) == len(VOCAB), "vocabulary tokens must be distinct"

TRAP_TOKEN: dict[str, str] = dict(zip(TRAP_MESSAGES, TRAPS))
"""Trap message (traps.py) -> its token."""
TRAP_OF_TOKEN: dict[str, str] = {tok: msg for msg, tok in TRAP_TOKEN.items()}

JUMP_DELTA_MIN = -32768
JUMP_DELTA_MAX = 32767
"""`J JHxx JLyy` encodes the pc delta 256*(xx-128) + yy: 16 bits, two's-complement range."""
FRAME_BASE_MAX = 0xFFFF
"""`FHxx FLyy` encodes the frame base 256*xx + yy."""


def op_token(op: Op) -> str:
    return OPCODES[op]


def byte_tokens(value: int, width: int) -> list[str]:
    """`width` little-endian byte tokens of the unsigned `value` (which must fit)."""
    if not 0 <= value < 1 << (8 * width):
        raise ValueError(f"value {value} does not fit in {width} bytes")
    return [BYTES[(value >> (8 * j)) & 0xFF] for j in range(width)]


def jump_tokens(delta: int) -> list[str]:
    """`J JHxx JLyy` for a pc delta; the caller guarantees the 16-bit range."""
    if not JUMP_DELTA_MIN <= delta <= JUMP_DELTA_MAX:
        raise ValueError(f"jump delta {delta} outside the 16-bit range of J JH JL")
    u = delta + 32768
    return ["J", JUMP_HIGH[u >> 8], JUMP_LOW[u & 0xFF]]


def frame_tokens(fb: int) -> list[str]:
    if not 0 <= fb <= FRAME_BASE_MAX:
        raise ValueError(f"frame base {fb} outside the 16-bit range of FH FL")
    return [FRAME_HIGH[fb >> 8], FRAME_LOW[fb & 0xFF]]


def byte_value(token: str) -> int:
    """The byte a `Bxx` token stands for (ValueError for any other token)."""
    if len(token) != 3 or token[0] != "B":
        raise ValueError(f"expected a byte token Bxx, got {token!r}")
    return int(token[1:], 16)


def family_value(token: str, prefix: str) -> int:
    """The byte of a `<prefix>xx` token (JH, JL, FH, FL, O, B)."""
    if not (token.startswith(prefix) and len(token) == len(prefix) + 2) or token not in TOKEN_ID:
        raise ValueError(f"expected a {prefix}xx token, got {token!r}")
    return int(token[len(prefix):], 16)


def encode(tokens: Iterable[str]) -> list[int]:
    """Token strings -> ids (KeyError names the first unknown token)."""
    out = []
    for tok in tokens:
        try:
            out.append(TOKEN_ID[tok])
        except KeyError:
            raise KeyError(f"{tok!r} is not in the WASM machine's vocabulary") from None
    return out


def decode(ids: Sequence[int]) -> list[str]:
    return [VOCAB[i] for i in ids]
