"""The executable definition of the WASM machine's trace tokens (TRACE_FORMAT.md).

`run_traced` executes a program with the reference `Stepper` and appends, per executed
instruction, exactly the step tokens the format defines; the transformer interpreter must
reproduce `TraceRun.tokens` token for token. `decode_trace` reads a run's output and result
back from the tokens alone. `trace_check.check_trace` proves the tokens carry the machine state.

The traced machine differs from the plain interpreter in one documented place: its call stack
is exhausted when a callee's frame base would not fit `FH FL` (16 bits), not after a fixed
number of frames, because the frame base is what the tokens carry.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Iterator, Sequence

from .layout import JUMPING_ALWAYS, STORE_BYTES, Layout, as_layout, entry_function, fixed_signature
from .module import Module
from .numeric import signed
from .program import LOAD_OPS, STORE_OPS, Op, Program
from .reference import DEFAULT_MAX_MEMORY_PAGES, Machine
from .stepper import Stepper
from .traps import CALL_STACK_EXHAUSTED, Trap
from .vocab import (
    BYTES,
    FRAME_BASE_MAX,
    OUTPUT,
    TRAP_OF_TOKEN,
    TRAP_TOKEN,
    frame_tokens,
    jump_tokens,
)
from .prompt import build_prompt


@dataclass(frozen=True)
class TraceStep:
    """One executed instruction: its entry starts at `tokens[start]`, its anchor (the entry's
    last token, `M` or `JLxx`) is `tokens[anchor]`, its body follows the anchor."""

    start: int
    anchor: int
    pc: int
    op: Op


@dataclass(frozen=True)
class TraceRun:
    """A traced run. `tokens = prompt + trace`; the prompt ends with the first step's entry.

    Exactly one of `results` (the entry function returned: `HALT`), `trap` (`TRAP_<name>`) and
    `stopped_early` (the step limit was reached; no end token) describes how it ended. A run made
    with `keep_tokens=False` only counts: `trace` and the step arrays are empty.
    """

    prompt: tuple[str, ...]
    trace: tuple[str, ...]
    program: Program
    step_starts: array  # typecode "q": start index of each step's entry in `tokens`
    step_pcs: array  # typecode "q"
    results: tuple[int, ...] | None
    trap: str | None
    output: bytes
    stopped_early: bool
    instructions: int  # steps executed (the trapping one included)
    trace_token_count: int  # len(trace) when the tokens were kept

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.prompt + self.trace

    @property
    def n_steps(self) -> int:
        return self.instructions

    @property
    def tokens_per_instruction(self) -> float:
        """Generated tokens per executed instruction (the first entry sits in the prompt)."""
        return self.trace_token_count / max(1, self.instructions)

    def step(self, i: int) -> TraceStep:
        if len(self.step_pcs) != self.instructions:
            raise ValueError("this run only counted tokens (keep_tokens=False)")
        start, pc = self.step_starts[i], self.step_pcs[i]
        first = self.prompt[start] if start < len(self.prompt) else self.trace[start - len(self.prompt)]
        return TraceStep(start, start if first == "M" else start + 2, pc, self.program.code[pc].op)

    def steps(self) -> Iterator[TraceStep]:
        return (self.step(i) for i in range(self.n_steps))

    def listing(self, max_steps: int | None = None) -> str:
        """One line per step: pc, instruction, its entry tokens | its body tokens."""
        tokens = self.tokens
        n = self.n_steps if max_steps is None else min(max_steps, self.n_steps)
        lines = []
        for i in range(n):
            s = self.step(i)
            end = self.step_starts[i + 1] if i + 1 < self.n_steps else len(tokens)
            ins = self.program.code[s.pc]
            entry = " ".join(tokens[s.start:s.anchor + 1])
            body = " ".join(tokens[s.anchor + 1:end])
            lines.append(f"{s.pc:5d} {ins.op.text:<16} {entry:<14} | {body}")
        return "\n".join(lines)


# Body kinds, decided per pc once (see TRACE_FORMAT.md, "Trace").
_VALUE, _LOCAL_SET, _GLOBAL_SET, _STORE, _BRANCH, _EMPTY, _CALL, _CALL_INDIRECT, _RETURN, \
    _PUTCHAR, _TRAP_ONLY, _DIVIDE64 = range(12)

DIVIDE64_OPS = frozenset({Op.I64_DIV_U, Op.I64_DIV_S, Op.I64_REM_U, Op.I64_REM_S})
"""Their body starts with the quotient's nibbles (`quotient_nibbles`), then the result."""
QUOTIENT_NIBBLES = 16


