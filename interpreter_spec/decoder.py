"""Binary WebAssembly decoder: bytes -> `module.Module`.

Our own reader (no third-party parser) so that every instruction, immediate and byte offset the
machine relies on is visible here. Block structure is matched while decoding (each block/loop/if
records the index of its `else` and `end`), so later stages never scan for a matching `end`.

The machine runs integer programs only. Anything else (floats, SIMD, bulk memory, tail calls,
reference-typed values, shared or 64-bit memories) raises `UnsupportedFeature` naming the
opcode or section and its byte offset. With `lenient=True` a function that uses such a thing is
kept as a stub (`Function.unsupported` says why) instead, so the integer functions of a mixed
module stay usable; the spec-suite harness relies on this.
"""

from __future__ import annotations

from .module import (
    BlockType,
    DataSegment,
    ElemSegment,
    Export,
    ExternKind,
    FuncType,
    Function,
    Global,
    GlobalType,
    Import,
    InitExpr,
    InitKind,
    Instruction,
    Limits,
    Module,
    SegmentMode,
    TableType,
    ValType,
)
from .opcodes import OPS, PREFIXED_FC, Imm

MAX_LOCALS = 50_000
MAX_PAGES = 65_536


class WasmError(Exception):
    """Base class for decoding problems; `offset` is the byte offset in the module."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        where = f" at byte offset {offset:#x}" if offset is not None else ""
        super().__init__(message + where)
        self.message = message


class MalformedModule(WasmError):
    """The bytes are not a well-formed (or valid) WebAssembly module."""


class UnsupportedFeature(WasmError):
    """A well-formed module uses something this integer-only machine does not execute."""


_VALTYPES = {t.value: t for t in ValType}


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def eof(self) -> bool:
        return self.pos >= self.end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise MalformedModule("unexpected end of section or function", self.pos)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bytes(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise MalformedModule("unexpected end of section or function", self.pos)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return bytes(out)

    def uleb(self, bits: int = 32) -> int:
        start = self.pos
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift >= bits + 7:
                raise MalformedModule("integer representation too long", start)
        if result >> bits:
            raise MalformedModule("integer too large", start)
        return result

    def sleb(self, bits: int) -> int:
        start = self.pos
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift >= bits + 7:
                raise MalformedModule("integer representation too long", start)
        if b & 0x40:
            result -= 1 << shift
        if not -(1 << (bits - 1)) <= result < (1 << (bits - 1)):
            raise MalformedModule("integer too large", start)
        return result

    def name(self) -> str:
        n = self.uleb()
        start = self.pos
        raw = self.bytes(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedModule("malformed UTF-8 encoding", start) from None

    def valtype(self) -> ValType:
        pos = self.pos
        b = self.byte()
        if b not in _VALTYPES:
            raise MalformedModule(f"malformed value type {b:#04x}", pos)
        return _VALTYPES[b]


def _limits(r: _Reader, what: str) -> Limits:
    pos = r.pos
    flag = r.byte()
    if flag == 0x00:
        return Limits(r.uleb(), None)
    if flag == 0x01:
        lo = r.uleb()
        return Limits(lo, r.uleb())
    if flag in (0x02, 0x03):
        raise UnsupportedFeature(f"shared {what} (threads proposal)", pos)
    if flag in (0x04, 0x05, 0x06, 0x07):
        raise UnsupportedFeature(f"64-bit {what} (memory64 proposal)", pos)
    raise MalformedModule(f"malformed {what} limits flag {flag:#04x}", pos)


def _init_expr(r: _Reader, expected: ValType) -> InitExpr:
    pos = r.pos
    op = r.byte()
    if op == 0x41:
        expr = InitExpr(InitKind.CONST, r.sleb(32) & 0xFFFFFFFF, ValType.I32)
    elif op == 0x42:
        expr = InitExpr(InitKind.CONST, r.sleb(64) & 0xFFFFFFFFFFFFFFFF, ValType.I64)
    elif op == 0x43:
        expr = InitExpr(InitKind.CONST, int.from_bytes(r.bytes(4), "little"), ValType.F32)
    elif op == 0x44:
        expr = InitExpr(InitKind.CONST, int.from_bytes(r.bytes(8), "little"), ValType.F64)
    elif op == 0x23:
        expr = InitExpr(InitKind.GLOBAL_GET, r.uleb(), expected)
    elif op == 0xD0:
        expr = InitExpr(InitKind.REF_NULL, 0, _VALTYPES.get(r.byte(), ValType.FUNCREF))
    elif op == 0xD2:
        expr = InitExpr(InitKind.REF_FUNC, r.uleb(), ValType.FUNCREF)
    else:
        raise UnsupportedFeature(f"constant expression opcode {op:#04x}", pos)
    end = r.pos
    if r.byte() != 0x0B:
        raise UnsupportedFeature("constant expression longer than one instruction", end)
    return expr


class _Decoder:
    def __init__(self, data: bytes, lenient: bool) -> None:
        self.data = data
        self.lenient = lenient
        self.types: list[FuncType] = []
        self.imports: list[Import] = []
        self.func_type_indices: list[int] = []  # defined functions
        self.tables: list[TableType] = []
        self.memories: list[Limits] = []
        self.globals: list[Global] = []
        self.exports: list[Export] = []
        self.start: int | None = None
        self.elems: list[ElemSegment] = []
        self.datas: list[DataSegment] = []
        self.functions: list[Function] = []
        self.func_names: list[tuple[int, str]] = []

    # -- index-space helpers ----------------------------------------------------------------
    def _imported(self, kind: ExternKind) -> list[Import]:
        return [i for i in self.imports if i.kind == kind]

    def func_type(self, func: int, pos: int) -> FuncType:
        imported = self._imported(ExternKind.FUNC)
        if func < len(imported):
            return self.types[imported[func].desc]  # type: ignore[index]
        k = func - len(imported)
        if k >= len(self.func_type_indices):
            raise MalformedModule(f"unknown function {func}", pos)
        return self.types[self.func_type_indices[k]]

    def global_type(self, index: int, pos: int) -> GlobalType:
        types = [i.desc for i in self._imported(ExternKind.GLOBAL)] + [g.type for g in self.globals]
        if index >= len(types):
            raise MalformedModule(f"unknown global {index}", pos)
        return types[index]  # type: ignore[return-value]

    def type_at(self, index: int, pos: int) -> FuncType:
        if index >= len(self.types):
            raise MalformedModule(f"unknown type {index}", pos)
        return self.types[index]

    # -- sections ---------------------------------------------------------------------------
    def decode(self) -> Module:
        data = self.data
        if data[:4] != b"\0asm":
            raise MalformedModule("magic header not detected (not a .wasm binary)", 0)
        if data[4:8] != b"\x01\0\0\0":
            raise MalformedModule("unknown binary version", 4)
        r = _Reader(data, 8)
        while not r.eof():
            sec_pos = r.pos
            sid = r.byte()
            size = r.uleb()
            end = r.pos + size
            if end > len(data):
                raise MalformedModule(f"section {sid} runs past the end of the module", sec_pos)
            s = _Reader(data, r.pos, end)
            handler = {
                0: self._custom, 1: self._type, 2: self._import, 3: self._function,
                4: self._table, 5: self._memory, 6: self._global, 7: self._export,
                8: self._start, 9: self._elem, 10: self._code, 11: self._data, 12: self._datacount,
            }.get(sid)
            if handler is None:
                raise MalformedModule(f"unknown section id {sid}", sec_pos)
            handler(s)
            if sid != 0 and s.pos != end:
                raise MalformedModule(f"section {sid} size mismatch", s.pos)
            r.pos = end
        if len(self.functions) != len(self.func_type_indices):
            raise MalformedModule("function and code section have inconsistent lengths")
        if len(self.memories) + len(self._imported(ExternKind.MEMORY)) > 1:
            raise UnsupportedFeature("more than one memory (multi-memory proposal)")
        return Module(
            types=tuple(self.types), imports=tuple(self.imports), functions=tuple(self.functions),
            tables=tuple(self.tables), memories=tuple(self.memories), globals=tuple(self.globals),
            exports=tuple(self.exports), start=self.start, elems=tuple(self.elems),
            datas=tuple(self.datas), func_names=tuple(self.func_names),
        )

    def _custom(self, r: _Reader) -> None:
        name = r.name()
        if name != "name":
            return
        try:  # best effort: a broken name section must not make a module unusable
            while not r.eof():
                sub = r.byte()
                size = r.uleb()
                end = r.pos + size
                if sub == 1:
                    for _ in range(r.uleb()):
                        idx = r.uleb()
                        self.func_names.append((idx, r.name()))
                r.pos = end
        except WasmError:
            self.func_names.clear()

    def _type(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            pos = r.pos
            form = r.byte()
            if form != 0x60:
                raise MalformedModule(f"malformed function type form {form:#04x}", pos)
            params = tuple(r.valtype() for _ in range(r.uleb()))
            results = tuple(r.valtype() for _ in range(r.uleb()))
            self.types.append(FuncType(params, results))

    def _import(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            module, name = r.name(), r.name()
            pos = r.pos
            kind = r.byte()
            desc: int | TableType | Limits | GlobalType
            if kind == 0:
                desc = r.uleb()
                self.type_at(desc, pos)
            elif kind == 1:
                desc = TableType(r.valtype(), _limits(r, "table"))
            elif kind == 2:
                desc = _limits(r, "memory")
            elif kind == 3:
                vt = r.valtype()
                desc = GlobalType(vt, r.byte() == 1)
            else:
                raise MalformedModule(f"malformed import kind {kind}", pos)
            self.imports.append(Import(module, name, ExternKind(kind), desc))

    def _function(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            pos = r.pos
            t = r.uleb()
            self.type_at(t, pos)
            self.func_type_indices.append(t)

    def _table(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            self.tables.append(TableType(r.valtype(), _limits(r, "table")))

    def _memory(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            pos = r.pos
            lim = _limits(r, "memory")
            if lim.minimum > MAX_PAGES or (lim.maximum is not None and lim.maximum > MAX_PAGES):
                raise MalformedModule("memory size must be at most 65536 pages (4GiB)", pos)
            self.memories.append(lim)

    def _global(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            vt = r.valtype()
            mut = r.byte() == 1
            self.globals.append(Global(GlobalType(vt, mut), _init_expr(r, vt)))

    def _export(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            name = r.name()
            pos = r.pos
            kind = r.byte()
            if kind > 3:
                raise MalformedModule(f"malformed export kind {kind}", pos)
            self.exports.append(Export(name, ExternKind(kind), r.uleb()))

    def _start(self, r: _Reader) -> None:
        self.start = r.uleb()

    def _elem(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            pos = r.pos
            flags = r.uleb()
            if flags > 7:
                raise MalformedModule(f"malformed element segment flags {flags}", pos)
            table = 0
            offset: InitExpr | None = None
            if flags & 1:
                mode = SegmentMode.DECLARATIVE if flags & 2 else SegmentMode.PASSIVE
            else:
                mode = SegmentMode.ACTIVE
                if flags & 2:
                    table = r.uleb()
                offset = _init_expr(r, ValType.I32)
            if flags & 4:  # items are expressions
                if flags & 3:
                    r.valtype()  # reftype
                items = tuple(_init_expr(r, ValType.FUNCREF) for _ in range(r.uleb()))
            else:
                if flags & 3:
                    kind_pos = r.pos
                    if r.byte() != 0x00:
                        raise MalformedModule("malformed element kind", kind_pos)
                items = tuple(InitExpr(InitKind.REF_FUNC, r.uleb(), ValType.FUNCREF)
                              for _ in range(r.uleb()))
            self.elems.append(ElemSegment(mode, table, offset, items))

    def _data(self, r: _Reader) -> None:
        for _ in range(r.uleb()):
            pos = r.pos
            flags = r.uleb()
            memory = 0
            offset: InitExpr | None = None
            if flags == 1:
                mode = SegmentMode.PASSIVE
            elif flags in (0, 2):
                mode = SegmentMode.ACTIVE
                if flags == 2:
                    memory = r.uleb()
                offset = _init_expr(r, ValType.I32)
            else:
                raise MalformedModule(f"malformed data segment flags {flags}", pos)
            self.datas.append(DataSegment(mode, memory, offset, r.bytes(r.uleb())))

    def _datacount(self, r: _Reader) -> None:
        r.uleb()

    def _code(self, r: _Reader) -> None:
        n = r.uleb()
        if n != len(self.func_type_indices):
            raise MalformedModule("function and code section have inconsistent lengths", r.pos)
        n_imported = len(self._imported(ExternKind.FUNC))
        for k in range(n):
            size = r.uleb()
            start = r.pos
            body = _Reader(self.data, start, start + size)
            func_index = n_imported + k
            try:
                self.functions.append(self._function_body(body, k, func_index))
            except UnsupportedFeature as exc:
                if not self.lenient:
                    raise UnsupportedFeature(f"{exc.message} (in function {func_index})",
                                             exc.offset) from None
                self.functions.append(Function(
                    self.func_type_indices[k], (), (), start,
                    unsupported=f"{exc.message} at byte offset {exc.offset:#x}"))
            r.pos = start + size

    # -- function bodies --------------------------------------------------------------------
    def _require_integer(self, types: tuple[ValType, ...], what: str, pos: int) -> None:
        for t in types:
            if not t.is_integer:
                raise UnsupportedFeature(f"{what} uses value type {t.text}", pos)

    def _block_type(self, r: _Reader) -> BlockType:
        pos = r.pos
        b = r.data[r.pos] if r.pos < r.end else -1
        if b == 0x40:
            r.pos += 1
            return BlockType((), ())
        if b in _VALTYPES:
            r.pos += 1
            return BlockType((), (_VALTYPES[b],))
        index = r.sleb(33)
        if index < 0:
            raise MalformedModule("malformed block type", pos)
        t = self.type_at(index, pos)
        return BlockType(t.params, t.results)

    def _function_body(self, r: _Reader, k: int, func_index: int) -> Function:
        start = r.pos
        ftype = self.types[self.func_type_indices[k]]
        self._require_integer(ftype.params + ftype.results, f"function type {ftype}", start)
        locals_: list[ValType] = []
        for _ in range(r.uleb()):
            pos = r.pos
            count = r.uleb()
            vt = r.valtype()
            if len(locals_) + count > MAX_LOCALS:
                raise MalformedModule("too many locals", pos)
            self._require_integer((vt,), "local declaration", pos)
            locals_.extend([vt] * count)
        n_locals = len(ftype.params) + len(locals_)

        body: list[Instruction] = []
        opens: list[int] = []  # indices of open block/loop/if
        else_of: dict[int, int] = {}
        end_of: dict[int, int] = {}
        while True:
            pos = r.pos
            code = r.byte()
            info = OPS.get(code)
            if code == 0xFC:
                sub = r.uleb()
                name = PREFIXED_FC.get(sub, f"0xfc {sub}")
                raise UnsupportedFeature(f"unsupported instruction {name} (0xfc {sub})", pos)
            if code == 0xFD:
                raise UnsupportedFeature("unsupported SIMD instruction (0xfd prefix)", pos)
            if info is None:
                raise MalformedModule(f"illegal opcode {code:#04x}", pos)
            if not info.supported:
                raise UnsupportedFeature(f"unsupported instruction {info.name} ({code:#04x})", pos)
            imm: tuple[int, ...] = ()
            block: BlockType | None = None
            kind = info.imm
            if kind is Imm.NONE:
                pass
            elif kind is Imm.BLOCKTYPE:
                block = self._block_type(r)
                self._require_integer(block.params + block.results, f"{info.name} block type", pos)
            elif kind is Imm.LABEL:
                depth = r.uleb()
                if depth > len(opens):
                    raise MalformedModule(f"unknown label {depth}", pos)
                imm = (depth,)
            elif kind is Imm.LABELS:
                depths = tuple(r.uleb() for _ in range(r.uleb() + 1))
                if max(depths) > len(opens):
                    raise MalformedModule(f"unknown label {max(depths)}", pos)
                imm = depths
            elif kind is Imm.FUNC:
                func = r.uleb()
                t = self.func_type(func, pos)
                self._require_integer(t.params + t.results, f"call of a function of type {t}", pos)
                imm = (func,)
            elif kind is Imm.CALL_INDIRECT:
                type_index = r.uleb()
                table = r.uleb()
                t = self.type_at(type_index, pos)
                self._require_integer(t.params + t.results, f"call_indirect of type {t}", pos)
                n_tables = len(self.tables) + len(self._imported(ExternKind.TABLE))
                if table >= n_tables:
                    raise MalformedModule(f"unknown table {table}", pos)
                imm = (type_index, table)
            elif kind is Imm.LOCAL:
                index = r.uleb()
                if index >= n_locals:
                    raise MalformedModule(f"unknown local {index}", pos)
                imm = (index,)
            elif kind is Imm.GLOBAL:
                index = r.uleb()
                gt = self.global_type(index, pos)
                self._require_integer((gt.valtype,), f"{info.name} {index}", pos)
                if code == 0x24 and not gt.mutable:
                    raise MalformedModule(f"global {index} is immutable", pos)
                imm = (index,)
            elif kind is Imm.MEMARG:
                align = r.uleb()
                imm = (align, r.uleb())
                if not self.memories and not self._imported(ExternKind.MEMORY):
                    raise MalformedModule("unknown memory 0", pos)
            elif kind is Imm.MEMIDX:
                if r.byte() != 0:
                    raise UnsupportedFeature(f"{info.name} of a memory other than 0", pos)
                if not self.memories and not self._imported(ExternKind.MEMORY):
                    raise MalformedModule("unknown memory 0", pos)
            elif kind is Imm.I32:
                imm = (r.sleb(32) & 0xFFFFFFFF,)
            elif kind is Imm.I64:
                imm = (r.sleb(64) & 0xFFFFFFFFFFFFFFFF,)
            elif kind is Imm.SELECT_T:
                types = tuple(r.valtype() for _ in range(r.uleb()))
                if len(types) != 1:
                    raise MalformedModule("typed select must name exactly one type", pos)
                self._require_integer(types, "select", pos)
            index = len(body)
            body.append(Instruction(code, info.name, imm, pos, block))
            if code in (0x02, 0x03, 0x04):
                opens.append(index)
            elif code == 0x05:
                if not opens or body[opens[-1]].opcode != 0x04 or opens[-1] in else_of:
                    raise MalformedModule("else without matching if", pos)
                else_of[opens[-1]] = index
            elif code == 0x0B:
                if not opens:
                    break  # end of the function body
                end_of[opens.pop()] = index
        if r.pos != r.end:
            raise MalformedModule("section size mismatch: code after the function's end", r.pos)
        for i, j in end_of.items():
            ins = body[i]
            body[i] = Instruction(ins.opcode, ins.name, (else_of.get(i, -1), j), ins.offset,
                                  ins.block)
        return Function(self.func_type_indices[k], tuple(locals_), tuple(body), start)


def decode_module(data: bytes, *, lenient: bool = False) -> Module:
    """Decode a binary module. Raises `MalformedModule` or `UnsupportedFeature` (see module doc)."""
    return _Decoder(bytes(data), lenient).decode()
