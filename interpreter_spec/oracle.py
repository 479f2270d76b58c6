"""Run one program under wasmtime or under our machine and report the same `RunOutcome`, so
differential tests compare like with like (results, trap, output bytes, final memory, exported
globals)."""

from __future__ import annotations

import atexit
import functools
from dataclasses import dataclass
from typing import Sequence

from .decoder import decode_module
from .module import ExternKind
from .program import Program, flatten
from .reference import Machine
from .stepper import trace
from .traps import (
    CALL_STACK_EXHAUSTED,
    INDIRECT_CALL_TYPE_MISMATCH,
    INTEGER_DIVIDE_BY_ZERO,
    INTEGER_OVERFLOW,
    OUT_OF_BOUNDS_MEMORY,
    UNDEFINED_ELEMENT,
    UNINITIALIZED_ELEMENT,
    UNREACHABLE,
    Trap,
)

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class RunOutcome:
    results: tuple[int, ...] | None  # unsigned bit patterns; None when the run trapped
    trap: str | None  # the spec's trap message
    output: bytes
    memory: bytes
    globals: tuple[tuple[str, int], ...]  # exported integer globals after the run
    steps: int | None = None  # instructions executed (our machine only)

    def same_behaviour(self, other: "RunOutcome") -> bool:
        return (self.results, self.trap, self.output, self.memory, self.globals) == (
            other.results, other.trap, other.output, other.memory, other.globals)


def run_reference(program: Program | bytes, entry: str, args: Sequence[int] = (), *,
                  input: bytes = b"", traced: bool = False,
                  max_steps: int | None = None) -> RunOutcome:
    """Run on the reference machine: the fast loop, or the stepper when `traced`."""
    if isinstance(program, (bytes, bytearray)):
        program = flatten(decode_module(bytes(program)))
    machine = Machine(program, input=input)
    results: tuple[int, ...] | None = None
    trap = None
    try:
        if traced:
            for _ in trace(machine, entry, args, max_steps=max_steps):
                pass
            results = machine.results
        else:
            results = machine.invoke(entry, args, max_steps=max_steps)
    except Trap as exc:
        trap = exc.message
    exported = tuple(
        (name, machine.globals[index]) for name, kind, index in program.exports
        if kind == ExternKind.GLOBAL and program.globals[index].type.valtype.is_integer
    )
    memory_exported = any(kind == ExternKind.MEMORY for _, kind, _ in program.exports)
    return RunOutcome(results, trap, bytes(machine.output),
                      bytes(machine.memory) if memory_exported else b"", exported, machine.steps)


_TRAP_NAMES = {
    "STACK_OVERFLOW": CALL_STACK_EXHAUSTED,
    "MEMORY_OUT_OF_BOUNDS": OUT_OF_BOUNDS_MEMORY,
    "TABLE_OUT_OF_BOUNDS": UNDEFINED_ELEMENT,
    "INDIRECT_CALL_TO_NULL": UNINITIALIZED_ELEMENT,
    "BAD_SIGNATURE": INDIRECT_CALL_TYPE_MISMATCH,
    "INTEGER_OVERFLOW": INTEGER_OVERFLOW,
    "INTEGER_DIVISION_BY_ZERO": INTEGER_DIVIDE_BY_ZERO,
    "UNREACHABLE": UNREACHABLE,
}


@functools.lru_cache(maxsize=1)
def _engine():
    import wasmtime

    config = wasmtime.Config()
    config.cranelift_opt_level = "none"  # compile fast: these runs are short
    # drop the engine before interpreter shutdown tears down wasmtime's module globals
    atexit.register(_engine.cache_clear)  # atexit runs last-registered first:
    atexit.register(_compiled.cache_clear)  # modules go before their engine
    return wasmtime.Engine(config)


@functools.lru_cache(maxsize=32)
def _compiled(wasm: bytes):
    """Compiled modules, reused across runs of the same binary (compiling dominates)."""
    import wasmtime

    return wasmtime.Module(_engine(), wasm)


def run_wasmtime(wasm: bytes, entry: str, args: Sequence[int] = (), *,
                 input: bytes = b"") -> RunOutcome:
    """Run under wasmtime with the same env.putchar / env.getchar host functions."""
    import wasmtime

    engine = _engine()
    store = wasmtime.Store(engine)
    module = _compiled(bytes(wasm))
    output = bytearray()
    pos = [0]

    def putchar(c: int) -> int:
        output.append(c & 0xFF)
        return c & 0xFF

    def getchar() -> int:
        if pos[0] < len(input):
            pos[0] += 1
            return input[pos[0] - 1]
        return -1

    i32 = wasmtime.ValType.i32()
    linker = wasmtime.Linker(engine)
    linker.define_func("env", "putchar", wasmtime.FuncType([i32], [i32]), putchar)
    linker.define_func("env", "getchar", wasmtime.FuncType([], [i32]), getchar)
    results = None
    trap = None
    instance = None
    try:
        instance = linker.instantiate(store, module)
        func = instance.exports(store)[entry]
        ftype = func.type(store)
        call_args = [_to_signed(v, t) for v, t in zip(args, ftype.params)]
        out = func(store, *call_args)
        if out is None:
            out = []
        elif not isinstance(out, (list, tuple)):
            out = [out]
        results = tuple(_to_unsigned(v, t) for v, t in zip(out, ftype.results))
    except wasmtime.Trap as exc:
        code = exc.trap_code
        trap = _TRAP_NAMES.get(code.name if code is not None else "", f"wasmtime: {exc}")
    memory = b""
    exported: list[tuple[str, int]] = []
    if instance is not None:
        for export in module.exports:
            item = instance.exports(store)[export.name]
            if isinstance(item, wasmtime.Memory):
                memory = bytes(item.read(store, 0, item.data_len(store)))
            elif isinstance(item, wasmtime.Global):
                vt = item.type(store).content
                if str(vt) in ("i32", "i64"):
                    exported.append((export.name, _to_unsigned(item.value(store), vt)))
    return RunOutcome(results, trap, bytes(output), memory, tuple(exported))


def _to_signed(v: int, t) -> int:
    bits = 64 if str(t) == "i64" else 32
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _to_unsigned(v: int, t) -> int:
    return v & (M64 if str(t) == "i64" else M32)
