"""The flat program: every function of a module laid out in ONE pc-indexed instruction array.

This is the representation the machine executes, both the Python reference interpreter and the
WASM interpreter compiled into transformer weights (which fetches instructions by pc). Structured
control flow is resolved here once:

* `block`, `loop`, `nop` and inner `end`s emit nothing; branches name absolute target pcs.
* A branch carries its stack adjustment: keep the top `arity` values, cut the frame's operand
  stack down to `height`, push the kept values back (so the height after is height + arity).
* `if` is a conditional jump to the else branch (or past the end); `else` becomes a `br` over
  the else branch; a function's final `end` becomes `return`.
* `br_table n` is followed by n+1 branch entries (`br` or `return`); it jumps to the entry
  pc + 1 + min(index, n), which then executes as an ordinary instruction.
* Calls to the host imports env.putchar / env.getchar become the instructions `putchar` /
  `getchar`; every imported function also gets a small stub body so `call_indirect` and direct
  invocation reach it like any other function.
* Code that validation proves unreachable (after br, br_table, return, unreachable) is dropped,
  so every emitted instruction has a static operand-stack height.
* An `i32.const` or a `local.get` of an i32 local directly followed by an i32 operator of two
  operands (`IMMEDIATE_OPS`, no label in between) becomes one instruction, `op value 1` or
  `op index 2`: the operator takes its second operand from the instruction and pops only its
  first (`flatten(..., fuse=False)` keeps them apart).

Every immediate is an integer in [0, 2**32); each instruction has at most three (a, b, c).
See README.md in this folder for the per-opcode table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .decoder import MalformedModule, UnsupportedFeature
from .module import (
    ExternKind,
    FuncType,
    GlobalType,
    InitExpr,
    InitKind,
    Limits,
    Module,
    SegmentMode,
    TableType,
    ValType,
)
from .opcodes import OPS, Imm

_NUMERIC_NAMES = tuple(
    op.name for op in sorted(OPS.values(), key=lambda o: o.code)
    if op.supported and op.code >= 0x45 and op.imm is Imm.NONE
)
_LOAD_NAMES = tuple(op.name for op in sorted(OPS.values(), key=lambda o: o.code)
                    if op.supported and op.imm is Imm.MEMARG and op.pops == 1)
_STORE_NAMES = tuple(op.name for op in sorted(OPS.values(), key=lambda o: o.code)
                     if op.supported and op.imm is Imm.MEMARG and op.pops == 2)

FLAT_OP_NAMES: tuple[str, ...] = (
    "unreachable", "br", "br_if", "if", "br_table", "return",
    "call", "call_indirect", "putchar", "getchar", "call_host",
    "drop", "select",
    "local.get", "local.set", "local.tee", "global.get", "global.set",
    *_LOAD_NAMES, *_STORE_NAMES, "memory.size", "memory.grow",
    "i32.const", "i64.const",
    *_NUMERIC_NAMES,
)
"""Flat opcodes in numbering order (the number is the `Op` value)."""

Op = enum.IntEnum("Op", [(n.upper().replace(".", "_"), i) for i, n in enumerate(FLAT_OP_NAMES)])
"""Flat opcode numbers: `Op.I32_ADD`, `Op.BR_IF`, ...; `Op(n).text` is the WASM text name."""
Op.text = property(lambda self: FLAT_OP_NAMES[self.value])  # type: ignore[attr-defined]

LOAD_OPS = frozenset(Op[n.upper().replace(".", "_")] for n in _LOAD_NAMES)
STORE_OPS = frozenset(Op[n.upper().replace(".", "_")] for n in _STORE_NAMES)
NUMERIC_OPS = frozenset(Op[n.upper().replace(".", "_")] for n in _NUMERIC_NAMES)
BRANCH_OPS = frozenset({Op.BR, Op.BR_IF})
"""Instructions whose (a, b, c) are (target pc, arity, height)."""
IMMEDIATE_OPS = frozenset(Op[n] for n in (
    "I32_ADD", "I32_SUB", "I32_MUL", "I32_AND", "I32_OR", "I32_XOR", "I32_SHL", "I32_SHR_S",
    "I32_SHR_U", "I32_ROTL", "I32_ROTR", "I32_EQ", "I32_NE", "I32_LT_S", "I32_LT_U", "I32_GT_S",
    "I32_GT_U", "I32_LE_S", "I32_LE_U", "I32_GE_S", "I32_GE_U"))
"""i32 operators that can take their second operand from the instruction (see `flatten`):
`Instr(op, value, 1)` is `i32.const value` then `op`, `Instr(op, x, 2)` is `local.get x` (an
i32 local) then `op`, each in one step."""

U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Instr:
    """One flat instruction. Meaning of a/b/c per opcode: see README.md (all default to 0)."""

    op: Op
    a: int = 0
    b: int = 0
    c: int = 0

    def __str__(self) -> str:
        return f"{self.op.text} {self.a} {self.b} {self.c}"


@dataclass(frozen=True)
class FlatFunction:
    """One function in the flat program. `entry_pc` is -1 for a function the machine cannot run
    (a lenient decode's unsupported stub, or an import with non-integer types)."""

    index: int
    name: str
    entry_pc: int
    n_params: int
    n_locals: int  # declared locals beyond the params (zero-initialised on entry)
    n_results: int
    type_id: int  # canonical type index: equal signatures share one id
    imported: tuple[str, str] | None = None  # (module, name) for imports
    unsupported: str | None = None


@dataclass(frozen=True)
class FlatGlobal:
    type: GlobalType
    init: InitExpr | None  # None for an imported global
    imported: tuple[str, str] | None = None


@dataclass(frozen=True)
class ActiveElem:
    table: int
    offset: InitExpr
    funcs: tuple[int | None, ...]  # None is a null reference


@dataclass(frozen=True)
class ActiveData:
    offset: InitExpr
    data: bytes


@dataclass(frozen=True)
class Program:
    code: tuple[Instr, ...]
    heights: tuple[int, ...]  # static operand-stack height before each instruction
    func_of: tuple[int, ...]  # function index owning each pc
    source_offsets: tuple[int, ...]  # byte offset of the originating wasm instruction (-1: synthetic)
    functions: tuple[FlatFunction, ...]
    types: tuple[FuncType, ...]  # module types; type ids index this
    globals: tuple[FlatGlobal, ...]
    memory: Limits | None
    memory_import: tuple[str, str] | None
    tables: tuple[TableType, ...]
    table_imports: tuple[tuple[str, str] | None, ...]
    elems: tuple[ActiveElem, ...]
    datas: tuple[ActiveData, ...]
    exports: tuple[tuple[str, ExternKind, int], ...]
    start: int | None

    def export_func(self, name: str) -> int:
        for export_name, kind, index in self.exports:
            if export_name == name and kind == ExternKind.FUNC:
                return index
        funcs = ", ".join(n for n, k, _ in self.exports if k == ExternKind.FUNC) or "none"
        raise KeyError(f"no exported function named {name!r} (exported functions: {funcs})")

    def listing(self) -> str:
        """Human-readable disassembly: pc, static height, instruction, owning function."""
        lines = []
        entries = {f.entry_pc: f for f in self.functions if f.entry_pc >= 0}
        for pc, ins in enumerate(self.code):
            if pc in entries:
                f = entries[pc]
                lines.append(f"; func {f.index} {f.name}: params={f.n_params} "
                             f"locals={f.n_locals} results={f.n_results}")
            lines.append(f"{pc:6d} [{self.heights[pc]:3d}] {ins.op.text:<20} "
                         f"{ins.a} {ins.b} {ins.c}")
        return "\n".join(lines)


@dataclass
class _Ctrl:
    kind: str  # "block" | "loop" | "if" | "func"
    base: int  # operand height below the block's params
    n_params: int
    n_results: int
    start_pc: int = 0  # loop: where a branch to it goes
    if_pc: int | None = None  # `if` whose false target is not yet patched
    fixups: list[int] = field(default_factory=list)  # pcs whose target is this block's end
    targeted: bool = False  # some branch reaches the end label
    dead: bool = False  # opened inside unreachable code: emits nothing


class _Builder:
    def __init__(self, module: Module, fuse: bool = True) -> None:
        self.module = module
        self.fuse = fuse
        self.ops: list[list[int]] = []  # [op, a, b, c]
        self.heights: list[int] = []
        self.func_of: list[int] = []
        self.offsets: list[int] = []
        self.call_fixups: list[tuple[int, int]] = []  # (pc, callee) for direct calls
        self.type_ids = _canonical_type_ids(module.types)
        self.h = 0
        self.func = 0
        self.offset = -1

    def emit(self, op: Op, a: int = 0, b: int = 0, c: int = 0, pops: int = 0,
             pushes: int = 0, floor: int = 0) -> int:
        if self.h - pops < floor:
            raise MalformedModule("type mismatch: operand stack underflow "
                                  f"(function {self.func}, {op.text})", self.offset)
        pc = len(self.ops)
        self.ops.append([op, a, b, c])
        self.heights.append(self.h)
        self.func_of.append(self.func)
        self.offsets.append(self.offset)
        self.h += pushes - pops
        return pc

    def _unemit(self) -> None:
        """Take back the last instruction (an i32.const or local.get: its push is undone)."""
        for column in (self.ops, self.heights, self.func_of, self.offsets):
            column.pop()
        self.h -= 1

    # -- functions --------------------------------------------------------------------------
    def import_stub(self, index: int, imported: tuple[str, str], ftype: FuncType) -> None:
        self.func, self.h, self.offset = index, 0, -1
        for i in range(len(ftype.params)):
            self.emit(Op.LOCAL_GET, i, pushes=1)
        self.host_call(index, imported, ftype)
        self.emit(Op.RETURN, len(ftype.results), pops=len(ftype.results))

    def host_call(self, index: int, imported: tuple[str, str], ftype: FuncType) -> None:
        n_p, n_r = len(ftype.params), len(ftype.results)
        if imported == ("env", "putchar") and n_p == 1 and n_r == 1:
            self.emit(Op.PUTCHAR, pops=1, pushes=1)
        elif imported == ("env", "getchar") and n_p == 0 and n_r == 1:
            self.emit(Op.GETCHAR, pushes=1)
        else:
            self.emit(Op.CALL_HOST, index, pops=n_p, pushes=n_r)

    def body(self, index: int, ftype: FuncType, instrs,  # noqa: C901 - one walk
             local_types: tuple[ValType, ...] = ()) -> None:
        module = self.module
        n_results = len(ftype.results)
        self.func, self.h = index, 0
        ctrls = [_Ctrl("func", 0, 0, n_results)]
        reachable = True
        imported_funcs = module.imports_of(ExternKind.FUNC)
        # what the previous instruction leaves to fold into an operator of IMMEDIATE_OPS: its
        # flat b (1: it was an i32.const, 2: a local.get of an i32 local), or 0
        pending = 0

        def branch(op: Op, depth: int, pops: int) -> None:
            t = ctrls[-1 - depth]
            arity = t.n_params if t.kind == "loop" else t.n_results
            floor = ctrls[-1].base
            if self.h - pops - arity < floor:
                raise MalformedModule(f"type mismatch: branch needs {arity} values "
                                      f"(function {self.func})", self.offset)
            if t.kind == "func" and op is not Op.BR_IF:
                self.emit(Op.RETURN, arity, pops=pops, floor=floor)
                return
            target = t.start_pc if t.kind == "loop" else 0
            pc = self.emit(op, target, arity, t.base, pops=pops, floor=floor)
            if t.kind != "loop":
                t.fixups.append(pc)
                t.targeted = True

        for ins in instrs:
            self.offset = ins.offset
            name = ins.name
            top = ctrls[-1]
            fold, pending = pending, 0
            if not reachable:
                if name in ("block", "loop", "if"):
                    ctrls.append(_Ctrl(name, 0, 0, 0, dead=True))
                    continue
                if name not in ("else", "end") or top.dead:
                    if name == "end" and top.dead:
                        ctrls.pop()
                    continue
            floor = top.base
            if name in ("block", "loop", "if"):
                bt = ins.block
                n_p, n_r = len(bt.params), len(bt.results)
                if name == "if":
                    if_pc = self.emit(Op.IF, pops=1, floor=floor)
                    if self.h - n_p < floor:
                        raise MalformedModule("type mismatch: if block params", ins.offset)
                    ctrls.append(_Ctrl("if", self.h - n_p, n_p, n_r, if_pc=if_pc))
                else:
                    if self.h - n_p < floor:
                        raise MalformedModule(f"type mismatch: {name} block params", ins.offset)
                    ctrls.append(_Ctrl(name, self.h - n_p, n_p, n_r, start_pc=len(self.ops)))
            elif name == "else":
                if reachable:
                    self._check_block_end(top)
                    pc = self.emit(Op.BR, 0, top.n_results, top.base, pops=top.n_results,
                                   pushes=top.n_results, floor=floor)
                    top.fixups.append(pc)
                    top.targeted = True
                assert top.if_pc is not None
                self.ops[top.if_pc][1] = len(self.ops)
                top.if_pc = None
                self.h = top.base + top.n_params
                reachable = True
            elif name == "end":
                ctrls.pop()
                if reachable:
                    self._check_block_end(top)
                end_reachable = reachable or (top.kind != "loop" and top.targeted)
                if top.if_pc is not None:  # if without else: the false path reaches the end
                    if top.n_params != top.n_results:
                        raise MalformedModule("type mismatch: if without else must leave its "
                                              "params unchanged", ins.offset)
                    self.ops[top.if_pc][1] = len(self.ops)
                    end_reachable = True
                for pc in top.fixups:
                    self.ops[pc][1] = len(self.ops)
                self.h = top.base + top.n_results
                reachable = end_reachable
                if top.kind == "func":
                    if reachable:
                        self.emit(Op.RETURN, n_results, pops=n_results)
                    return
            elif name == "br":
                branch(Op.BR, ins.imm[0], 0)
                reachable = False
            elif name == "br_if":
                branch(Op.BR_IF, ins.imm[0], 1)
            elif name == "br_table":
                labels = ins.imm
                self.emit(Op.BR_TABLE, len(labels) - 1, pops=1, floor=floor)
                for depth in labels:
                    h = self.h
                    branch(Op.BR, depth, 0)
                    self.h = h
                reachable = False
            elif name == "return":
                self.emit(Op.RETURN, n_results, pops=n_results, floor=floor)
                reachable = False
            elif name == "unreachable":
                self.emit(Op.UNREACHABLE)
                reachable = False
            elif name == "call":
                callee = ins.imm[0]
                t = module.func_type(callee)
                if callee < len(imported_funcs):
                    imp = imported_funcs[callee]
                    self._check_pops(len(t.params), floor)
                    self.host_call(callee, (imp.module, imp.name), t)
                else:
                    pc = self.emit(Op.CALL, 0, 0, 0, pops=len(t.params),
                                   pushes=len(t.results), floor=floor)
                    self.call_fixups.append((pc, callee))
            elif name == "call_indirect":
                type_index, table = ins.imm
                t = module.types[type_index]
                self.emit(Op.CALL_INDIRECT, self.type_ids[type_index], table,
                          pops=1 + len(t.params), pushes=len(t.results), floor=floor)
            elif name == "nop":
                pass
            elif name in ("local.get", "local.set", "local.tee", "global.get", "global.set"):
                info = OPS[ins.opcode]
                self.emit(_op(name), ins.imm[0], pops=info.pops, pushes=info.pushes, floor=floor)
                if (self.fuse and name == "local.get" and ins.imm[0] < len(local_types)
                        and local_types[ins.imm[0]] == ValType.I32):
                    pending = 2
            elif name == "i32.const":
                self.emit(Op.I32_CONST, ins.imm[0], pushes=1)
                pending = 1 if self.fuse else 0
            elif name == "i64.const":
                v = ins.imm[0]
                self.emit(Op.I64_CONST, v & U32, v >> 32, pushes=1)
            else:  # fixed stack effect: drop, select, memory.*, loads, stores, numeric
                info = OPS[ins.opcode]
                if info.pops is None:  # pragma: no cover - the decoder rejects the rest
                    raise UnsupportedFeature(f"no flat form for {name}", ins.offset)
                a = ins.imm[1] if info.imm is Imm.MEMARG else 0  # memarg: keep the offset
                op = _op(name)
                if fold and op in IMMEDIATE_OPS:  # the instruction just before: its operand
                    value = self.ops[-1][1]  # the constant, or the local's index
                    self._unemit()
                    self.emit(op, value, fold, pops=1, pushes=1, floor=floor)
                else:
                    self.emit(op, a, pops=info.pops, pushes=info.pushes, floor=floor)
        raise MalformedModule(f"function {index} body has no final end", self.offset)

    def _check_pops(self, n: int, floor: int) -> None:
        if self.h - n < floor:
            raise MalformedModule(f"type mismatch: operand stack underflow (function {self.func})",
                                  self.offset)

    def _check_block_end(self, c: _Ctrl) -> None:
        if self.h != c.base + c.n_results:
            raise MalformedModule(
                f"type mismatch: block leaves {self.h - c.base} values, expected {c.n_results} "
                f"(function {self.func})", self.offset)


def _op(name: str) -> Op:
    return Op[name.upper().replace(".", "_")]


def _canonical_type_ids(types: tuple[FuncType, ...]) -> list[int]:
    """Type index -> index of the first structurally equal type (call_indirect compares
    signatures structurally, so equal signatures must share one id)."""
    first: dict[FuncType, int] = {}
    return [first.setdefault(t, i) for i, t in enumerate(types)]


def _funcs_of_items(items, pos_hint: str) -> tuple[int | None, ...]:
    out: list[int | None] = []
    for item in items:
        if item.kind is InitKind.REF_FUNC:
            out.append(item.value)
        elif item.kind is InitKind.REF_NULL:
            out.append(None)
        else:
            raise UnsupportedFeature(f"element segment item {item.kind.value} ({pos_hint})")
    return tuple(out)


def flatten(module: Module, fuse: bool = True) -> Program:
    """Lay out every function of `module` in one flat instruction array (see module doc).

    With `fuse`, an `i32.const` or a `local.get` of an i32 local directly followed by an
    operator of `IMMEDIATE_OPS` (no label between them: any block, loop, if, else or end in
    between is an instruction of its own and breaks the pair) becomes one instruction whose
    second operand is the constant (`b = 1`) or the local (`b = 2`): C compiled to WASM is full
    of `x + 1`, `x << 2`, `x & 255`, `i < n`, and each step costs the trace five tokens
    (sudoku.c: 2,616,301 steps unfused, 2,191,435 with constants folded, 2,117,798 with locals
    too)."""
    b = _Builder(module, fuse)
    imported = module.imports_of(ExternKind.FUNC)
    functions: list[FlatFunction] = []
    for index in range(module.n_funcs):
        ftype = module.func_type(index)
        type_index = module.func_type_index(index)
        common = dict(index=index, name=module.func_name(index), n_params=len(ftype.params),
                      n_results=len(ftype.results), type_id=b.type_ids[type_index])
        if index < len(imported):
            imp = (imported[index].module, imported[index].name)
            if not ftype.is_integer:
                functions.append(FlatFunction(entry_pc=-1, n_locals=0, imported=imp,
                                              unsupported=f"import of type {ftype}", **common))
                continue
            entry = len(b.ops)
            b.import_stub(index, imp, ftype)
            functions.append(FlatFunction(entry_pc=entry, n_locals=0, imported=imp, **common))
            continue
        f = module.functions[index - len(imported)]
        if f.unsupported is not None:
            functions.append(FlatFunction(entry_pc=-1, n_locals=0, unsupported=f.unsupported,
                                          **common))
            continue
        entry = len(b.ops)
        b.body(index, ftype, f.body, ftype.params + tuple(f.locals))
        functions.append(FlatFunction(entry_pc=entry, n_locals=len(f.locals), **common))
    for pc, callee in b.call_fixups:
        fn = functions[callee]
        b.ops[pc][1:] = [fn.entry_pc & U32 if fn.entry_pc >= 0 else U32, fn.n_params, fn.n_locals]

    globals_: list[FlatGlobal] = [
        FlatGlobal(i.desc, None, (i.module, i.name))  # type: ignore[arg-type]
        for i in module.imports_of(ExternKind.GLOBAL)
    ]
    globals_ += [FlatGlobal(g.type, g.init) for g in module.globals]
    mem_imports = module.imports_of(ExternKind.MEMORY)
    memory = module.memory_limits()[0] if module.memory_limits() else None
    table_imports = tuple((i.module, i.name) for i in module.imports_of(ExternKind.TABLE))
    elems = tuple(
        ActiveElem(e.table, e.offset, _funcs_of_items(e.items, f"segment {k}"))  # type: ignore[arg-type]
        for k, e in enumerate(module.elems) if e.mode is SegmentMode.ACTIVE
    )
    datas = tuple(ActiveData(d.offset, d.data) for d in module.datas  # type: ignore[arg-type]
                  if d.mode is SegmentMode.ACTIVE)
    return Program(
        code=tuple(Instr(Op(op), a, bb, c) for op, a, bb, c in b.ops),
        heights=tuple(b.heights), func_of=tuple(b.func_of), source_offsets=tuple(b.offsets),
        functions=tuple(functions), types=module.types, globals=tuple(globals_),
        memory=memory, memory_import=(mem_imports[0].module, mem_imports[0].name) if mem_imports else None,
        tables=module.table_types(),
        table_imports=table_imports + (None,) * len(module.tables),
        elems=elems, datas=datas,
        exports=tuple((e.name, e.kind, e.index) for e in module.exports),
        start=module.start,
    )


__all__ = ["Op", "Instr", "FlatFunction", "FlatGlobal", "ActiveElem", "ActiveData", "Program",
           "flatten", "FLAT_OP_NAMES", "LOAD_OPS", "STORE_OPS", "NUMERIC_OPS", "BRANCH_OPS",
           "IMMEDIATE_OPS"]
