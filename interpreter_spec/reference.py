"""Plain-Python reference interpreter of the flat program (`program.Program`).

`Machine` holds the whole machine state (operand stack, locals, call frames, globals, tables,
linear memory, input/output) in plain attributes. Two executors share that state:

* `Machine.run` is the fast loop: one function, every hot value in a local variable, opcodes
  tested in order of measured frequency. It observes nothing and records nothing.
* `stepper.Stepper` executes one instruction at a time and returns a `StepRecord`; tracing
  lives there so it costs the untraced run nothing.

Values are unsigned bit patterns (see numeric.py). The operand stack is one list shared by all
frames; a frame's operand stack starts at `base`, so the static heights in the program are
`len(stack) - base`. A frame is saved on call as (return pc, caller's locals, caller's base).
"""

from __future__ import annotations

import struct
from typing import Callable, Mapping, Sequence

from .module import InitExpr, InitKind
from .numeric import BINARY, LOADS, M32, M64, STORES, UNARY
from .program import FlatFunction, Op, Program
from .traps import (
    CALL_STACK_EXHAUSTED,
    INDIRECT_CALL_TYPE_MISMATCH,
    OUT_OF_BOUNDS_MEMORY,
    OUT_OF_BOUNDS_TABLE,
    UNDEFINED_ELEMENT,
    UNINITIALIZED_ELEMENT,
    UNREACHABLE,
    StepLimitExceeded,
    Trap,
    UnsupportedAtRuntime,
)

PAGE_SIZE = 65536
DEFAULT_MAX_CALL_DEPTH = 10_000
"""Function activations (the invoked function included) allowed at once; one more call traps
with "call stack exhausted" (the spec leaves the limit to the host)."""
DEFAULT_MAX_MEMORY_PAGES = 1024
"""memory.grow fails (returns -1) beyond this many pages (64 MiB) even if the module allows
more; the spec permits growth to fail, and it keeps a runaway program from eating the host."""

HostFunc = Callable[..., "int | Sequence[int] | None"]
"""An imported function: called with the argument bit patterns, returns the result(s)."""

_PACK = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}
_UNPACK_S = {1: struct.Struct("<b"), 2: struct.Struct("<h"), 4: struct.Struct("<i"), 8: struct.Struct("<q")}


def eval_init(expr: InitExpr, globals_: Sequence[int | None]) -> int | None:
    if expr.kind is InitKind.CONST:
        return expr.value
    if expr.kind is InitKind.GLOBAL_GET:
        return globals_[expr.value]
    if expr.kind is InitKind.REF_FUNC:
        return expr.value
    return None  # ref.null


def _is_bounds_error(exc: struct.error) -> bool:
    return "requires a buffer" in str(exc)


