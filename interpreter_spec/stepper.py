"""Traced execution: one flat instruction at a time, each step described by a `StepRecord`.

This is the observer's view of the machine (the trace format is built on it); it is a separate
executor over the same `Machine` state so the fast `Machine.run` loop stays free of any
recording. Tests hold the two executors to identical results, outputs, memory and step counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

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


class Stepper:
    """Executes `machine` one instruction per `step()` call (after `machine.begin(...)`)."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine

    def step(self) -> StepRecord:
        m = self.m
        if m.done:
            raise RuntimeError("nothing to run: call machine.begin(func, args) first")
        pc = m.pc
        step_index = m.steps
        m.steps += 1
        try:
            return self._execute(pc, step_index)
        except Trap as trap:
            m.pc = pc  # as the run loop leaves it: at the trapping instruction
            if trap.pc is None:
                trap.pc, trap.func = pc, m.func_at(pc).name
            raise

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

    def _enter(self, entry_pc: int, n_params: int, n_locals: int, return_pc: int,
               extra: tuple[int, ...] = ()) -> tuple[int, ...]:
        """Push a frame; returns the values popped (args, then `extra` already popped above)."""
        m = self.m
        if len(m.frames) >= m.max_call_depth:
            raise Trap(CALL_STACK_EXHAUSTED)
        if entry_pc < 0 or entry_pc == M32:
            raise UnsupportedAtRuntime("call of a function the machine cannot run")
        args = self._pop(n_params)
        m.frames.append((return_pc, m.locals, m.base))
        m.locals = list(args) + [0] * n_locals
        m.base = len(m.stack)
        m.pc = entry_pc
        return args + extra

    def _execute(self, pc: int, step_index: int) -> StepRecord:  # noqa: C901 - one case per op
        m = self.m
        ins = m.program.code[pc]
        op, a, b, c = ins.op, ins.a, ins.b, ins.c
        st = m.stack
        depth = len(m.frames)
        nxt = pc + 1

        def rec(popped=(), pushed=(), **kw) -> StepRecord:
            return StepRecord(step_index, pc, op, depth, tuple(popped), tuple(pushed), m.pc, **kw)

        m.pc = nxt
        if op in BINARY:
            x, y = self._pop(2)
            r = BINARY[op](x, y)
            st.append(r)
            return rec((x, y), (r,))
        if op in UNARY:
            (x,) = self._pop(1)
            r = UNARY[op](x)
            st.append(r)
            return rec((x,), (r,))
        if op == Op.I32_CONST:
            st.append(a)
            return rec((), (a,))
        if op == Op.I64_CONST:
            v = a | (b << 32)
            st.append(v)
            return rec((), (v,))
        if op == Op.LOCAL_GET:
            st.append(m.locals[a])
            return rec((), (m.locals[a],))
        if op == Op.LOCAL_SET or op == Op.LOCAL_TEE:
            (v,) = self._pop(1)
            m.locals[a] = v
            if op == Op.LOCAL_TEE:
                st.append(v)
            return rec((v,), (v,) if op == Op.LOCAL_TEE else (), local_write=(a, v))
        if op == Op.GLOBAL_GET:
            v = m.globals[a]
            st.append(v)
            return rec((), (v,))
        if op == Op.GLOBAL_SET:
            (v,) = self._pop(1)
            m.globals[a] = v
            return rec((v,), (), global_write=(a, v))
        if op in LOADS:
            width, is_signed, mask = LOADS[op]
            (addr,) = self._pop(1)
            ea = addr + a
            self._check_bounds(ea, width)
            raw = int.from_bytes(m.memory[ea:ea + width], "little")
            v = int.from_bytes(m.memory[ea:ea + width], "little", signed=is_signed) & mask
            st.append(v)
            return rec((addr,), (v,), mem_read=MemAccess(ea, width, raw))
        if op in STORES:
            width = STORES[op]
            addr, v = self._pop(2)
            ea = addr + a
            self._check_bounds(ea, width)
            raw = v & ((1 << (8 * width)) - 1)
            m.memory[ea:ea + width] = raw.to_bytes(width, "little")
            return rec((addr, v), (), mem_write=MemAccess(ea, width, raw))
        if op == Op.MEMORY_SIZE:
            v = m.memory_pages()
            st.append(v)
            return rec((), (v,))
        if op == Op.MEMORY_GROW:
            (delta,) = self._pop(1)
            v = m.grow_memory(delta)
            st.append(v)
            return rec((delta,), (v,))
        if op == Op.DROP:
            return rec(self._pop(1), ())
        if op == Op.SELECT:
            x, y, cond = self._pop(3)
            v = x if cond else y
            st.append(v)
            return rec((x, y, cond), (v,))
        if op == Op.BR or op == Op.BR_IF:
            cut = m.base + c
            if op == Op.BR_IF:
                cond = st[-1]
                if not cond:
                    self._pop(1)
                    return rec((cond,), (), taken=False)
            popped = tuple(st[cut:])
            kept_from = len(st) - (1 if op == Op.BR_IF else 0) - b
            kept = tuple(st[kept_from:kept_from + b])
            del st[cut:]
            st.extend(kept)
            m.pc = a
            return rec(popped, kept, taken=True)
        if op == Op.IF:
            (cond,) = self._pop(1)
            if not cond:
                m.pc = a
            return rec((cond,), (), taken=not cond)
        if op == Op.BR_TABLE:
            (i,) = self._pop(1)
            m.pc = nxt + min(i, a)
            return rec((i,), (), taken=True)
        if op == Op.RETURN:
            popped = tuple(st[m.base:])
            results = popped[len(popped) - a:] if a else ()
            del st[m.base:]
            if not m.frames:
                st.extend(results)
                m.done = True
                m.results = results
                m.pc = -1
                return rec(popped, results)
            m.pc, m.locals, m.base = m.frames.pop()
            st.extend(results)
            return rec(popped, results)
        if op == Op.CALL:
            return rec(self._enter(a, b, c, nxt), ())
        if op == Op.CALL_INDIRECT:
            (index,) = self._pop(1)
            fn = m.indirect_target(b, index, a)
            return rec(self._enter(fn.entry_pc, fn.n_params, fn.n_locals, nxt, (index,)), ())
        if op == Op.PUTCHAR:
            (v,) = self._pop(1)
            byte = v & 0xFF
            m.output.append(byte)
            st.append(byte)
            return rec((v,), (byte,), output_byte=byte)
        if op == Op.GETCHAR:
            if m.input_pos < len(m.input):
                byte = m.input[m.input_pos]
                m.input_pos += 1
            else:
                byte = -1
            st.append(byte & M32)
            return rec((), (byte & M32,), input_byte=byte)
        if op == Op.CALL_HOST:
            args = self._pop(m.program.functions[a].n_params)
            results = m.call_host(a, args)
            st.extend(results)
            return rec(args, results)
        if op == Op.UNREACHABLE:
            raise Trap(UNREACHABLE)
        raise AssertionError(f"stepper has no case for {op!r}")  # pragma: no cover

    def run(self, max_steps: int | None = None) -> Iterator[StepRecord]:
        """Step until the invoked function returns, yielding every record. `max_steps` bounds
        the steps of this call (StepLimitExceeded once exceeded)."""
        budget = (1 << 62) if max_steps is None else max_steps
        stop_at = self.m.steps + budget
        while not self.m.done:
            if self.m.steps >= stop_at:
                raise StepLimitExceeded(f"stopped after {budget} instructions")
            yield self.step()


def trace(machine: Machine, func: int | str, args: Sequence[int] = (), *,
          max_steps: int | None = None) -> Iterator[StepRecord]:
    """Invoke `func` on `machine` step by step, yielding a `StepRecord` per instruction."""
    machine.begin(func, args)
    return Stepper(machine).run(max_steps)
