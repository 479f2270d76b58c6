"""Proof that the trace tokens carry the machine state: replay them by the format's rules alone.

`Replay` reads a token sequence (prompt + trace) and keeps only what TRACE_FORMAT.md says a
position can recover:

* `pc`: prefix sum of per-token contributions from `RUN` (`M`, `J`: +1; `JHxx`: 256*(xx-128);
  `JLyy`: yy);
* frame base `fb`: the latest `FH FL` pair;
* slots: four pair streams, each a map slot -> 16-bit pair, latest write wins; memory: a map
  address -> byte (never written: 0); call records: a map frame base -> (pc, fb);
* instruction fields: decoded from the PROG section's tokens, not from the program object.

It knows where each body byte goes from the opcode and fields of the step's instruction, never
from running the instruction. `check_trace` runs the reference stepper in lockstep and, at
every step's anchor, requires the replayed pc, frame base, locals, globals, whole operand stack
of the current frame, memory size and input position to equal the interpreter's; it requires
every data-movement token (a copied value, a frame base, a jump delta, a zeroed local count, a
trap of a memory/table/stack check) to be the one the replayed state predicts, and at the end
the replayed memory and output to equal the interpreter's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .layout import STORE_BYTES, Fields, Layout, as_layout, entry_function, fixed_signature
from .module import Module
from .numeric import LOADS, M32
from .program import LOAD_OPS, STORE_OPS, Op
from .reference import DEFAULT_MAX_MEMORY_PAGES, PAGE_SIZE, Machine
from .stepper import Stepper
from .trace import DIVIDE64_OPS, QUOTIENT_NIBBLES, TraceRun, quotient_nibbles
from .traps import (
    CALL_STACK_EXHAUSTED,
    INDIRECT_CALL_TYPE_MISMATCH,
    OUT_OF_BOUNDS_MEMORY,
    UNDEFINED_ELEMENT,
    UNINITIALIZED_ELEMENT,
    Trap,
)
from .vocab import FRAME_BASE_MAX, OPCODES, TOKEN_ID, TRAP_TOKEN

_OP_OF_TOKEN = {tok: Op(i) for i, tok in enumerate(OPCODES)}


class ReplayError(AssertionError):
    """The tokens do not carry the state the format promises (message: where and what)."""


@dataclass(frozen=True)
class TableEntry:
    entry_pc: int
    type_id: int
    n_params: int
    n_locals: int


@dataclass(frozen=True)
class PromptView:
    """The prompt as read back from its tokens."""

    ops: tuple[Op, ...]
    fields: tuple[Fields, ...]
    n_globals: int
    args: tuple[int, ...]  # 8-byte values
    pages: int
    max_pages: int
    table: tuple[TableEntry | None, ...]
    input: bytes
    entry_pc: int
    entry_locals: int  # Z tokens in the RUN tail
    end: int  # index of the first trace token (just past the prompt)


@dataclass
class Replay:
    """Replayed machine state (see module doc); `feed` one token at a time."""

    streams: tuple[dict[int, int], ...] = field(default_factory=lambda: ({}, {}, {}, {}))
    mem: dict[int, int] = field(default_factory=dict)
    records: dict[int, tuple[int, int]] = field(default_factory=dict)
    pc: int = 0
    fb: int = -1
    output: bytearray = field(default_factory=bytearray)
    getchar_count: int = 0
    pages: int = 0

    def write_pair(self, slot: int, q: int, pair: int) -> None:
        self.streams[q][slot] = pair

    def write_value(self, slot: int, value_bytes: Sequence[int]) -> None:
        """The body rule: byte 2q+1 writes pair q of `slot`."""
        for q in range(len(value_bytes) // 2):
            self.write_pair(slot, q, value_bytes[2 * q] | (value_bytes[2 * q + 1] << 8))

    def zero(self, slot: int) -> None:
        for q in range(4):
            self.streams[q][slot] = 0

    def read(self, slot: int, width: int, what: str = "slot") -> int:
        v = 0
        for q in range(width // 2):
            try:
                v |= self.streams[q][slot] << (16 * q)
            except KeyError:
                raise ReplayError(f"{what} {slot}: pair stream P{q} was never written") from None
        return v

    def read_mem(self, address: int, n: int) -> int:
        return int.from_bytes(bytes(self.mem.get(address + j, 0) for j in range(n)), "little")


def _byte(tok: str, where: str) -> int:
    if len(tok) != 3 or tok[0] != "B" or tok not in TOKEN_ID:
        raise ReplayError(f"{where}: expected a byte token, got {tok!r}")
    return int(tok[1:], 16)


def _fam(tok: str, prefix: str, where: str) -> int:
    if not (tok.startswith(prefix) and len(tok) == len(prefix) + 2 and tok in TOKEN_ID):
        raise ReplayError(f"{where}: expected {prefix}xx, got {tok!r}")
    return int(tok[len(prefix):], 16)


class _Cursor:
    def __init__(self, tokens: Sequence[str], pos: int = 0) -> None:
        self.tokens = tokens
        self.pos = pos

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, what: str) -> str:
        if self.pos >= len(self.tokens):
            raise ReplayError(f"tokens end early: expected {what} at {self.pos}")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.take(tok)
        if got != tok:
            raise ReplayError(f"token {self.pos - 1}: expected {tok!r}, got {got!r}")

    def bytes_(self, n: int, what: str) -> list[int]:
        return [_byte(self.take(what), f"token {self.pos - 1} ({what})") for _ in range(n)]

    def bytes_until_marker(self) -> list[int]:
        out = []
        while (tok := self.peek()) is not None and len(tok) == 3 and tok[0] == "B":
            out.append(_byte(self.take("byte"), "byte"))
        return out


def replay_prompt(tokens: Sequence[str]) -> tuple[PromptView, Replay]:
    """Read the prompt back and apply its writes (GLOB, ARGS, SEG data, RUN's frame and Z)."""
    cur = _Cursor(tokens)
    state = Replay()
    cur.expect("PROG")
    ops, fields = [], []
    while (tok := cur.peek()) in _OP_OF_TOKEN:
        cur.take("opcode")
        ops.append(_OP_OF_TOKEN[tok])
        f = bytes(cur.bytes_(10, "instruction field"))
        fields.append(Fields(int.from_bytes(f[0:2], "little"), int.from_bytes(f[2:6], "little"),
                             int.from_bytes(f[6:10], "little")))

    def eight_byte_groups(section: str, slot0: int) -> list[int]:
        cur.expect(section)
        raw = cur.bytes_until_marker()
        if len(raw) % 8:
            raise ReplayError(f"{section}: {len(raw)} bytes is not a multiple of 8")
        values = []
        for i in range(len(raw) // 8):
            chunk = raw[8 * i:8 * i + 8]
            state.write_value(slot0 + i, chunk)
            values.append(int.from_bytes(bytes(chunk), "little"))
        return values

    globals_ = eight_byte_groups("GLOB", 0)
    n_globals = len(globals_)
    args = eight_byte_groups("ARGS", n_globals)
    cur.expect("DATA")
    p = cur.bytes_(4, "memory pages")
    pages, max_pages = p[0] | p[1] << 8, p[2] | p[3] << 8
    state.pages = pages
    while cur.peek() == "SEG":
        cur.take("SEG")
        base = int.from_bytes(bytes(cur.bytes_(4, "segment address")), "little")
        for j, b in enumerate(cur.bytes_until_marker()):
            state.mem[base + j] = b
    cur.expect("TABLE")
    raw = cur.bytes_until_marker()
    if len(raw) % 6:
        raise ReplayError(f"TABLE: {len(raw)} bytes is not a multiple of 6")
    table = []
    for i in range(0, len(raw), 6):
        e = raw[i:i + 6]
        entry = e[0] | e[1] << 8
        table.append(None if entry == 0xFFFF else TableEntry(entry, e[2] | e[3] << 8, e[4], e[5]))
    cur.expect("INPUT")
    input_ = bytes(cur.bytes_until_marker())
    cur.expect("RUN")
    state.pc = -1
    fb = _fam(cur.take("FH"), "FH", "RUN") << 8
    fb |= _fam(cur.take("FL"), "FL", "RUN")
    state.fb = fb
    if fb != n_globals:
        raise ReplayError(f"RUN: entry frame base {fb}, but there are {n_globals} globals")
    n_z = 0
    while cur.peek() == "Z":
        cur.take("Z")
        state.zero(fb + len(args) + n_z)
        n_z += 1
    cur.expect("J")
    state.pc += 1 + _jump(cur)
    view = PromptView(tuple(ops), tuple(fields), n_globals, tuple(args), pages, max_pages,
                      tuple(table), input_, state.pc, n_z, cur.pos)
    return view, state


def _jump(cur: _Cursor) -> int:
    """The delta of `JHxx JLyy` (the `J` already taken)."""
    hi = _fam(cur.take("JH"), "JH", f"token {cur.pos}")
    lo = _fam(cur.take("JL"), "JL", f"token {cur.pos}")
    return 256 * (hi - 128) + lo


def _signed32(x: int) -> int:
    return x - (1 << 32) if x & 0x80000000 else x


@dataclass(frozen=True)
class CheckReport:
    steps: int
    trace_tokens: int
    max_frame_base: int


def check_trace(program: Module | Layout, tokens: Sequence[str], entry: int | str,
                args: Sequence[int] = (), input_bytes: bytes = b"",
                run: TraceRun | None = None, *, check_every: int = 1,
                max_memory_pages: int = DEFAULT_MAX_MEMORY_PAGES) -> CheckReport:
    """Replay `tokens` (see module doc) against a fresh reference run of `entry(*args)`; raises
    ReplayError at the first disagreement. With `run`, its step alignment (start index, pc of
    every step) must match the replay's. `check_every` > 1 compares locals, globals and the
    operand stack only at every k-th step (token predictions are checked at every step)."""
    layout = as_layout(program)
    prog = layout.program
    fn = entry_function(layout, entry)
    for tok in tokens:
        if tok not in TOKEN_ID:
            raise ReplayError(f"{tok!r} is not in the vocabulary")
    view, st = replay_prompt(tokens)
    if len(view.ops) != len(prog.code) or any(
            o != ins.op for o, ins in zip(view.ops, prog.code)) or view.fields != layout.fields:
        raise ReplayError("PROG section does not match the program's instructions and fields")
    frame = layout.frames[fn.index]
    assert frame is not None
    want_args = tuple(int(a) & ((1 << 64) - 1 if w == 8 else M32)
                      for a, w in zip(args, frame.local_widths))
    if view.args != want_args:
        raise ReplayError(f"ARGS {view.args} != {want_args}")
    if view.input != bytes(input_bytes):
        raise ReplayError("INPUT section does not hold the input bytes")
    if view.entry_pc != fn.entry_pc or view.entry_locals != fn.n_locals:
        raise ReplayError(f"RUN enters pc {view.entry_pc} with {view.entry_locals} locals; "
                          f"{fn.name} starts at {fn.entry_pc} with {fn.n_locals}")

    machine = Machine(prog, input=bytes(input_bytes), max_call_depth=FRAME_BASE_MAX + 2,
                      max_memory_pages=max_memory_pages)
    if machine.max_pages != view.max_pages or machine.memory_pages() != view.pages:
        raise ReplayError("DATA pages do not match the instantiated memory")
    machine.begin(fn.index, args)
    stepper = Stepper(machine)
    cur = _Cursor(tokens, view.end)
    real_fbs = [view.n_globals]
    ng = view.n_globals
    max_fb = ng
    step = 0
    anchor = view.end - 1
    start = view.end - 3

    def fail(msg: str) -> ReplayError:
        return ReplayError(f"step {step} (pc {pc}, {op.text}, anchor token {anchor}): {msg}")

    while True:
        pc = st.pc
        fb = st.fb
        if not 0 <= pc < len(view.ops):
            raise ReplayError(f"step {step}: replayed pc {pc} outside the program")
        op = view.ops[pc]
        f = view.fields[pc]
        if run is not None:
            if step >= run.n_steps or run.step_starts[step] != start or run.step_pcs[step] != pc:
                raise fail("TraceRun step alignment differs from the replay")
        # ---- state at the anchor vs the interpreter --------------------------------------
        if machine.pc != pc:
            raise fail(f"replayed pc {pc} != interpreter pc {machine.pc}")
        while len(real_fbs) > len(machine.frames) + 1:
            real_fbs.pop()
        if len(real_fbs) != len(machine.frames) + 1:  # pragma: no cover - one call per step
            raise fail("frame bookkeeping lost track of the interpreter's frames")
        if fb != real_fbs[-1]:
            raise fail(f"replayed frame base {fb} != {real_fbs[-1]}")
        if st.pages != machine.memory_pages():
            raise fail(f"replayed memory pages {st.pages} != {machine.memory_pages()}")
        if min(st.getchar_count, len(view.input)) != machine.input_pos:
            raise fail("getchar count disagrees with the interpreter's input position")
        if step % check_every == 0:
            shape = layout.frame_at(pc)
            for i, (v, w) in enumerate(zip(machine.locals, shape.local_widths)):
                if st.read(fb + i, w, "local slot") != v:
                    raise fail(f"local {i} (slot {fb + i}) replays as "
                               f"{st.read(fb + i, w)}, interpreter has {v}")
            for g, (v, w) in enumerate(zip(machine.globals, layout.global_widths)):
                if st.read(g, w, "global slot") != v:
                    raise fail(f"global {g} replays as {st.read(g, w)}, interpreter has {v}")
            widths = layout.stack_widths[pc]
            stack = machine.stack[machine.base:]
            assert widths is not None and len(widths) == len(stack)
            for h, (v, w) in enumerate(zip(stack, widths)):
                slot = fb + shape.fo + h
                if st.read(slot, w, "stack slot") != v:
                    raise fail(f"operand stack height {h} (slot {slot}) replays as "
                               f"{st.read(slot, w)}, interpreter has {v}")

        # ---- run the instruction; traps the state predicts ---------------------------------
        predicted_trap = None
        if op in LOAD_OPS or op in STORE_OPS:
            n = STORE_BYTES[op] if op in STORE_OPS else _load_width(op)
            if st.read(fb + f.s, 4) + f.x + n > st.pages * PAGE_SIZE:
                predicted_trap = OUT_OF_BOUNDS_MEMORY
        elif op == Op.CALL_INDIRECT:
            idx = st.read(fb + f.s + f.y, 4)
            e = view.table[idx] if idx < len(view.table) else None
            predicted_trap = (UNDEFINED_ELEMENT if idx >= len(view.table) else
                              UNINITIALIZED_ELEMENT if e is None else
                              INDIRECT_CALL_TYPE_MISMATCH if e.type_id != f.x else None)
        if predicted_trap is None and op in (Op.CALL, Op.CALL_INDIRECT) \
                and fb + f.s > FRAME_BASE_MAX:
            predicted_trap = CALL_STACK_EXHAUSTED
        if predicted_trap == CALL_STACK_EXHAUSTED:
            real_trap = CALL_STACK_EXHAUSTED  # the format's rule; the interpreter's depth is larger
        else:
            try:
                r = stepper.step()
                real_trap = None
            except Trap as exc:
                real_trap = exc.message
        if predicted_trap is not None and predicted_trap != real_trap:
            raise fail(f"state predicts trap {predicted_trap!r}, interpreter: {real_trap!r}")
        if real_trap is not None:
            tok = cur.take("trap")
            if tok != TRAP_TOKEN[real_trap]:
                raise fail(f"expected {TRAP_TOKEN[real_trap]}, got {tok!r}")
            break
        if r.mem_read is not None:
            a = r.mem_read
            if st.read_mem(a.address, a.size) != a.value:
                raise fail(f"memory bytes at {a.address} replay as "
                           f"{st.read_mem(a.address, a.size):#x}, interpreter read {a.value:#x}")

        # ---- the body ------------------------------------------------------------------------
        jumped: bool | None = False  # None: a return from the entry function (HALT)
        expect_delta: int | None = None
        sig = fixed_signature(op)
        if op == Op.PUTCHAR:
            tok = cur.take("O")
            c = _fam(tok, "O", f"token {cur.pos - 1}")
            if c != st.read(fb + f.s, 4) & 0xFF:
                raise fail("putchar's O byte is not the operand's low byte")
            st.output.append(c)
            vb = cur.bytes_(4, "putchar result")
            if int.from_bytes(bytes(vb), "little") != c:
                raise fail("putchar's result bytes are not c & 255")
            st.write_value(fb + f.s, vb)
        elif op in STORE_OPS:
            n = STORE_BYTES[op]
            vb = cur.bytes_(n, "stored bytes")
            value = st.read(fb + f.s + 1, sig[0][1]) & ((1 << (8 * n)) - 1)
            if int.from_bytes(bytes(vb), "little") != value:
                raise fail("stored bytes are not the value operand's low bytes")
            addr = st.read(fb + f.s, 4) + f.x
            for j, b in enumerate(vb):
                st.mem[addr + j] = b
        elif op in DIVIDE64_OPS:
            nibbles = cur.bytes_(QUOTIENT_NIBBLES, "quotient nibbles")
            want_nibbles = [_byte(t, "quotient") for t in quotient_nibbles(
                op, st.read(fb + f.s, 8), st.read(fb + f.s + 1, 8))]
            if nibbles != want_nibbles:
                raise fail(f"quotient nibbles {nibbles}, the replayed operands give {want_nibbles}")
            vb = cur.bytes_(8, "value")
            if int.from_bytes(bytes(vb), "little") != r.pushed[0]:
                raise fail(f"value bytes {bytes(vb).hex()}, interpreter pushed {r.pushed[0]:#x}")
            st.write_value(fb + f.s, vb)
        elif (sig is not None and sig[1]) or op in (Op.LOCAL_GET, Op.GLOBAL_GET, Op.SELECT):
            w = sig[1] if sig is not None else f.y
            vb = cur.bytes_(w, "value")
            value = int.from_bytes(bytes(vb), "little")
            want = _predict_value(st, view, op, f, fb)
            if want is not None and value != want:
                raise fail(f"value bytes {value:#x}, replayed state predicts {want:#x}")
            if value != r.pushed[0]:
                raise fail(f"value bytes {value:#x}, interpreter pushed {r.pushed[0]:#x}")
            if op == Op.GETCHAR:
                st.getchar_count += 1
            elif op == Op.MEMORY_GROW and value != M32:
                st.pages = value + st.read(fb + f.s, 4)
            st.write_value(fb + f.s, vb)
        elif op in (Op.LOCAL_SET, Op.LOCAL_TEE, Op.GLOBAL_SET):
            vb = cur.bytes_(f.y, "value")
            if int.from_bytes(bytes(vb), "little") != st.read(fb + f.s, f.y):
                raise fail("set bytes are not the operand's value")
            st.write_value(f.x if op == Op.GLOBAL_SET else fb + f.x, vb)
        elif op in (Op.BR, Op.BR_IF, Op.IF):
            if op == Op.BR:
                jumped = True
            else:
                cond = st.read(fb + f.s, 4)
                jumped = (cond != 0) if op == Op.BR_IF else (cond == 0)
            if jumped and f.y:
                w = f.y >> 16
                vb = cur.bytes_(w, "carried value")
                if int.from_bytes(bytes(vb), "little") != st.read(fb + f.s - 1, w):
                    raise fail("carried bytes are not the value below the branch's operands")
                st.write_value(fb + (f.y & 0xFFFF), vb)
            expect_delta = _signed32(f.x)
        elif op == Op.BR_TABLE:
            jumped = True
            expect_delta = min(st.read(fb + f.s, 4), f.x)
        elif op == Op.DROP:
            pass
        elif op in (Op.CALL, Op.CALL_INDIRECT):
            if op == Op.CALL:
                n_params, n_locals = f.y & 0xFF, f.y >> 8
                expect_delta = _signed32(f.x)
            else:
                e = view.table[st.read(fb + f.s + f.y, 4)]
                assert e is not None
                n_params, n_locals = f.y, e.n_locals
                if e.n_params != n_params:
                    raise fail("table entry's np differs from call_indirect's Y")
                expect_delta = e.entry_pc - pc - 1
            new_fb = _frame(cur, "call")
            if new_fb != fb + f.s:
                raise fail(f"callee frame base {new_fb} != fb + S = {fb + f.s}")
            st.records[new_fb] = (pc, fb)  # written at the FL position
            st.fb = new_fb
            callee = machine.func_at(machine.pc)
            real_fbs.append(real_fbs[-1] + layout.frame_at(pc).fo + prog.heights[pc]
                            - callee.n_params - (op == Op.CALL_INDIRECT))
            max_fb = max(max_fb, new_fb)
            for j in range(n_locals):
                cur.expect("Z")
                st.zero(new_fb + n_params + j)
            jumped = True
        elif op == Op.RETURN:
            w = f.y >> 8
            if w:
                vb = cur.bytes_(w, "returned value")
                if int.from_bytes(bytes(vb), "little") != st.read(fb + f.s, w):
                    raise fail("returned bytes are not the top operand")
                st.write_value(fb, vb)
            if fb in st.records:
                ret_pc, caller_fb = st.records[fb]
                got = _frame(cur, "return")
                if got != caller_fb:
                    raise fail(f"return restores frame base {got}, call record says {caller_fb}")
                st.fb = caller_fb
                jumped = True
                expect_delta = ret_pc - pc
            else:
                if fb != ng:
                    raise fail(f"no call record for frame base {fb}, yet it is not the entry's")
                cur.expect("HALT")
                jumped = None
        else:
            raise fail(f"{op.text} has no body rule (unreachable traps above)")

        if jumped is None:
            if not machine.done:
                raise fail("HALT, but the interpreter has not returned from the entry function")
            break
        if machine.done:  # pragma: no cover - only a return ends a run
            raise fail("the interpreter finished but the replay expects more steps")
        # ---- the next step's entry: pc by prefix sum -------------------------------------
        step += 1
        start = cur.pos
        tok = cur.take("entry")
        if tok == "M":
            if jumped:
                raise fail("a jumping step must be followed by J, got M")
            st.pc += 1
            anchor = start
        elif tok == "J":
            if not jumped:
                raise fail("a sequential step must be followed by M, got J")
            delta = _jump(cur)
            if expect_delta is not None and delta != expect_delta:
                raise fail(f"jump delta {delta}, state predicts {expect_delta}")
            st.pc += 1 + delta
            anchor = cur.pos - 1
        else:
            raise fail(f"expected the next step's entry (M or J), got {tok!r}")

    if cur.pos != len(tokens):
        raise ReplayError(f"{len(tokens) - cur.pos} tokens after the end of the run")
    if run is not None and run.n_steps != step + 1:
        raise ReplayError(f"TraceRun has {run.n_steps} steps, the replay {step + 1}")
    if bytes(st.output) != bytes(machine.output):
        raise ReplayError("replayed output differs from the interpreter's")
    mem = machine.memory
    replayed = bytearray(len(mem))
    for addr, b in st.mem.items():
        if addr >= len(mem):
            raise ReplayError(f"replay wrote memory at {addr}, beyond the memory size")
        replayed[addr] = b
    if replayed != mem:
        first = next(i for i in range(len(mem)) if replayed[i] != mem[i])
        raise ReplayError(f"final memory differs first at address {first}")
    return CheckReport(step + 1, len(tokens) - view.end, max_fb)


def _load_width(op: Op) -> int:
    return LOADS[op][0]


def _frame(cur: _Cursor, what: str) -> int:
    hi = _fam(cur.take("FH"), "FH", f"{what} frame base")
    return hi << 8 | _fam(cur.take("FL"), "FL", f"{what} frame base")


def _predict_value(st: Replay, view: PromptView, op: Op, f: Fields, fb: int) -> int | None:
    """The value a data-movement step must write, from replayed state alone (None: the value
    is arithmetic, checked against the interpreter instead)."""
    if op == Op.I32_CONST:
        return f.x
    if op == Op.I64_CONST:
        return f.x | (f.y << 32)
    if op == Op.LOCAL_GET:
        return st.read(fb + f.x, f.y)
    if op == Op.GLOBAL_GET:
        return st.read(f.x, f.y)
    if op == Op.SELECT:
        return st.read(fb + f.s, f.y) if st.read(fb + f.s + 2, 4) else st.read(fb + f.s + 1, f.y)
    if op in LOAD_OPS:
        width, is_signed, mask = LOADS[op]
        raw = st.read_mem(st.read(fb + f.s, 4) + f.x, width)
        if is_signed and raw >> (8 * width - 1):
            raw -= 1 << (8 * width)
        return raw & mask
    if op == Op.GETCHAR:
        k = st.getchar_count
        return view.input[k] if k < len(view.input) else M32
    if op == Op.MEMORY_SIZE:
        return st.pages
    if op == Op.MEMORY_GROW:
        return st.pages if st.pages + st.read(fb + f.s, 4) <= view.max_pages else M32
    return None


__all__ = ["Replay", "ReplayError", "PromptView", "TableEntry", "CheckReport", "replay_prompt",
           "check_trace"]