class Machine:
    """An instantiated program. Instantiation (globals, memory, tables, active segments, start
    function) happens in the constructor and may raise `Trap`."""

    def __init__(self, program: Program, *, input: bytes = b"",
                 host: Mapping[tuple[str, str], HostFunc | int] | None = None,
                 max_call_depth: int = DEFAULT_MAX_CALL_DEPTH,
                 max_memory_pages: int = DEFAULT_MAX_MEMORY_PAGES) -> None:
        self.program = program
        self.input = bytes(input)
        self.input_pos = 0
        self.output = bytearray()
        self.max_call_depth = max_call_depth
        self.steps = 0  # instructions executed so far (all invocations)
        host = dict(host or {})
        self._host_funcs: dict[int, HostFunc] = {}
        for fn in program.functions:
            if fn.imported is not None and fn.imported in host:
                self._host_funcs[fn.index] = host[fn.imported]  # type: ignore[assignment]
        self._entry_to_func = {f.entry_pc: f for f in program.functions if f.entry_pc >= 0}

        # globals (imported ones come from `host`)
        self.globals: list[int | None] = []
        for g in program.globals:
            if g.imported is not None:
                if g.imported not in host:
                    raise UnsupportedAtRuntime(f"imported global {'.'.join(g.imported)} was not provided")
                self.globals.append(int(host[g.imported]))  # type: ignore[arg-type]
            else:
                assert g.init is not None
                self.globals.append(eval_init(g.init, self.globals))

        # memory
        if program.memory_import is not None:
            raise UnsupportedAtRuntime(f"imported memory {'.'.join(program.memory_import)}")
        limits = program.memory
        self.memory = bytearray(limits.minimum * PAGE_SIZE if limits else 0)
        spec_max = 65536 if limits is None or limits.maximum is None else limits.maximum
        self.max_pages = min(spec_max, max_memory_pages) if limits else 0

        # tables
        if any(t is not None for t in program.table_imports):
            raise UnsupportedAtRuntime("imported tables")
        self.tables: list[list[int | None]] = [[None] * t.limits.minimum for t in program.tables]

        # execution state (see class doc); set up by `begin`
        self.stack: list[int] = []
        self.locals: list[int] = []
        self.frames: list[tuple[int, list[int], int]] = []
        self.base = 0
        self.pc = -1
        self.done = True
        self.results: tuple[int, ...] = ()
        self._code = self._prepare()

        for seg in program.elems:
            offset = eval_init(seg.offset, self.globals)
            table = self.tables[seg.table]
            if offset + len(seg.funcs) > len(table):
                raise Trap(OUT_OF_BOUNDS_TABLE)
            table[offset:offset + len(seg.funcs)] = list(seg.funcs)
        for data in program.datas:
            offset = eval_init(data.offset, self.globals)
            if offset + len(data.data) > len(self.memory):
                raise Trap(OUT_OF_BOUNDS_MEMORY)
            self.memory[offset:offset + len(data.data)] = data.data
        if program.start is not None:
            self.invoke(program.start)

    # -- calling in ---------------------------------------------------------------------------
    def function(self, func: int | str) -> FlatFunction:
        index = self.program.export_func(func) if isinstance(func, str) else func
        return self.program.functions[index]

    def begin(self, func: int | str, args: Sequence[int] = ()) -> None:
        """Set up a fresh outermost frame for `func` (export name or index) with `args`."""
        fn = self.function(func)
        if fn.entry_pc < 0:
            raise UnsupportedAtRuntime(f"function {fn.name} cannot run here: {fn.unsupported}")
        if len(args) != fn.n_params:
            raise TypeError(f"{fn.name} takes {fn.n_params} arguments, got {len(args)}")
        ptypes = self.program.types[fn.type_id].params
        masks = [M64 if t.name == "I64" else M32 for t in ptypes]
        self.stack = []
        self.base = 0
        self.frames = []
        self.locals = [int(v) & m for v, m in zip(args, masks)] + [0] * fn.n_locals
        self.pc = fn.entry_pc
        self.done = False
        self.results = ()

    def invoke(self, func: int | str, args: Sequence[int] = (), *,
               max_steps: int | None = None) -> tuple[int, ...]:
        """Run `func` to completion and return its results (bit patterns). Raises `Trap`."""
        self.begin(func, args)
        self.run(max_steps)
        return self.results

    def func_at(self, pc: int) -> FlatFunction:
        return self.program.functions[self.program.func_of[pc]]

    def memory_pages(self) -> int:
        return len(self.memory) // PAGE_SIZE

    def grow_memory(self, delta: int) -> int:
        """memory.grow semantics: old size in pages, or 0xFFFFFFFF if it cannot grow."""
        old = len(self.memory) // PAGE_SIZE
        if old + delta > self.max_pages:
            return M32
        self.memory.extend(bytes(delta * PAGE_SIZE))
        return old

    def call_host(self, index: int, args: Sequence[int]) -> tuple[int, ...]:
        fn = self.program.functions[index]
        impl = self._host_funcs.get(index)
        if impl is None:
            name = ".".join(fn.imported) if fn.imported else fn.name
            raise UnsupportedAtRuntime(f"host function {name} was not provided")
        out = impl(*args)
        if out is None:
            out = ()
        elif isinstance(out, int):
            out = (out,)
        results = self.program.types[fn.type_id].results
        if len(out) != len(results):
            raise TypeError(f"host function {fn.name} returned {len(out)} values, "
                            f"expected {len(results)}")
        return tuple(int(v) & (M64 if t.name == "I64" else M32) for v, t in zip(out, results))

    def indirect_target(self, table: int, index: int, type_id: int) -> FlatFunction:
        """call_indirect's table look-up and type check (raises the spec's traps)."""
        tab = self.tables[table]
        if index >= len(tab):
            raise Trap(UNDEFINED_ELEMENT)
        func = tab[index]
        if func is None:
            raise Trap(UNINITIALIZED_ELEMENT)
        fn = self.program.functions[func]
        if fn.type_id != type_id:
            raise Trap(INDIRECT_CALL_TYPE_MISMATCH)
        if fn.entry_pc < 0:
            raise UnsupportedAtRuntime(f"function {fn.name} cannot run here: {fn.unsupported}")
        return fn

    # -- the fast loop ------------------------------------------------------------------------
    _JUMP = len(Op)  # br whose stack adjustment is statically a no-op
    _BR_IF_JUMP = len(Op) + 1  # br_if likewise
    _BR1 = len(Op) + 2  # br carrying exactly one value

    def _prepare(self) -> list[tuple[int, int, int, int]]:
        """Per-pc tuples for the run loop, 1:1 with the program (so step counts match), with
        branches whose adjustment is a no-op marked so the loop can skip it."""
        p = self.program
        out = []
        for pc, ins in enumerate(p.code):
            op, a, b, c = int(ins.op), ins.a, ins.b, ins.c
            if op == Op.BR or op == Op.BR_IF:
                after = p.heights[pc] - (1 if op == Op.BR_IF else 0)
                if after == b + c:
                    op = self._JUMP if op == Op.BR else self._BR_IF_JUMP
                elif op == Op.BR and b == 1:
                    op = self._BR1
            elif op == Op.I64_CONST:
                a = a | (b << 32)
            out.append((op, a, b, c))
        return out

    def run(self, max_steps: int | None = None) -> None:  # noqa: C901 - deliberately one loop
        """Execute until the outermost frame returns (sets `done`, `results`).

        `max_steps` bounds the instructions this call may execute; it is checked at calls and
        taken branches, so a run stops within one straight-line stretch of the limit.
        """
        if self.done:
            return
        code = self._code
        st = self.stack
        push = st.append
        pop = st.pop
        loc = self.locals
        frames = self.frames
        base = self.base
        pc = self.pc
        mem = self.memory
        globs = self.globals
        limit = (1 << 62) if max_steps is None else max_steps
        max_depth = self.max_call_depth - 1  # saved frames: the running one is not among them
        binary = [BINARY.get(op) for op in range(len(Op) + 3)]
        unary = [UNARY.get(op) for op in range(len(Op) + 3)]
        loads = [None] * (len(Op) + 3)
        for op, (width, signed_, mask) in LOADS.items():
            s = _UNPACK_S[width] if signed_ else _PACK[width]
            loads[op] = (s.unpack_from, mask)
        stores = [None] * (len(Op) + 3)
        for op, width in STORES.items():
            stores[op] = (_PACK[width].pack_into, (1 << (8 * width)) - 1)
        u32 = _PACK[4].unpack_from
        p32 = _PACK[4].pack_into
        u8 = _PACK[1].unpack_from
        p8 = _PACK[1].pack_into

        LOCAL_GET = Op.LOCAL_GET.value
        LOCAL_SET = Op.LOCAL_SET.value
        LOCAL_TEE = Op.LOCAL_TEE.value
        I32_CONST = Op.I32_CONST.value
        I32_ADD = Op.I32_ADD.value
        I32_SUB = Op.I32_SUB.value
        I32_AND = Op.I32_AND.value
        I32_XOR = Op.I32_XOR.value
        I32_SHL = Op.I32_SHL.value
        I32_EQZ = Op.I32_EQZ.value
        I32_EQ = Op.I32_EQ.value
        I32_NE = Op.I32_NE.value
        I32_LT_S = Op.I32_LT_S.value
        I32_LT_U = Op.I32_LT_U.value
        I32_LOAD = Op.I32_LOAD.value
        I32_STORE = Op.I32_STORE.value
        I32_LOAD8_U = Op.I32_LOAD8_U.value
        I32_STORE8 = Op.I32_STORE8.value
        GLOBAL_GET = Op.GLOBAL_GET.value
        GLOBAL_SET = Op.GLOBAL_SET.value
        I64_CONST = Op.I64_CONST.value
        BR = Op.BR.value
        BR_IF = Op.BR_IF.value
        IF = Op.IF.value
        BR_TABLE = Op.BR_TABLE.value
        RETURN = Op.RETURN.value
        CALL = Op.CALL.value
        CALL_INDIRECT = Op.CALL_INDIRECT.value
        SELECT = Op.SELECT.value
        DROP = Op.DROP.value
        UNREACHABLE_OP = Op.UNREACHABLE.value
        PUTCHAR = Op.PUTCHAR.value
        GETCHAR = Op.GETCHAR.value
        CALL_HOST = Op.CALL_HOST.value
        MEMORY_SIZE = Op.MEMORY_SIZE.value
        MEMORY_GROW = Op.MEMORY_GROW.value
        JUMP = self._JUMP
        BR_IF_JUMP = self._BR_IF_JUMP
        BR1 = self._BR1

        n = self.steps
        start_steps = n
        limit += n
        try:
            while True:
                op, a, b, c = code[pc]
                pc += 1
                n += 1
                if op == LOCAL_GET:
                    push(loc[a])
                elif op == I32_CONST:
                    push(a)
                elif op == I32_ADD:
                    y = pop() if not b else a if b == 1 else loc[a]  # see program.IMMEDIATE_OPS
                    st[-1] = (st[-1] + y) & 0xFFFFFFFF
                elif op == LOCAL_TEE:
                    loc[a] = st[-1]
                elif op == LOCAL_SET:
                    loc[a] = pop()
                elif op == BR_IF_JUMP:
                    if pop():
                        pc = a
                        if n > limit:
                            raise StepLimitExceeded
                elif op == I32_LOAD:
                    st[-1] = u32(mem, st[-1] + a)[0]
                elif op == I32_STORE:
                    v = pop()
                    p32(mem, pop() + a, v)
                elif op == JUMP:
                    pc = a
                    if n > limit:
                        raise StepLimitExceeded
                elif op == I64_CONST:
                    push(a)
                elif op == I32_XOR:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] ^= y
                elif op == I32_AND:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] &= y
                elif op == IF:
                    if not pop():
                        pc = a
                elif op == I32_SHL:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] = (st[-1] << (y & 31)) & 0xFFFFFFFF
                elif op == I32_EQZ:
                    st[-1] = 0 if st[-1] else 1
                elif op == I32_NE:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] = 1 if st[-1] != y else 0
                elif op == I32_EQ:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] = 1 if st[-1] == y else 0
                elif op == I32_LT_S:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] = 1 if (st[-1] ^ 0x80000000) < (y ^ 0x80000000) else 0
                elif op == I32_LT_U:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] = 1 if st[-1] < y else 0
                elif op == I32_SUB:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] = (st[-1] - y) & 0xFFFFFFFF
                elif op == I32_LOAD8_U:
                    st[-1] = u8(mem, st[-1] + a)[0]
                elif op == I32_STORE8:
                    v = pop()
                    p8(mem, pop() + a, v & 0xFF)
                elif op == GLOBAL_GET:
                    push(globs[a])
                elif op == GLOBAL_SET:
                    globs[a] = pop()
                elif op == SELECT:
                    cond = pop()
                    y = pop()
                    if not cond:
                        st[-1] = y
                elif op == CALL:
                    if len(frames) >= max_depth:
                        raise Trap(CALL_STACK_EXHAUSTED)
                    if a == 0xFFFFFFFF:
                        raise UnsupportedAtRuntime("call of a function the machine cannot run")
                    frames.append((pc, loc, base))
                    if b:
                        loc = st[-b:]
                        del st[-b:]
                        if c:
                            loc.extend([0] * c)
                    else:
                        loc = [0] * c
                    base = len(st)
                    pc = a
                    if n > limit:
                        raise StepLimitExceeded
                elif op == RETURN:
                    if a == 1:
                        v = st[-1]
                        del st[base:]
                        push(v)
                    elif a:
                        vals = st[-a:]
                        del st[base:]
                        st.extend(vals)
                    else:
                        del st[base:]
                    if not frames:
                        self.done = True
                        self.results = tuple(st)
                        pc -= 1
                        break
                    pc, loc, base = frames.pop()
                elif op == DROP:
                    pop()
                elif op == BR_IF:
                    if pop():
                        if b:
                            vals = st[-b:]
                            del st[base + c:]
                            st.extend(vals)
                        else:
                            del st[base + c:]
                        pc = a
                        if n > limit:
                            raise StepLimitExceeded
                elif op == BR1:
                    v = st[-1]
                    del st[base + c:]
                    push(v)
                    pc = a
                    if n > limit:
                        raise StepLimitExceeded
                elif op == BR:
                    if b:
                        vals = st[-b:]
                        del st[base + c:]
                        st.extend(vals)
                    else:
                        del st[base + c:]
                    pc = a
                    if n > limit:
                        raise StepLimitExceeded
                elif op == BR_TABLE:
                    i = pop()
                    pc += i if i < a else a
                    if n > limit:
                        raise StepLimitExceeded
                elif binary[op] is not None:
                    y = pop() if not b else a if b == 1 else loc[a]
                    st[-1] = binary[op](st[-1], y)
                elif unary[op] is not None:
                    st[-1] = unary[op](st[-1])
                elif loads[op] is not None:
                    unpack, mask = loads[op]
                    st[-1] = unpack(mem, st[-1] + a)[0] & mask
                elif stores[op] is not None:
                    pack, mask = stores[op]
                    v = pop()
                    pack(mem, pop() + a, v & mask)
                elif op == CALL_INDIRECT:
                    fn = self.indirect_target(b, pop(), a)
                    if len(frames) >= max_depth:
                        raise Trap(CALL_STACK_EXHAUSTED)
                    frames.append((pc, loc, base))
                    k = fn.n_params
                    if k:
                        loc = st[-k:]
                        del st[-k:]
                        loc.extend([0] * fn.n_locals)
                    else:
                        loc = [0] * fn.n_locals
                    base = len(st)
                    pc = fn.entry_pc
                    if n > limit:
                        raise StepLimitExceeded
                elif op == PUTCHAR:
                    v = st[-1] & 0xFF
                    st[-1] = v
                    self.output.append(v)
                elif op == GETCHAR:
                    if self.input_pos < len(self.input):
                        push(self.input[self.input_pos])
                        self.input_pos += 1
                    else:
                        push(0xFFFFFFFF)
                elif op == MEMORY_SIZE:
                    push(len(mem) // PAGE_SIZE)
                elif op == MEMORY_GROW:
                    st[-1] = self.grow_memory(st[-1])
                elif op == CALL_HOST:
                    k = self.program.functions[a].n_params
                    args = st[len(st) - k:]
                    del st[len(st) - k:]
                    st.extend(self.call_host(a, args))
                elif op == UNREACHABLE_OP:
                    raise Trap(UNREACHABLE)
                else:  # pragma: no cover - every flat opcode is handled above
                    raise AssertionError(f"run loop has no case for opcode {op}")
        except struct.error as exc:
            if not _is_bounds_error(exc):
                raise
            self._save(pc - 1, st, loc, frames, base, n)
            raise self._located(Trap(OUT_OF_BOUNDS_MEMORY), pc - 1) from None
        except Trap as exc:
            self._save(pc - 1, st, loc, frames, base, n)
            raise self._located(exc, pc - 1) from None
        except StepLimitExceeded:
            self._save(pc, st, loc, frames, base, n)
            raise StepLimitExceeded(
                f"stopped after {n - start_steps} instructions (limit {max_steps})") from None
        self._save(pc, st, loc, frames, base, n)

    def _save(self, pc: int, st: list[int], loc: list[int],
              frames: list[tuple[int, list[int], int]], base: int, n: int) -> None:
        self.pc, self.stack, self.locals, self.frames, self.base, self.steps = (
            pc, st, loc, frames, base, n)

    def _located(self, trap: Trap, pc: int) -> Trap:
        if 0 <= pc < len(self.program.code):
            trap.pc = pc
            trap.func = self.func_at(pc).name
        return trap
