"""Static slot layout of a flat program: each instruction's fields S, X, Y (TRACE_FORMAT.md).

The token format needs facts the flat program does not record: the width (4 or 8 bytes) of
every local, global, block result and stack operand, and each frame's offset `FO` to its
operand stack. They are computed here once, from the decoded `Module` (param, local, global and
function types) and a type inference over the flat code, so the prompt builder, the tracer and
the replay checker all read the same table instead of re-deriving it.

Width rules that follow from an opcode's *name* (numeric ops, loads, stores) live in
`fixed_signature`; the replay checker uses them independently of the inference, and building a
layout asserts that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from .module import Module, ValType
from .opcodes import BY_NAME
from .program import IMMEDIATE_OPS, LOAD_OPS, NUMERIC_OPS, STORE_OPS, U32, Instr, Op, Program, flatten
from .vocab import JUMP_DELTA_MAX, JUMP_DELTA_MIN


class TraceFormatError(ValueError):
    """The program uses something token format v1 cannot express (the message says what)."""


_CMP_SUFFIXES = ("eqz", "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s",
                 "ge_u")


def width_of(t: ValType) -> int:
    if t is ValType.I32:
        return 4
    if t is ValType.I64:
        return 8
    raise TraceFormatError(f"value type {t.text} has no place in the integer machine")


def instr_signature(ins: Instr) -> tuple[tuple[int, ...], int] | None:
    """`fixed_signature` of one instruction: an operator with a folded operand (`b = 1` an
    immediate, `b = 2` a local; see `program.IMMEDIATE_OPS`) takes only its first from the
    stack."""
    sig = fixed_signature(ins.op)
    if sig is not None and ins.b and ins.op in IMMEDIATE_OPS:
        return sig[0][:1], sig[1]
    return sig


def fixed_signature(op: Op) -> tuple[tuple[int, ...], int] | None:
    """(operand widths, result width or 0) for an opcode whose widths follow from its name
    (numeric ops, consts, loads, stores, memory.size/grow, putchar, getchar); else None."""
    name = op.text
    if op in NUMERIC_OPS:
        t, _, rest = name.partition(".")
        w = 8 if t == "i64" else 4
        if name == "i32.wrap_i64":
            return (8,), 4
        if name.startswith("i64.extend_i32"):
            return (4,), 8
        pops = BY_NAME[name].pops
        assert pops is not None
        return (w,) * pops, (4 if rest in _CMP_SUFFIXES else w)
    if op in LOAD_OPS:
        return (4,), (8 if name.startswith("i64") else 4)
    if op in STORE_OPS:
        return (4, 8 if name.startswith("i64") else 4), 0
    return {
        Op.I32_CONST: ((), 4), Op.I64_CONST: ((), 8), Op.MEMORY_SIZE: ((), 4),
        Op.MEMORY_GROW: ((4,), 4), Op.PUTCHAR: ((4,), 4), Op.GETCHAR: ((), 4),
    }.get(op)


STORE_BYTES: dict[Op, int] = {
    op: (int(op.text.split("store")[1]) // 8 if op.text.split("store")[1]
         else (8 if op.text.startswith("i64") else 4))
    for op in STORE_OPS
}
"""Bytes a store writes (i32.store8 -> 1, i64.store32 -> 4, i64.store -> 8)."""

MAX_INSTRUCTIONS = JUMP_DELTA_MAX + 1
"""With at most this many instructions every jump delta `target - pc - 1` fits J JH JL."""

JUMPING_ALWAYS = frozenset({Op.BR, Op.BR_TABLE, Op.CALL, Op.CALL_INDIRECT})
"""Steps whose successor is always entered with `J` (return to a caller also jumps)."""


@dataclass(frozen=True)
class Fields:
    """One instruction's prompt fields: `S = f0 + 256 f1`, `X = f2..f5`, `Y = f6..f9`."""

    s: int
    x: int
    y: int

    def bytes(self) -> bytes:
        return self.s.to_bytes(2, "little") + self.x.to_bytes(4, "little") + self.y.to_bytes(4, "little")


@dataclass(frozen=True)
class FrameShape:
    """A function's frame: slot widths of its params + declared locals, and `FO`."""

    n_params: int
    n_locals: int
    local_widths: tuple[int, ...]  # params first
    result_width: int  # 0 for no result

    @property
    def fo(self) -> int:
        return self.n_params + self.n_locals + 1


