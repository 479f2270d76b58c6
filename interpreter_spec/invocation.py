"""One function call with constant arguments, as a program the compiled machine can start.

The compiled machine starts its entry function without arguments and runs whatever code the
prompt holds. To run `f(a, b)` from the spec suite we add a *driver*: a new last function,
`i32.const a; i64.const b; call f; end`, which becomes the entry. Functions the call cannot
reach (through `call`, or through the table, whose elements are always kept) are replaced by
stubs with no code, so the prompt holds only code that can run, and the machine's opcode check
(`machine.check_supported`) judges only that code: a module whose other functions use an
opcode the machine lacks still runs the calls that never meet it. Function indices do not
change, so tables, exports and an instantiated reference `Machine` of the original module still
describe the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from .module import Export, ExternKind, FuncType, Function, InitKind, Instruction, Module, ValType
from .numeric import M32, M64

DRIVER_EXPORT = "__rasp2d_invoke"
UNREACHED = "not reachable from the invocation"


@dataclass(frozen=True)
class Invocation:
    module: Module  # the pruned module with the driver appended
    entry: str  # the driver's export name
    func: int  # the invoked function's index (unchanged)


def reachable_functions(module: Module, roots: Sequence[int]) -> frozenset[int]:
    """Function indices a call of `roots` can reach: direct calls and every table element."""
    n_imp = module.n_imported_funcs
    table_funcs = {item.value for seg in module.elems for item in seg.items
                   if item.kind is InitKind.REF_FUNC}
    seen: set[int] = set()
    todo = list(roots) + sorted(table_funcs)
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        if f >= n_imp:
            todo += [ins.imm[0] for ins in module.functions[f - n_imp].body if ins.name == "call"]
    return frozenset(seen)


def _const(value: int, t: ValType) -> Instruction:
    if t is ValType.I32:
        return Instruction(0x41, "i32.const", (int(value) & M32,), -1)
    if t is ValType.I64:
        return Instruction(0x42, "i64.const", (int(value) & M64,), -1)
    raise ValueError(f"an argument of type {t.text} cannot be passed to the integer machine")


def invocation(module: Module, func: int | str, args: Sequence[int] = ()) -> Invocation:
    """The module rewritten so that its export `DRIVER_EXPORT` calls `func(*args)`."""
    index = module.export(func).index if isinstance(func, str) else func
    ftype = module.func_type(index)
    if len(args) != len(ftype.params):
        raise TypeError(f"function {index} takes {len(ftype.params)} arguments, got {len(args)}")
    keep = reachable_functions(module, [index])
    n_imp = module.n_imported_funcs
    functions = tuple(
        f if (i + n_imp) in keep or f.unsupported is not None
        else replace(f, body=(), unsupported=UNREACHED)
        for i, f in enumerate(module.functions))
    driver_type = FuncType((), ftype.results)
    types = module.types
    if driver_type not in types:
        types = types + (driver_type,)
    body = tuple(_const(v, t) for v, t in zip(args, ftype.params)) + (
        Instruction(0x10, "call", (index,), -1), Instruction(0x0B, "end", (), -1))
    driver = Function(types.index(driver_type), (), body, -1)
    driver_index = module.n_funcs
    exports = module.exports + (Export(DRIVER_EXPORT, ExternKind.FUNC, driver_index),)
    pruned = replace(module, types=types, functions=functions + (driver,), exports=exports)
    return Invocation(pruned, DRIVER_EXPORT, index)


__all__ = ["Invocation", "invocation", "reachable_functions", "DRIVER_EXPORT", "UNREACHED"]
