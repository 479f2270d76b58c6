"""The prompt of the WASM machine: program, globals, arguments, memory, table and input as tokens.

Layout (TRACE_FORMAT.md, "Prompt"):

    PROG  (OP_<op> f0..f9)*          11 tokens per instruction, pc = 0, 1, ...
    GLOB  (b0..b7)*                  initial value of each global
    ARGS  (b0..b7)*                  each argument of the entry function
    DATA  p0 p1 m0 m1 (SEG a0..a3 d*)*   initial/maximum pages, then each active data segment
    TABLE (e0..e5)*                  table 0: entry pc, type id, np, nl per element
    INPUT b*                         the bytes getchar reads
    RUN   FH FL Z* J JH JL           entry frame base NG, its zeroed locals, jump to its entry

The initial state (global values, segment offsets, table contents, memory size) is taken from
an instantiated reference `Machine`, so the prompt cannot disagree with the interpreter about
instantiation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .layout import Layout, TraceFormatError, as_layout, entry_function
from .module import Module
from .numeric import M32, M64
from .reference import DEFAULT_MAX_MEMORY_PAGES, Machine, eval_init
from .vocab import BYTES, OPCODES, byte_tokens, frame_tokens, jump_tokens

NULL_ENTRY = 0xFFFF
"""Entry pc of a null table element."""


def program_tokens(layout: Layout) -> list[str]:
    """The PROG section: `OP_<op>` and the 10 field bytes of every instruction."""
    out = ["PROG"]
    for ins, f in zip(layout.program.code, layout.fields):
        out.append(OPCODES[ins.op])
        out.extend(BYTES[v] for v in f.bytes())
    return out


def _instantiate(layout: Layout, max_memory_pages: int) -> Machine:
    program = layout.program
    if program.start is not None:
        raise TraceFormatError("the module has a start function; token format v1 lays out the "
                               "state before any code runs, so it cannot express one")
    return Machine(program, max_memory_pages=max_memory_pages)


def _table_tokens(layout: Layout, machine: Machine) -> list[str]:
    program = layout.program
    if len(machine.tables) > 1:
        raise TraceFormatError(f"the module has {len(machine.tables)} tables; token format v1 "
                               f"has table 0 only")
    out = ["TABLE"]
    for func in machine.tables[0] if machine.tables else ():
        if func is None:
            out += byte_tokens(NULL_ENTRY, 2) + byte_tokens(0, 4)
            continue
        fn = program.functions[func]
        if fn.entry_pc < 0 or fn.entry_pc >= NULL_ENTRY:
            raise TraceFormatError(f"table element {fn.name} has no entry pc token format v1 "
                                   f"can encode")
        if fn.n_params > 255 or fn.n_locals > 255 or fn.type_id > 0xFFFF:
            raise TraceFormatError(f"table element {fn.name}: {fn.n_params} params / "
                                   f"{fn.n_locals} locals exceed one byte each")
        out += (byte_tokens(fn.entry_pc, 2) + byte_tokens(fn.type_id, 2)
                + byte_tokens(fn.n_params, 1) + byte_tokens(fn.n_locals, 1))
    return out


def _memory_segments(layout: Layout, machine: Machine) -> list[tuple[int, bytes]]:
    """(base, bytes) segments that recreate `machine`'s memory: the module's active segments
    while the memory still equals its instantiated contents, else its non-zero runs (zero runs
    shorter than a segment header are kept inside a segment)."""
    fresh = bytearray(len(machine.memory))
    segments = []
    for seg in layout.program.datas:
        offset = eval_init(seg.offset, machine.globals)
        assert offset is not None
        segments.append((offset, bytes(seg.data)))
        fresh[offset:offset + len(seg.data)] = seg.data
    if fresh == machine.memory:
        return segments
    nonzero = np.flatnonzero(np.frombuffer(bytes(machine.memory), dtype=np.uint8))
    if not len(nonzero):
        return []
    # a new segment where the gap of zeros is 6+ bytes (longer than SEG + 4 address bytes)
    cuts = np.flatnonzero(np.diff(nonzero) > 6) + 1
    starts = np.concatenate(([nonzero[0]], nonzero[cuts]))
    ends = np.concatenate((nonzero[cuts - 1], [nonzero[-1]])) + 1
    return [(int(a), bytes(machine.memory[a:b])) for a, b in zip(starts, ends)]


def build_prompt(program: Module | Layout, entry_func: int | str, args: Sequence[int] = (),
                 input_bytes: bytes = b"", *,
                 max_memory_pages: int = DEFAULT_MAX_MEMORY_PAGES,
                 instance: Machine | None = None, with_program: bool = True) -> list[str]:
    """The prompt tokens for running `entry_func(*args)` on `input_bytes`; it ends with the
    entry (`J JH JL`) of the first step, so the trace continues with that step's body.

    `instance`: lay out the state of this already instantiated (possibly already used)
    `Machine` of the same module instead of a fresh instantiation, so a sequence of
    invocations (the spec suite's) can run one by one. `with_program=False` leaves the `PROG`
    section empty, for a machine with the program baked into its weights (specialize.py)."""
    layout = as_layout(program)
    prog = layout.program
    fn = entry_function(layout, entry_func)
    if len(args) != fn.n_params:
        raise TypeError(f"{fn.name} takes {fn.n_params} arguments, got {len(args)}")
    machine = _instantiate(layout, max_memory_pages) if instance is None else instance

    out = program_tokens(layout) if with_program else ["PROG"]
    out.append("GLOB")
    for g in machine.globals:
        if g is None:
            raise TraceFormatError("a global holds a reference, not an integer")
        out += byte_tokens(g, 8)
    out.append("ARGS")
    frame = layout.frames[fn.index]
    assert frame is not None
    for v, w in zip(args, frame.local_widths):
        out += byte_tokens(int(v) & (M64 if w == 8 else M32), 8)
    out.append("DATA")
    for v, what in ((machine.memory_pages(), "initial memory pages"),
                    (machine.max_pages, "maximum memory pages")):
        if v > 0xFFFF:
            raise TraceFormatError(f"{what} = {v} does not fit two bytes")
        out += byte_tokens(v, 2)
    for offset, data in _memory_segments(layout, machine):
        out.append("SEG")
        out += byte_tokens(offset, 4)
        out.extend(BYTES[b] for b in data)
    out += _table_tokens(layout, machine)
    out.append("INPUT")
    out.extend(BYTES[b] for b in bytes(input_bytes))
    out.append("RUN")
    out += frame_tokens(layout.n_globals)
    out += ["Z"] * fn.n_locals
    out += jump_tokens(fn.entry_pc)  # from pc -1: delta = entry - (-1) - 1
    return out