@dataclass(frozen=True)
class Layout:
    """Everything the token format adds to a flat program (see module doc)."""

    module: Module
    program: Program
    fields: tuple[Fields, ...]  # per pc
    body_width: tuple[int, ...]  # per pc: bytes of the value the step body writes (0: none)
    stack_widths: tuple[tuple[int, ...] | None, ...]  # per pc: operand widths, bottom first
    frames: tuple[FrameShape | None, ...]  # per function index (None: cannot run)
    global_widths: tuple[int, ...]

    @property
    def n_globals(self) -> int:
        return len(self.global_widths)

    def frame_at(self, pc: int) -> FrameShape:
        frame = self.frames[self.program.func_of[pc]]
        assert frame is not None
        return frame


def _local_types(module: Module, index: int) -> tuple[ValType, ...]:
    ftype = module.func_type(index)
    n_imp = module.n_imported_funcs
    declared = module.functions[index - n_imp].locals if index >= n_imp else ()
    return ftype.params + declared


def _infer_stack_types(module: Module, program: Program,
                       local_types: dict[int, tuple[ValType, ...]],
                       global_types: tuple[ValType, ...]) -> list[tuple[ValType, ...] | None]:
    """Operand-stack types before every pc: a forward walk of each function's flat control flow
    graph (validation guarantees every path agrees, which is asserted)."""
    code = program.code
    by_entry = {f.entry_pc: f for f in program.functions if f.entry_pc >= 0}
    types: list[tuple[ValType, ...] | None] = [None] * len(code)
    I32, I64 = ValType.I32, ValType.I64

    def push_state(pc: int, stack: tuple[ValType, ...], work: list[int]) -> None:
        old = types[pc]
        if old is None:
            types[pc] = stack
            work.append(pc)
        elif old != stack:
            raise AssertionError(f"pc {pc}: operand types disagree ({old} vs {stack})")

    for fn in program.functions:
        if fn.entry_pc < 0:
            continue
        work: list[int] = []
        push_state(fn.entry_pc, (), work)
        locs = local_types[fn.index]
        while work:
            pc = work.pop()
            st = list(types[pc])  # type: ignore[arg-type]
            ins = code[pc]
            op = ins.op
            nxt: list[tuple[int, tuple[ValType, ...]]] = []
            sig = instr_signature(ins)
            if sig is not None:
                widths, res = sig
                if widths:
                    del st[len(st) - len(widths):]
                if res:
                    if op in NUMERIC_OPS or op in LOAD_OPS:
                        st.append(I64 if res == 8 else I32)
                    else:
                        st.append(I64 if op == Op.I64_CONST else I32)
                nxt.append((pc + 1, tuple(st)))
            elif op == Op.LOCAL_GET:
                nxt.append((pc + 1, tuple(st + [locs[ins.a]])))
            elif op == Op.LOCAL_SET:
                nxt.append((pc + 1, tuple(st[:-1])))
            elif op == Op.LOCAL_TEE:
                nxt.append((pc + 1, tuple(st)))
            elif op == Op.GLOBAL_GET:
                nxt.append((pc + 1, tuple(st + [global_types[ins.a]])))
            elif op == Op.GLOBAL_SET:
                nxt.append((pc + 1, tuple(st[:-1])))
            elif op == Op.DROP:
                nxt.append((pc + 1, tuple(st[:-1])))
            elif op == Op.SELECT:
                nxt.append((pc + 1, tuple(st[:-2])))
            elif op in (Op.BR, Op.BR_IF):
                if op == Op.BR_IF:
                    st.pop()
                    nxt.append((pc + 1, tuple(st)))
                kept = st[len(st) - ins.b:] if ins.b else []
                nxt.append((ins.a, tuple(st[:ins.c] + kept)))
            elif op == Op.IF:
                st.pop()
                nxt += [(pc + 1, tuple(st)), (ins.a, tuple(st))]
            elif op == Op.BR_TABLE:
                st.pop()
                nxt += [(pc + 1 + k, tuple(st)) for k in range(ins.a + 1)]
            elif op in (Op.RETURN, Op.UNREACHABLE):
                pass
            elif op in (Op.CALL, Op.CALL_INDIRECT, Op.CALL_HOST):
                if op == Op.CALL:
                    callee = by_entry.get(ins.a)
                    if callee is None:
                        raise TraceFormatError(f"pc {pc} calls a function the machine cannot run")
                    ftype = program.types[callee.type_id]
                elif op == Op.CALL_INDIRECT:
                    ftype = program.types[ins.a]
                    st.pop()
                else:
                    ftype = module.func_type(ins.a)
                if ftype.params:
                    del st[len(st) - len(ftype.params):]
                nxt.append((pc + 1, tuple(st + list(ftype.results))))
            else:  # pragma: no cover - every flat opcode is handled above
                raise AssertionError(f"no typing rule for {op.text}")
            for target, stack in nxt:
                if target < len(code) and program.func_of[target] == fn.index:
                    push_state(target, stack, work)
                else:  # pragma: no cover - the flattener keeps branches inside functions
                    raise AssertionError(f"pc {pc}: edge to {target} leaves function {fn.name}")
    return types


