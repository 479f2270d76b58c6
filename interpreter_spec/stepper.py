"""Traced execution: one flat instruction at a time, each step described by a `StepRecord`.

This is the observer's view of the machine (the trace format is built on it); it is a separate
executor over the same `Machine` state so the fast `Machine.run` loop stays free of any
recording. Tests hold the two executors to identical results, outputs, memory and step counts.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Callable, Iterator, Sequence

from .numeric import BINARY, LOADS, M32, STORES, UNARY
from .program import Op
from .reference import Machine
from .traps import (
    CALL_STACK_EXHAUSTED,
    OUT_OF_BOUNDS_MEMORY,
    UNREACHABLE,
    StepLimitExceeded,
    Trap,
    UnsupportedAtRuntime,
)


@dataclass(frozen=True)
class MemAccess:
    """`size` bytes at `address`, read or written as the little-endian unsigned `value`."""

    address: int
    size: int
    value: int


@dataclass(frozen=True)
class StepRecord:
    """Everything one executed instruction did.

    `popped`/`pushed` list operand-stack values in stack order (bottom first). A branch that cuts
    the stack pops everything above its target height and pushes back the carried values; `call`
    pops its arguments (they become the callee's first locals; the rest start at 0); `return`
    pops the callee's whole operand stack and pushes the results onto the caller's.
    `taken` (br, br_if, if, br_table only): whether it jumped — `if` jumps when its condition is
    zero; `br` and `br_table` always jump. `next_pc` is -1 when this step returned from the
    invoked function. `input_byte` is -1 when getchar hit the end of input.
    """

    step: int  # index of this instruction in the machine's run (Machine.steps before it)
    pc: int
    op: Op
    depth: int  # call depth before the step (0: the invoked function)
    popped: tuple[int, ...]
    pushed: tuple[int, ...]
    next_pc: int
    taken: bool | None = None
    local_write: tuple[int, int] | None = None  # (local index, value)
    global_write: tuple[int, int] | None = None  # (global index, value)
    mem_read: MemAccess | None = None
    mem_write: MemAccess | None = None
    output_byte: int | None = None
    input_byte: int | None = None


_NO_EFFECTS = {f.name: f.default for f in fields(StepRecord) if f.default is not MISSING}


def _record(step: int, pc: int, op: Op, depth: int, popped: tuple[int, ...],
            pushed: tuple[int, ...], next_pc: int, effects: dict | None) -> StepRecord:
    """Build a StepRecord without the frozen dataclass __init__ (one object.__setattr__ per
    field made it the stepper's main cost); the result is an ordinary, equal instance."""
    values = dict(_NO_EFFECTS, step=step, pc=pc, op=op, depth=depth, popped=popped,
                  pushed=pushed, next_pc=next_pc)
    if effects:
        values.update(effects)
    record = object.__new__(StepRecord)
    record.__dict__.update(values)
    return record


class Stepper:
    """Executes `machine` one instruction per `step()` call (after `machine.begin(...)`).

    One handler per opcode; a handler updates the machine and returns (popped, pushed,
    effects), where effects names the optional StepRecord fields it sets."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        handlers: dict[Op, Callable] = {
            Op.I32_CONST: self._const, Op.I64_CONST: self._const,
            Op.LOCAL_GET: self._local_get, Op.LOCAL_SET: self._local_set,
            Op.LOCAL_TEE: self._local_set, Op.GLOBAL_GET: self._global_get,
            Op.GLOBAL_SET: self._global_set, Op.MEMORY_SIZE: self._memory_size,
            Op.MEMORY_GROW: self._memory_grow, Op.DROP: self._drop, Op.SELECT: self._select,
            Op.BR: self._branch, Op.BR_IF: self._branch, Op.IF: self._if,
            Op.BR_TABLE: self._br_table, Op.RETURN: self._return, Op.CALL: self._call,
            Op.CALL_INDIRECT: self._call_indirect, Op.PUTCHAR: self._putchar,
            Op.GETCHAR: self._getchar, Op.CALL_HOST: self._call_host,
            Op.UNREACHABLE: self._unreachable,
        }
        handlers.update({op: self._binary for op in BINARY})
        handlers.update({op: self._unary for op in UNARY})
        handlers.update({op: self._load for op in LOADS})
        handlers.update({op: self._store for op in STORES})
        missing = set(Op) - set(handlers)
        assert not missing, f"stepper has no handler for {missing}"
        self._handlers = [handlers[op] for op in sorted(handlers)]
        self._binary_fns = [BINARY.get(op) for op in Op]
        self._unary_fns = [UNARY.get(op) for op in Op]

    def step(self) -> StepRecord:
        m = self.m
        if m.done:
            raise RuntimeError("nothing to run: call machine.begin(func, args) first")
        pc = m.pc
        step_index = m.steps
        m.steps += 1
        ins = m.program.code[pc]
        depth = len(m.frames)
        m.pc = pc + 1
        try:
            popped, pushed, effects = self._handlers[ins.op](ins, pc)
        except Trap as trap:
            m.pc = pc  # as the run loop leaves it: at the trapping instruction
            if trap.pc is None:
                trap.pc, trap.func = pc, m.func_at(pc).name
            raise
        return _record(step_index, pc, ins.op, depth, popped, pushed, m.pc, effects)

    def run(self, max_steps: int | None = None) -> Iterator[StepRecord]:
        """Step until the invoked function returns, yielding every record. `max_steps` bounds
        the steps of this call (StepLimitExceeded once exceeded)."""
        budget = (1 << 62) if max_steps is None else max_steps
        stop_at = self.m.steps + budget
        while not self.m.done:
            if self.m.steps >= stop_at:
                raise StepLimitExceeded(f"stopped after {budget} instructions")
            yield self.step()

    # -- helpers ------------------------------------------------------------------------------
    def _pop(self, k: int) -> tuple[int, ...]:
        st = self.m.stack
        if k == 0:
            return ()
        vals = tuple(st[len(st) - k:])
        del st[len(st) - k:]
        return vals

    def _check_bounds(self, address: int, size: int) -> None:
        if address + size > len(self.m.memory):
            raise Trap(OUT_OF_BOUNDS_MEMORY)

    def _enter(self, entry_pc: int, n_params: int, n_locals: int, return_pc: int) -> tuple[int, ...]:
        """Push a frame for a callee; returns the arguments it popped."""
        m = self.m
        if len(m.frames) + 1 >= m.max_call_depth:
            raise Trap(CALL_STACK_EXHAUSTED)
        if entry_pc < 0 or entry_pc == M32:
            raise UnsupportedAtRuntime("call of a function the machine cannot run")
        args = self._pop(n_params)
        m.frames.append((return_pc, m.locals, m.base))
        m.locals = list(args) + [0] * n_locals
        m.base = len(m.stack)
        m.pc = entry_pc
        return args

    # -- handlers: (instruction, pc) -> (popped, pushed, effects) ------------------------------
    def _binary(self, ins, pc):
        st = self.m.stack
        # b = 1: an immediate, b = 2: a local (program.IMMEDIATE_OPS)
        y = st.pop() if not ins.b else ins.a if ins.b == 1 else self.m.locals[ins.a]
        x = st[-1]
        st[-1] = r = self._binary_fns[ins.op](x, y)
        return ((x,) if ins.b else (x, y)), (r,), None

    def _unary(self, ins, pc):
        st = self.m.stack
        x = st[-1]
        st[-1] = r = self._unary_fns[ins.op](x)
        return (x,), (r,), None

    def _const(self, ins, pc):
        v = ins.a | (ins.b << 32) if ins.op == Op.I64_CONST else ins.a
        self.m.stack.append(v)
        return (), (v,), None

    def _local_get(self, ins, pc):
        v = self.m.locals[ins.a]
        self.m.stack.append(v)
        return (), (v,), None

    def _local_set(self, ins, pc):
        m = self.m
        if ins.op == Op.LOCAL_TEE:
            v = m.stack[-1]
            m.locals[ins.a] = v
            return (v,), (v,), {"local_write": (ins.a, v)}
        v = m.stack.pop()
        m.locals[ins.a] = v
        return (v,), (), {"local_write": (ins.a, v)}

    def _global_get(self, ins, pc):
        v = self.m.globals[ins.a]
        self.m.stack.append(v)
        return (), (v,), None

    def _global_set(self, ins, pc):
        v = self.m.stack.pop()
        self.m.globals[ins.a] = v
        return (v,), (), {"global_write": (ins.a, v)}

    def _load(self, ins, pc):
        m = self.m
        width, is_signed, mask = LOADS[ins.op]
        addr = m.stack.pop()
        ea = addr + ins.a
        self._check_bounds(ea, width)
        raw = int.from_bytes(m.memory[ea:ea + width], "little")
        v = raw
        if is_signed and raw >> (8 * width - 1):
            v = (raw - (1 << (8 * width))) & mask
        m.stack.append(v)
        return (addr,), (v,), {"mem_read": MemAccess(ea, width, raw)}

    def _store(self, ins, pc):
        m = self.m
        width = STORES[ins.op]
        addr, v = self._pop(2)
        ea = addr + ins.a
        self._check_bounds(ea, width)
        raw = v & ((1 << (8 * width)) - 1)
        m.memory[ea:ea + width] = raw.to_bytes(width, "little")
        return (addr, v), (), {"mem_write": MemAccess(ea, width, raw)}

    def _memory_size(self, ins, pc):
        v = self.m.memory_pages()
        self.m.stack.append(v)
        return (), (v,), None

    def _memory_grow(self, ins, pc):
        m = self.m
        delta = m.stack.pop()
        v = m.grow_memory(delta)
        m.stack.append(v)
        return (delta,), (v,), None

    def _drop(self, ins, pc):
        return (self.m.stack.pop(),), (), None

    def _select(self, ins, pc):
        x, y, cond = self._pop(3)
        v = x if cond else y
        self.m.stack.append(v)
        return (x, y, cond), (v,), None

    def _branch(self, ins, pc):
        m = self.m
        st = m.stack
        conditional = ins.op == Op.BR_IF
        if conditional and not st[-1]:
            return (st.pop(),), (), {"taken": False}
        cut = m.base + ins.c
        popped = tuple(st[cut:])
        kept_from = len(st) - conditional - ins.b
        kept = tuple(st[kept_from:kept_from + ins.b])
        del st[cut:]
        st.extend(kept)
        m.pc = ins.a
        return popped, kept, {"taken": True}

    def _if(self, ins, pc):
        cond = self.m.stack.pop()
        if not cond:
            self.m.pc = ins.a
        return (cond,), (), {"taken": not cond}

    def _br_table(self, ins, pc):
        i = self.m.stack.pop()
        self.m.pc = pc + 1 + min(i, ins.a)
        return (i,), (), {"taken": True}

    def _return(self, ins, pc):
        m = self.m
        st = m.stack
        popped = tuple(st[m.base:])
        results = popped[len(popped) - ins.a:] if ins.a else ()
        del st[m.base:]
        if m.frames:
            m.pc, m.locals, m.base = m.frames.pop()
        else:
            m.done = True
            m.results = results
            m.pc = -1
        st.extend(results)
        return popped, results, None

    def _call(self, ins, pc):
        return self._enter(ins.a, ins.b, ins.c, pc + 1), (), None

    def _call_indirect(self, ins, pc):
        index = self.m.stack.pop()
        fn = self.m.indirect_target(ins.b, index, ins.a)
        args = self._enter(fn.entry_pc, fn.n_params, fn.n_locals, pc + 1)
        return args + (index,), (), None

    def _putchar(self, ins, pc):
        m = self.m
        v = m.stack[-1]
        byte = v & 0xFF
        m.stack[-1] = byte
        m.output.append(byte)
        return (v,), (byte,), {"output_byte": byte}

    def _getchar(self, ins, pc):
        m = self.m
        if m.input_pos < len(m.input):
            byte = m.input[m.input_pos]
            m.input_pos += 1
        else:
            byte = -1
        m.stack.append(byte & M32)
        return (), (byte & M32,), {"input_byte": byte}

    def _call_host(self, ins, pc):
        m = self.m
        args = self._pop(m.program.functions[ins.a].n_params)
        results = m.call_host(ins.a, args)
        m.stack.extend(results)
        return args, results, None

    def _unreachable(self, ins, pc):
        raise Trap(UNREACHABLE)


def trace(machine: Machine, func: int | str, args: Sequence[int] = (), *,
          max_steps: int | None = None) -> Iterator[StepRecord]:
    """Invoke `func` on `machine` step by step, yielding a `StepRecord` per instruction."""
    machine.begin(func, args)
    return Stepper(machine).run(max_steps)