def quotient_nibbles(op: Op, n: int, d: int) -> list[str]:
    """The scratch tokens of an i64 division: the nibbles of |N| div |D| (magnitudes of the
    signed operands for div_s / rem_s), most significant first, as `B00`..`B0f`.  One nibble
    per position is what a position can compute exactly from the nibbles above it (see
    stdlib/divide64.rasp2d); a whole 64-bit quotient at one position cannot be."""
    if op in (Op.I64_DIV_S, Op.I64_REM_S):
        n, d = abs(signed(n, 64)), abs(signed(d, 64))
    q = (n // d) % 2 ** 64
    return [BYTES[(q >> (4 * v)) & 15] for v in range(QUOTIENT_NIBBLES - 1, -1, -1)]


def _body_kinds(layout: Layout) -> list[tuple[int, int]]:
    """(kind, byte width) per pc."""
    out = []
    for pc, ins in enumerate(layout.program.code):
        op = ins.op
        w = layout.body_width[pc]
        sig = fixed_signature(op)
        if op == Op.PUTCHAR:
            kind = _PUTCHAR
        elif op in DIVIDE64_OPS:
            kind = _DIVIDE64
        elif op in STORE_OPS:
            kind, w = _STORE, STORE_BYTES[op]
        elif (sig is not None and sig[1]) or op in (Op.LOCAL_GET, Op.GLOBAL_GET, Op.SELECT):
            kind = _VALUE
        elif op in (Op.LOCAL_SET, Op.LOCAL_TEE):
            kind = _LOCAL_SET
        elif op == Op.GLOBAL_SET:
            kind = _GLOBAL_SET
        elif op in (Op.BR, Op.BR_IF, Op.IF):
            kind = _BRANCH
        elif op in (Op.BR_TABLE, Op.DROP):
            kind = _EMPTY
        elif op == Op.CALL:
            kind = _CALL
        elif op == Op.CALL_INDIRECT:
            kind = _CALL_INDIRECT
        elif op == Op.RETURN:
            kind = _RETURN
        elif op == Op.UNREACHABLE:
            kind = _TRAP_ONLY
        else:  # pragma: no cover - build_layout refuses everything else
            raise AssertionError(f"no trace form for {op.text}")
        assert op not in LOAD_OPS or kind == _VALUE
        out.append((kind, w))
    return out


def run_traced(program: Module | Layout, entry: int | str, args: Sequence[int] = (),
               input_bytes: bytes = b"", max_steps: int | None = None, *,
               max_memory_pages: int = DEFAULT_MAX_MEMORY_PAGES,
               keep_tokens: bool = True) -> TraceRun:
    """Run `entry(*args)` on `input_bytes`, emitting the prompt and every step's tokens
    (`keep_tokens=False`: the same tokens are produced but only counted, in bounded memory)."""
    layout = as_layout(program)
    prog = layout.program
    fn = entry_function(layout, entry)
    prompt = build_prompt(layout, fn.index, args, input_bytes, max_memory_pages=max_memory_pages)
    # Depth never limits first: every frame takes >= 1 slot, so fb overflows by then.
    machine = Machine(prog, input=input_bytes, max_call_depth=FRAME_BASE_MAX + 2,
                      max_memory_pages=max_memory_pages)
    machine.begin(fn.index, args)
    stepper = Stepper(machine)
    kinds = _body_kinds(layout)
    fields = layout.fields
    code = prog.code
    functions = prog.functions

    out: list[str] = []
    emit = out.append
    extend = out.extend
    bt = BYTES.__getitem__

    def value(v: int, w: int) -> None:
        extend(map(bt, v.to_bytes(w, "little")))

    base = len(prompt)
    starts = array("q")
    pcs = array("q")
    fbs = [layout.n_globals]
    entry_tokens: list[str] | None = None  # the first step's entry is the prompt's tail
    trap: str | None = None
    stopped = False
    budget = -1 if max_steps is None else max_steps
    flushed = 0  # tokens counted and dropped (keep_tokens=False)
    executed = 0
    while not machine.done:
        if budget == 0:
            stopped = True
            break
        budget -= 1
        executed += 1
        pc = machine.pc
        if keep_tokens:
            starts.append(base - 3 if entry_tokens is None else base + len(out))
            pcs.append(pc)
        elif len(out) > 65536:
            flushed += len(out)
            out.clear()
        if entry_tokens is not None:
            out += entry_tokens
        kind, w = kinds[pc]
        f = fields[pc]
        fb = fbs[-1]
        n_locals = 0
        try:
            if kind == _CALL or kind == _CALL_INDIRECT:
                if kind == _CALL:
                    n_locals = f.y >> 8
                else:  # the table look-up's traps come before the stack check
                    n_locals = machine.indirect_target(code[pc].b, machine.stack[-1],
                                                       code[pc].a).n_locals
                if fb + f.s > FRAME_BASE_MAX:
                    raise Trap(CALL_STACK_EXHAUSTED, pc, functions[prog.func_of[pc]].name)
            if kind == _DIVIDE64:
                operands = machine.stack[-2:]
            r = stepper.step()
        except Trap as exc:
            trap = exc.message
            emit(TRAP_TOKEN[trap])
            break
        jumped = False
        if kind == _VALUE:
            value(r.pushed[0], w)
        elif kind == _LOCAL_SET:
            value(r.local_write[1], w)
        elif kind == _GLOBAL_SET:
            value(r.global_write[1], w)
        elif kind == _STORE:
            value(r.mem_write.value, w)
        elif kind == _BRANCH:
            jumped = bool(r.taken) or code[pc].op == Op.BR
            if jumped and f.y:
                value(r.pushed[-1], w)
        elif kind == _EMPTY:
            jumped = code[pc].op == Op.BR_TABLE
        elif kind == _CALL or kind == _CALL_INDIRECT:
            fbs.append(fb + f.s)
            out += frame_tokens(fb + f.s)
            out += ["Z"] * n_locals
            jumped = True
        elif kind == _RETURN:
            if w:
                value(r.pushed[-1], w)
            if machine.done:
                emit("HALT")
            else:
                fbs.pop()
                out += frame_tokens(fbs[-1])
                jumped = True
        elif kind == _PUTCHAR:
            emit(OUTPUT[r.output_byte])
            value(r.pushed[0], 4)
        elif kind == _DIVIDE64:
            extend(quotient_nibbles(code[pc].op, *operands))
            value(r.pushed[0], 8)
        if machine.done:
            break
        if jumped:
            entry_tokens = jump_tokens(r.next_pc - pc - 1)
        else:
            assert r.next_pc == pc + 1 and code[pc].op not in JUMPING_ALWAYS
            entry_tokens = ["M"]
    return TraceRun(tuple(prompt), tuple(out) if keep_tokens else (), prog, starts, pcs,
                    machine.results if machine.done else None, trap, bytes(machine.output),
                    stopped, executed, flushed + len(out))


@dataclass(frozen=True)
class DecodedTrace:
    """What a token sequence says about its run: output bytes and how it ended."""

    output: bytes
    results: tuple[int, ...] | None  # set when it ends in HALT (() for no result)
    trap: str | None  # set when it ends in TRAP_<name>
    finished: bool


def decode_trace(tokens: Sequence[str]) -> DecodedTrace:
    """Output and result from tokens alone: `O` tokens are the output; a final `HALT` is
    preceded by the returned value's bytes (its only run of `B` tokens right before it)."""
    output = bytes(int(t[1:], 16) for t in tokens if len(t) == 3 and t[0] == "O")
    if not tokens:
        return DecodedTrace(output, None, None, False)
    last = tokens[-1]
    if last == "HALT":
        k = len(tokens) - 1
        while k > 0 and len(tokens[k - 1]) == 3 and tokens[k - 1][0] == "B":
            k -= 1
        value_bytes = bytes(int(t[1:], 16) for t in tokens[k:len(tokens) - 1])
        if len(value_bytes) not in (0, 4, 8):
            raise ValueError(f"HALT preceded by {len(value_bytes)} value bytes (expected 0, 4 "
                             f"or 8)")
        results = (int.from_bytes(value_bytes, "little"),) if value_bytes else ()
        return DecodedTrace(output, results, None, True)
    if last in TRAP_OF_TOKEN:
        return DecodedTrace(output, None, TRAP_OF_TOKEN[last], True)
    return DecodedTrace(output, None, None, False)


@dataclass(frozen=True)
class TraceStats:
    prompt_tokens: int
    trace_tokens: int
    instructions: int

    @property
    def tokens_per_instruction(self) -> float:
        return self.trace_tokens / max(1, self.instructions)

    def summary(self) -> str:
        """The phrase `rasp2d exec` prints."""
        return (f"trace tokens {self.trace_tokens} ({self.tokens_per_instruction:.2f} per "
                f"instruction, prompt {self.prompt_tokens})")


def trace_stats(program: Module | Layout, entry: int | str, args: Sequence[int] = (),
                input_bytes: bytes = b"", max_steps: int | None = None) -> TraceStats:
    """Token counts of a traced run (for `rasp2d exec --backend reference`), in bounded memory."""
    run = run_traced(program, entry, args, input_bytes, max_steps, keep_tokens=False)
    return TraceStats(len(run.prompt), run.trace_token_count, run.instructions)


__all__ = ["TraceRun", "TraceStep", "run_traced", "DecodedTrace", "decode_trace", "TraceStats",
           "trace_stats"]