def _jump_delta(pc: int, target: int, what: str) -> int:
    delta = target - pc - 1
    if not JUMP_DELTA_MIN <= delta <= JUMP_DELTA_MAX:
        raise TraceFormatError(f"pc {pc}: {what} jumps {delta} instructions, beyond the 16-bit "
                               f"range of J JH JL (program too large for token format v1)")
    return delta & U32


def _check16(value: int, what: str, pc: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise TraceFormatError(f"pc {pc}: {what} = {value} does not fit the 16-bit field of "
                               f"token format v1")
    return value


def build_layout(module: Module, program: Program | None = None) -> Layout:  # noqa: C901
    """Fields and widths of every instruction (raises TraceFormatError for what v1 cannot say)."""
    program = flatten(module) if program is None else program
    if len(program.code) > MAX_INSTRUCTIONS:
        raise TraceFormatError(f"the program has {len(program.code)} instructions; token format "
                               f"v1 jumps at most {JUMP_DELTA_MAX} instructions, so it takes "
                               f"at most {MAX_INSTRUCTIONS}")
    g_types = tuple(g.type.valtype for g in program.globals)
    global_widths = tuple(width_of(t) for t in g_types)
    local_types: dict[int, tuple[ValType, ...]] = {}
    frames: list[FrameShape | None] = []
    for fn in program.functions:
        if fn.entry_pc < 0:
            frames.append(None)
            continue
        if fn.imported is not None and fn.imported not in (("env", "putchar"), ("env", "getchar")):
            raise TraceFormatError(f"import {'.'.join(fn.imported)}: the token machine's only host "
                                   f"functions are env.putchar and env.getchar")
        ftype = program.types[fn.type_id]
        if len(ftype.results) > 1:
            raise TraceFormatError(f"function {fn.name} returns {len(ftype.results)} values; "
                                   f"token format v1 carries at most one")
        locs = _local_types(module, fn.index)
        local_types[fn.index] = locs
        frames.append(FrameShape(fn.n_params, fn.n_locals, tuple(width_of(t) for t in locs),
                                 width_of(ftype.results[0]) if ftype.results else 0))
    types = _infer_stack_types(module, program, local_types, g_types)

    fields: list[Fields] = []
    body_width: list[int] = []
    for pc, ins in enumerate(program.code):
        op, a, b, c = ins.op, ins.a, ins.b, ins.c
        fn = program.functions[program.func_of[pc]]
        frame = frames[fn.index]
        assert frame is not None
        st = types[pc]
        if st is None:  # pragma: no cover - the flattener drops code no path reaches
            raise AssertionError(f"pc {pc} is not reachable in its function's control flow")
        if len(st) != program.heights[pc]:  # pragma: no cover
            raise AssertionError(f"pc {pc}: inferred height {len(st)} != {program.heights[pc]}")
        ws = tuple(width_of(t) for t in st)
        h = len(ws)
        x = y = 0
        w = 0
        sig = instr_signature(ins)
        if sig is not None:
            widths, w = sig
            pops = len(widths)
            if ws[h - pops:] != widths:  # pragma: no cover - name rules vs inference
                raise AssertionError(f"pc {pc} {op.text}: operand widths {ws[h - pops:]} "
                                     f"!= {widths}")
            if op in STORE_OPS:
                w = STORE_BYTES[op]
            if op in (Op.I32_CONST, Op.I64_CONST) or (op in IMMEDIATE_OPS and b):
                x, y = a, b  # the value (an i64's two words), or a folded operand and its kind
            elif op in LOAD_OPS or op in STORE_OPS:
                x = a
        elif op in (Op.LOCAL_GET, Op.LOCAL_SET, Op.LOCAL_TEE):
            pops = 0 if op == Op.LOCAL_GET else 1
            x, y = a, frame.local_widths[a]
            w = y
        elif op in (Op.GLOBAL_GET, Op.GLOBAL_SET):
            pops = 0 if op == Op.GLOBAL_GET else 1
            x, y = a, global_widths[a]
            w = y
        elif op == Op.DROP:
            pops, y = 1, ws[-1]
        elif op == Op.SELECT:
            pops, y = 3, ws[-3]
            w = y
        elif op in (Op.BR, Op.BR_IF):
            pops = 1 if op == Op.BR_IF else 0
            x = _jump_delta(pc, a, op.text)
            if b > 1:
                raise TraceFormatError(f"pc {pc}: {op.text} carries {b} values; token format v1 "
                                       f"carries at most one")
            s = frame.fo + h - pops
            dst = frame.fo + c
            if b == 1 and s - 1 != dst:
                w = ws[h - pops - 1]
                y = _check16(dst, "branch destination slot", pc) + 65536 * w
        elif op == Op.IF:
            pops = 1
            x = _jump_delta(pc, a, "if")
        elif op == Op.BR_TABLE:
            pops = 1
            x = a
            if a > JUMP_DELTA_MAX:
                raise TraceFormatError(f"pc {pc}: br_table with {a} entries exceeds J JH JL")
        elif op == Op.RETURN:
            pops = a
            w = frame.result_width if a else 0
            y = a + 256 * w
        elif op == Op.CALL:
            callee = next(f for f in program.functions if f.entry_pc == a)
            pops = callee.n_params
            x = _jump_delta(pc, a, "call")
            if callee.n_params > 255:
                raise TraceFormatError(f"pc {pc}: callee {callee.name} has {callee.n_params} "
                                       f"params; token format v1 allows 255")
            y = callee.n_params + 256 * callee.n_locals
        elif op == Op.CALL_INDIRECT:
            if b != 0:
                raise TraceFormatError(f"pc {pc}: call_indirect through table {b}; token format "
                                       f"v1 has table 0 only")
            n_params = len(program.types[a].params)
            pops = n_params + 1
            x = _check16(a, "type id", pc)
            y = n_params
        elif op in (Op.UNREACHABLE,):
            pops = 0
        else:  # pragma: no cover - CALL_HOST is refused above (only putchar/getchar imports)
            raise TraceFormatError(f"pc {pc}: {op.text} has no form in token format v1")
        s = _check16(frame.fo + h - pops, "S (operand slot offset)", pc)
        fields.append(Fields(s, x, y))
        body_width.append(w)
    return Layout(module, program, tuple(fields), tuple(body_width),
                  tuple(tuple(width_of(t) for t in st) if st is not None else None
                        for st in types),
                  tuple(frames), global_widths)


def as_layout(program: Module | Layout) -> Layout:
    """Accept a decoded module or an already built layout."""
    if isinstance(program, Layout):
        return program
    if isinstance(program, Module):
        return build_layout(program)
    raise TypeError("expected a decoded Module (frontend.load_program) or a Layout, got "
                    f"{type(program).__name__}")


def entry_function(layout: Layout, entry: int | str):
    """The FlatFunction an entry name (export) or index denotes."""
    program = layout.program
    index = program.export_func(entry) if isinstance(entry, str) else entry
    fn = program.functions[index]
    if fn.entry_pc < 0:
        raise TraceFormatError(f"function {fn.name} cannot run here: {fn.unsupported}")
    return fn


__all__ = ["Layout", "Fields", "FrameShape", "TraceFormatError", "build_layout", "as_layout",
           "fixed_signature", "instr_signature", "STORE_BYTES", "entry_function", "width_of"]
