"""A decoded WebAssembly module, as typed frozen records.

This is the *structured* form (function bodies still contain block/loop/if/else/end); the
flattener in `program.py` turns it into the single pc-indexed instruction array the machine
executes. Index spaces follow the spec: function, table, memory and global indices count the
imported ones first.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ValType(enum.IntEnum):
    I32 = 0x7F
    I64 = 0x7E
    F32 = 0x7D
    F64 = 0x7C
    V128 = 0x7B
    FUNCREF = 0x70
    EXTERNREF = 0x6F

    @property
    def is_integer(self) -> bool:
        return self in (ValType.I32, ValType.I64)

    @property
    def text(self) -> str:
        return self.name.lower()


class ExternKind(enum.IntEnum):
    FUNC = 0
    TABLE = 1
    MEMORY = 2
    GLOBAL = 3


class SegmentMode(enum.Enum):
    ACTIVE = "active"
    PASSIVE = "passive"
    DECLARATIVE = "declarative"


@dataclass(frozen=True)
class FuncType:
    params: tuple[ValType, ...]
    results: tuple[ValType, ...]

    @property
    def is_integer(self) -> bool:
        return all(t.is_integer for t in self.params + self.results)

    def __str__(self) -> str:
        p = " ".join(t.text for t in self.params)
        r = " ".join(t.text for t in self.results)
        return f"[{p}] -> [{r}]"


@dataclass(frozen=True)
class Limits:
    minimum: int
    maximum: int | None


@dataclass(frozen=True)
class TableType:
    elem: ValType
    limits: Limits


@dataclass(frozen=True)
class GlobalType:
    valtype: ValType
    mutable: bool


class InitKind(enum.Enum):
    CONST = "const"  # value: the bit pattern (unsigned)
    GLOBAL_GET = "global.get"  # value: global index (an imported global)
    REF_FUNC = "ref.func"  # value: function index
    REF_NULL = "ref.null"  # value unused


@dataclass(frozen=True)
class InitExpr:
    """A constant expression (global initialiser, segment offset, element item)."""

    kind: InitKind
    value: int
    valtype: ValType


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: ExternKind
    desc: int | TableType | Limits | GlobalType  # type index for functions


@dataclass(frozen=True)
class Export:
    name: str
    kind: ExternKind
    index: int


@dataclass(frozen=True)
class Global:
    type: GlobalType
    init: InitExpr


@dataclass(frozen=True)
class ElemSegment:
    mode: SegmentMode
    table: int
    offset: InitExpr | None
    items: tuple[InitExpr, ...]  # REF_FUNC or REF_NULL (or GLOBAL_GET of a funcref global)


@dataclass(frozen=True)
class DataSegment:
    mode: SegmentMode
    memory: int
    offset: InitExpr | None
    data: bytes


@dataclass(frozen=True)
class BlockType:
    params: tuple[ValType, ...]
    results: tuple[ValType, ...]


@dataclass(frozen=True)
class Instruction:
    """One structured instruction.

    `imm` by opcode: block/loop/if -> (else_index, end_index) with `block` the BlockType
    (indices into the same body; else_index is -1 when there is no else); br/br_if -> (depth,);
    br_table -> (depth_0, ..., depth_default); call -> (func,); call_indirect -> (type, table);
    local.*/global.* -> (index,); loads/stores -> (align, offset); i32.const/i64.const ->
    (unsigned bit pattern,); typed select -> (); everything else -> ().
    `offset` is the instruction's byte offset in the module (for error messages).
    """

    opcode: int
    name: str
    imm: tuple[int, ...]
    offset: int
    block: BlockType | None = None


@dataclass(frozen=True)
class Function:
    """A defined (non-imported) function. `unsupported` is set (and `body` empty) when the
    decoder ran in lenient mode and the function uses something this machine cannot run."""

    type_index: int
    locals: tuple[ValType, ...]
    body: tuple[Instruction, ...]
    offset: int
    unsupported: str | None = None


@dataclass(frozen=True)
class Module:
    types: tuple[FuncType, ...]
    imports: tuple[Import, ...]
    functions: tuple[Function, ...]
    tables: tuple[TableType, ...]  # defined tables (imported ones are in `imports`)
    memories: tuple[Limits, ...]  # defined memories
    globals: tuple[Global, ...]  # defined globals
    exports: tuple[Export, ...]
    start: int | None
    elems: tuple[ElemSegment, ...]
    datas: tuple[DataSegment, ...]
    func_names: tuple[tuple[int, str], ...] = ()  # from the "name" custom section, if any

    def imports_of(self, kind: ExternKind) -> tuple[Import, ...]:
        return tuple(i for i in self.imports if i.kind == kind)

    @property
    def n_imported_funcs(self) -> int:
        return len(self.imports_of(ExternKind.FUNC))

    @property
    def n_funcs(self) -> int:
        return self.n_imported_funcs + len(self.functions)

    def func_type_index(self, func: int) -> int:
        imported = self.imports_of(ExternKind.FUNC)
        if func < len(imported):
            desc = imported[func].desc
            assert isinstance(desc, int)
            return desc
        return self.functions[func - len(imported)].type_index

    def func_type(self, func: int) -> FuncType:
        return self.types[self.func_type_index(func)]

    def global_types(self) -> tuple[GlobalType, ...]:
        imported = tuple(i.desc for i in self.imports_of(ExternKind.GLOBAL))
        return imported + tuple(g.type for g in self.globals)  # type: ignore[operator]

    def memory_limits(self) -> tuple[Limits, ...]:
        imported = tuple(i.desc for i in self.imports_of(ExternKind.MEMORY))
        return imported + self.memories  # type: ignore[operator]

    def table_types(self) -> tuple[TableType, ...]:
        imported = tuple(i.desc for i in self.imports_of(ExternKind.TABLE))
        return imported + self.tables  # type: ignore[operator]

    def export(self, name: str) -> Export:
        for e in self.exports:
            if e.name == name:
                return e
        known = ", ".join(e.name for e in self.exports) or "none"
        raise KeyError(f"module has no export named {name!r} (exports: {known})")

    def func_name(self, func: int) -> str:
        for index, name in self.func_names:
            if index == func:
                return name
        for e in self.exports:
            if e.kind == ExternKind.FUNC and e.index == func:
                return e.name
        imported = self.imports_of(ExternKind.FUNC)
        if func < len(imported):
            return f"{imported[func].module}.{imported[func].name}"
        return f"func{func}"
