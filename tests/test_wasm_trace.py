"""Token format v1 (interpreter_spec/TRACE_FORMAT.md): prompt, trace tokens, decoding, replay.

The replay checker (`trace_check.check_trace`) is the proof that the format is machine-readable:
it recovers pc, frame base, locals, globals, operand stacks and memory from the tokens by the
format's rules alone and holds them to the reference interpreter at every step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasp2d.interpreter_spec.frontend import default_entry, load_program
from rasp2d.interpreter_spec.layout import TraceFormatError, build_layout
from rasp2d.interpreter_spec.program import Op
from rasp2d.interpreter_spec.prompt import build_prompt
from rasp2d.interpreter_spec.reference import Machine
from rasp2d.interpreter_spec.trace import decode_trace, run_traced, trace_stats
from rasp2d.interpreter_spec.trace_check import ReplayError, check_trace
from rasp2d.interpreter_spec.traps import Trap
from rasp2d.interpreter_spec.vocab import TOKEN_ID, VOCAB, decode, encode

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"
FAST_EXAMPLES = {"addition.c": b"", "crc32.c": b"The quick brown fox", "hungarian.c": b"",
                 "primes.c": b"200", "collatz.c": b"7"}
"""Example programs (and inputs) checked in the default run; every other one is slow."""


def reference_outcome(program, entry, args=(), input_bytes=b""):
    machine = Machine(program, input=input_bytes)
    try:
        results, trap = machine.invoke(entry, args), None
    except Trap as exc:
        results, trap = None, exc.message
    return results, trap, bytes(machine.output)


def expected_prompt_length(layout, entry, n_input):
    prog = layout.program
    fn = prog.functions[prog.export_func(entry) if isinstance(entry, str) else entry]
    table = prog.tables[0].limits.minimum if prog.tables else 0
    return (1 + 11 * len(prog.code)                       # PROG
            + 1 + 8 * len(prog.globals)                   # GLOB
            + 1 + 8 * fn.n_params                         # ARGS
            + 1 + 4 + sum(5 + len(d.data) for d in prog.datas)  # DATA pages, SEG a0..a3 d*
            + 1 + 6 * table                               # TABLE
            + 1 + n_input                                 # INPUT
            + 1 + 2 + fn.n_locals + 3)                    # RUN FH FL Z* J JH JL


def assert_trace_is_exact(layout, entry, args=(), input_bytes=b"", max_steps=None):
    """Everything the format promises for one run; returns the run."""
    run = run_traced(layout, entry, args, input_bytes, max_steps)
    assert not run.stopped_early
    tokens = run.tokens
    assert all(t in TOKEN_ID for t in tokens)
    assert decode(encode(tokens)) == list(tokens)
    assert len(run.prompt) == expected_prompt_length(layout, entry, len(input_bytes))
    results, trap, output = reference_outcome(layout.program, entry, args, input_bytes)
    decoded = decode_trace(tokens)
    assert decoded.finished
    assert decoded.output == output == run.output
    if trap == "call stack exhausted":  # the traced machine's limit is the 16-bit frame base
        assert decoded.trap == trap
    else:
        assert (decoded.results, decoded.trap) == (results, trap) == (run.results, run.trap)
    report = check_trace(layout, tokens, entry, args, input_bytes, run=run)
    assert report.steps == run.n_steps
    for i in range(run.n_steps):
        step = run.step(i)
        assert tokens[step.anchor] == "M" or tokens[step.anchor].startswith("JL")
        assert step.anchor == step.start or tokens[step.start] == "J"
    return run


# --- vocabulary -----------------------------------------------------------------------------

def test_vocabulary_order_and_families():
    assert VOCAB[:12] == ("PROG", "GLOB", "ARGS", "DATA", "SEG", "TABLE", "INPUT", "RUN",
                          "M", "J", "Z", "HALT")
    for prefix in ("B", "JH", "JL", "FH", "FL", "O"):
        family = [t for t in VOCAB if t.startswith(prefix) and len(t) == len(prefix) + 2
                  and t[len(prefix):].isalnum() and not t.startswith("OP_")]
        assert family == [f"{prefix}{v:02x}" for v in range(256)]
    assert len(set(VOCAB)) == len(VOCAB)
    assert {t for t in VOCAB if t.startswith("TRAP_")} >= {"TRAP_integer_divide_by_zero",
                                                           "TRAP_unreachable",
                                                           "TRAP_call_stack_exhausted"}
    with pytest.raises(KeyError, match="not in the WASM machine's vocabulary"):
        encode(["B00", "nope"])


# --- a worked example, pinned token for token ------------------------------------------------

WORKED_EXAMPLE = """
(module
  (import "env" "putchar" (func $putchar (param i32) (result i32)))
  (func $twice (param $x i32) (result i32) (local $t i32)
    (local.set $t (i32.add (local.get $x) (local.get $x)))
    (local.get $t))
  (func (export "main") (param $n i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (drop (call $putchar (i32.const 42)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (call $twice (i32.const 21))))
"""

WORKED_TRACE = """
B01 B00 B00 B00  M B00 B00 B00 B00  M M B2a B00 B00 B00  M O2a B2a B00 B00 B00
M M B01 B00 B00 B00  M B00 B00 B00 B00  M B00 B00 B00 B00 M
J JH7f JLf6 B00 B00 B00 B00  M B01 B00 B00 B00 M
J JH80 JL07 B15 B00 B00 B00  M FH00 FL02 Z
J JH7f JLef B15 B00 B00 B00  M B2a B00 B00 B00  M B2a B00 B00 B00  M B2a B00 B00 B00
M B2a B00 B00 B00 FH00 FL00
J JH80 JL0c B2a B00 B00 B00 HALT
""".split()


def test_worked_example_tokens():
    layout = build_layout(load_program(WORKED_EXAMPLE, kind="wat"))
    run = assert_trace_is_exact(layout, "main", (1,))
    assert list(run.trace) == WORKED_TRACE
    tail = " ".join(run.prompt[run.prompt.index("GLOB"):])
    assert tail == ("GLOB ARGS B01 B00 B00 B00 B00 B00 B00 B00 DATA B00 B00 B00 B00 TABLE INPUT "
                    "RUN FH00 FL00 J JH80 JL08")
    # the call: S = FO + h - np = 2 + 1 - 1, X = delta to pc 3, Y = np + 256 nl
    call_pc = next(pc for pc, ins in enumerate(layout.program.code) if ins.op.text == "call")
    f = layout.fields[call_pc]
    assert (f.s, f.x, f.y) == (2, (3 - call_pc - 1) & 0xFFFFFFFF, 1 + 256 * 1)
    assert decode_trace(run.trace).results == (42,)


# --- example C programs -----------------------------------------------------------------------

def _example_params():
    params = []
    for path in sorted(EXAMPLES.glob("*.c")) if EXAMPLES.is_dir() else []:
        marks = [] if path.name in FAST_EXAMPLES else [pytest.mark.slow]
        params.append(pytest.param(path, FAST_EXAMPLES.get(path.name, b""), marks=marks,
                                   id=path.stem))
    return params


@pytest.mark.parametrize("path,input_bytes", _example_params())
def test_example_program_traces(path, input_bytes):
    module = load_program(path)
    layout = build_layout(module)
    run = assert_trace_is_exact(layout, default_entry(module), (), input_bytes)
    assert 3.0 < run.tokens_per_instruction < 12.0


# --- hand-written WAT: every instruction family and every trap --------------------------------

FEATURES = """
(module
  (import "env" "putchar" (func $putchar (param i32) (result i32)))
  (import "env" "getchar" (func $getchar (result i32)))
  (type $t (func (param i64) (result i64)))
  (memory 1 2)
  (global $g (mut i64) (i64.const -5))
  (global $h (mut i32) (i32.const 7))
  (table 4 funcref)
  (elem (i32.const 0) $fact $sq $putchar_i64)
  (data (i32.const 16) "hello")
  (func $fact (param $n i64) (result i64)
    (if (result i64) (i64.eqz (local.get $n))
      (then (i64.const 1))
      (else (i64.mul (local.get $n) (call $fact (i64.sub (local.get $n) (i64.const 1)))))))
  (func $sq (param $n i64) (result i64) (local $t i64)
    (local.set $t (i64.mul (local.get $n) (local.get $n))) (local.get $t))
  (func $putchar_i64 (param $n i64) (result i64)
    (i64.extend_i32_u (call $putchar (i32.wrap_i64 (local.get $n)))))
  (func (export "main") (param $a i32) (param $b i64) (result i64) (local $i i32) (local $acc i64)
    (block $out
      (loop $l
        (br_if $out (i32.ge_u (local.get $i) (local.get $a)))
        (drop (call $putchar (i32.add (i32.const 65) (local.get $i))))
        (block $b2 (block $b1 (block $b0 (br_table $b0 $b1 $b2 (local.get $i)))
             (global.set $h (i32.add (global.get $h) (i32.const 1))) (br $b2))
           (global.set $g (i64.add (global.get $g) (i64.const 3))))
        (local.set $acc (i64.add (local.get $acc)
            (call_indirect (type $t) (i64.extend_i32_u (local.get $i))
                           (i32.rem_u (local.get $i) (i32.const 3)))))
        (i32.store8 offset=3 (local.get $i) (call $getchar))
        (i64.store16 offset=40 (local.get $i) (local.get $acc))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (drop (memory.grow (i32.const 1)))
    (drop (memory.grow (i32.const 5)))
    (i64.add (local.get $acc)
      (i64.add (select (local.get $b) (i64.const 9) (local.get $a))
               (i64.add (i64.load (i32.const 14)) (i64.extend_i32_u (memory.size))))))
  (func (export "value_block") (param $a i32) (result i32)
    (block $b (result i32)
      (drop (br_if $b (i32.const 11) (local.get $a)))
      (i32.const 22)))
  (func $deep (export "deep") (param $n i32) (result i32)
    (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
    (i32.add (i32.const 1) (call $deep (i32.add (local.get $n) (i32.const 1)))))
  (func (export "div") (param $n i32) (result i32) (i32.div_s (i32.const 1) (local.get $n)))
  (func (export "ovf") (param $n i32) (result i32)
    (i32.div_s (i32.const 0x80000000) (local.get $n)))
  (func (export "oob") (param $n i32) (result i32) (i32.load (local.get $n)))
  (func (export "oob_store") (param $n i32) (i64.store (local.get $n) (i64.const 1)))
  (func (export "trap") (unreachable))
  (func (export "ci") (param $n i32) (result i64)
    (call_indirect (type $t) (i64.const 3) (local.get $n)))
  (func (export "ci_mismatch") (result i32)
    (call_indirect (param i32) (result i32) (i32.const 3) (i32.const 0)))
)
"""


@pytest.fixture(scope="module")
def features():
    return build_layout(load_program(FEATURES, kind="wat"))


@pytest.mark.parametrize("entry,args,input_bytes,outcome", [
    ("main", (5, 100), b"xyz", None),
    ("main", (0, -1), b"", None),
    ("value_block", (0,), b"", None),
    ("value_block", (1,), b"", None),
    ("div", (0,), b"", "integer divide by zero"),
    ("div", (3,), b"", None),
    ("ovf", (-1,), b"", "integer overflow"),
    ("oob", (65533,), b"", "out of bounds memory access"),
    ("oob", (65532,), b"", None),
    ("oob_store", (65529,), b"", "out of bounds memory access"),
    ("trap", (), b"", "unreachable"),
    ("ci", (0,), b"", None),
    ("ci", (1,), b"", None),
    ("ci", (2,), b"", None),
    ("ci", (3,), b"", "uninitialized element"),
    ("ci", (9,), b"", "undefined element"),
    ("ci_mismatch", (), b"", "indirect call type mismatch"),
])
def test_feature_programs(features, entry, args, input_bytes, outcome):
    run = assert_trace_is_exact(features, entry, args, input_bytes)
    assert run.trap == outcome
    if outcome is not None:
        assert run.trace[-1] == "TRAP_" + outcome.replace(" ", "_")


def test_call_stack_is_the_16_bit_frame_base(features):
    run = assert_trace_is_exact(features, "deep", (0,))
    bases = [int(hi[2:], 16) * 256 + int(lo[2:], 16)
             for hi, lo in zip(run.trace, run.trace[1:]) if hi.startswith("FH")]
    frame = features.frames[features.program.export_func("deep")]
    # frames are fo + 1 slots apart (params, locals, the unused slot, the argument pushed);
    # the last one that fit, plus one more frame of this size, would pass 0xFFFF
    assert bases == list(range(bases[0], bases[-1] + 1, frame.fo + 1))
    assert bases[-1] <= 0xFFFF < bases[-1] + frame.fo + 1
    assert run.trap == "call stack exhausted"


def test_step_limit_stops_without_end_token(features):
    run = run_traced(features, "main", (5, 1), b"ab", max_steps=40)
    assert run.stopped_early and run.n_steps == 40
    assert run.results is None and run.trap is None
    assert not decode_trace(run.tokens).finished


# --- the checker is strict: any changed trace token is caught ---------------------------------

@pytest.fixture(scope="module")
def small_run(features):
    return run_traced(features, "main", (3, 7), b"q")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_trace_token_change_is_caught(features, small_run, data):
    tokens = list(small_run.tokens)
    i = data.draw(st.integers(len(small_run.prompt), len(tokens) - 1), label="position")
    same_family = [t for t in VOCAB if t[:-2] == tokens[i][:-2] and t != tokens[i]]
    new = data.draw(st.sampled_from(same_family or [t for t in VOCAB if t != tokens[i]]),
                    label="replacement")
    tokens[i] = new
    with pytest.raises(ReplayError):
        check_trace(features, tokens, "main", (3, 7), b"q")


@pytest.mark.parametrize("section,offset,replacement", [
    ("GLOB", 1, "B07"), ("ARGS", 1, "B07"), ("INPUT", 1, "B07"), ("PROG", 3, "B07"),
    ("RUN", 1, "FH01"), ("RUN", 3, "J"),
])
def test_prompt_changes_are_caught(features, small_run, section, offset, replacement):
    tokens = list(small_run.tokens)
    i = tokens.index(section) + offset
    assert tokens[i] != replacement
    tokens[i] = replacement
    with pytest.raises(ReplayError):
        check_trace(features, tokens, "main", (3, 7), b"q")


def test_truncated_or_extended_traces_are_caught(features, small_run):
    tokens = list(small_run.tokens)
    with pytest.raises(ReplayError):
        check_trace(features, tokens[:-1], "main", (3, 7), b"q")
    with pytest.raises(ReplayError):
        check_trace(features, tokens + ["M"], "main", (3, 7), b"q")


# --- what format v1 cannot express is refused by name -----------------------------------------

@pytest.mark.parametrize("wat,match", [
    ('(module (func (export "main") (result i32 i32) (i32.const 1) (i32.const 2)))',
     "returns 2 values"),
    ('(module (import "env" "foo" (func)) (func (export "main")))', "env.foo"),
    ('(module (func $s) (start $s) (func (export "main")))', "start function"),
    ('(module (func (export "main") ' + "(drop (i32.const 0)) " * 16400 + "))", "jumps at most"),
])
def test_unsupported_programs_name_the_problem(wat, match):
    with pytest.raises(TraceFormatError, match=match):
        build_prompt(load_program(wat, kind="wat"), "main")


def test_trace_stats_summary(features):
    stats = trace_stats(features, "main", (2, 0), b"hi")
    run = run_traced(features, "main", (2, 0), b"hi")
    assert (stats.trace_tokens, stats.instructions) == (len(run.trace), run.n_steps)
    assert stats.summary().startswith(f"trace tokens {len(run.trace)} (")


# --- random programs --------------------------------------------------------------------------

I32_CONSTS = [0, 1, 2, 7, 255, 0x7FFFFFFF, -0x80000000, -1, 65535]
I64_CONSTS = [0, 1, 3, 0xFFFFFFFF, 1 << 32, -1, 0x7FFFFFFFFFFFFFFF, -0x8000000000000000]


class _Gen:
    """Random terminating WAT: helpers call only lower-numbered helpers; `$rec` recurses at most
    15 deep; loops run a bounded counter; traps only where `traps` allows."""

    def __init__(self, draw, traps: bool) -> None:
        self.draw = draw
        self.traps = traps
        self.n_total = 0  # helpers in the module; the table has one more, null, slot

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def const(self, t):
        pool = I32_CONSTS if t == "i32" else I64_CONSTS
        bits = 32 if t == "i32" else 64
        v = self.draw(st.sampled_from(pool) | st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1))
        return f"({t}.const {v})"

    def addr(self, d, n_helpers):
        a = self.expr("i32", d, n_helpers)
        if self.traps and self.draw(st.integers(0, 7)) == 0:
            return a
        return f"(i32.and {a} (i32.const 0x3FF))"

    def expr(self, t, d, n_helpers):  # noqa: C901 - a grammar
        kinds = ["const", "local", "global"]
        if d > 0:
            kinds += ["bin", "bin", "un", "cmp", "conv", "load", "select", "if", "block",
                      "tee", "call", "call_indirect", "rec", "getchar", "size", "div"]
        k = self.pick(kinds)
        e = lambda tt: self.expr(tt, d - 1, n_helpers)  # noqa: E731
        if k == "const":
            return self.const(t)
        if k == "local":
            return f"(local.get ${self.pick(['a', 'b'] if t == 'i32' else ['x', 'y'])})"
        if k == "global":
            return f"(global.get ${'g32' if t == 'i32' else 'g64'})"
        if k == "bin":
            op = self.pick(["add", "sub", "mul", "and", "or", "xor", "shl", "shr_s", "shr_u",
                            "rotl", "rotr"])
            return f"({t}.{op} {e(t)} {e(t)})"
        if k == "un":
            op = self.pick(["clz", "ctz", "popcnt", "extend8_s", "extend16_s"])
            return f"({t}.{op} {e(t)})"
        if k == "cmp":
            src = self.pick(["i32", "i64"])
            op = self.pick(["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s",
                            "ge_u"])
            c = f"({src}.{op} {e(src)} {e(src)})" if self.draw(st.booleans()) else f"({src}.eqz {e(src)})"
            return c if t == "i32" else f"(i64.extend_i32_u {c})"
        if k == "conv":
            if t == "i32":
                return f"(i32.wrap_i64 {e('i64')})"
            return f"(i64.extend_i32_{self.pick(['s', 'u'])} {e('i32')})"
        if k == "load":
            ops = (["i32.load", "i32.load8_s", "i32.load8_u", "i32.load16_s", "i32.load16_u"]
                   if t == "i32" else ["i64.load", "i64.load8_s", "i64.load8_u", "i64.load16_s",
                                       "i64.load16_u", "i64.load32_s", "i64.load32_u"])
            return f"({self.pick(ops)} offset={self.pick([0, 3, 8])} {self.addr(d - 1, n_helpers)})"
        if k == "select":
            return f"(select {e(t)} {e(t)} {e('i32')})"
        if k == "if":
            return f"(if (result {t}) {e('i32')} (then {e(t)}) (else {e(t)}))"
        if k == "block":  # leaves early carrying a value, often from above other operands
            shape = self.draw(st.integers(0, 3))
            if shape == 0:
                return f"(block (result {t}) ({t}.sub {e(t)} (br_if 0 {e(t)} {e('i32')})))"
            if shape == 1:
                return f"(block (result {t}) ({t}.add {e(t)} (br 0 {e(t)})))"
            early = f"(drop (br_if 0 {e(t)} {e('i32')})) " if shape == 2 else ""
            return f"(block (result {t}) {self.stmts(d - 1, n_helpers, 0, 2)} {early}{e(t)})"
        if k == "tee":
            return f"(local.tee ${self.pick(['a', 'b'] if t == 'i32' else ['x', 'y'])} {e(t)})"
        if k in ("call", "call_indirect"):
            ok = [h for h in range(n_helpers) if (h % 2 == 0) == (t == "i32")]
            if not ok:
                return self.const(t)
            h = self.pick(ok)
            args = f"{e('i32')} {e('i64')}"
            if k == "call":
                return f"(call $h{h} {args})"
            index = f"(i32.const {h})"
            if self.traps and self.draw(st.integers(0, 4)) == 0:
                # the other signature, past the table, or the table's null last slot: each
                # traps; indices from the helper count of the whole module, because a helper's
                # own count would name itself or a higher helper (unbounded recursion)
                index = self.pick([f"(i32.const {h ^ 1})", f"(i32.const {self.n_total + 1})",
                                   f"(i32.const {self.n_total})"])
            return f"(call_indirect (type $t{h % 2}) {args} {index})"
        if k == "rec":
            r = f"(call $rec (i32.and {e('i32')} (i32.const 15)) {e('i64')})"
            return r if t == "i64" else f"(i32.wrap_i64 {r})"
        if k == "getchar":
            return "(call $getchar)" if t == "i32" else "(i64.extend_i32_s (call $getchar))"
        if k == "size":
            s = self.pick(["(memory.size)", "(memory.grow (i32.const 1))",
                           "(memory.grow (i32.const 0))"])
            return s if t == "i32" else f"(i64.extend_i32_u {s})"
        if k == "div":
            op = self.pick(["div_s", "div_u", "rem_s", "rem_u"])
            divisor = e(t) if self.traps else f"({t}.or {e(t)} ({t}.const 1))"
            return f"({t}.{op} {e(t)} {divisor})"
        raise AssertionError(k)

    def stmt(self, d, n_helpers, labels):  # noqa: C901 - a grammar
        kinds = ["set", "set", "gset", "store", "putchar"]
        if d > 0:
            kinds += ["loop", "br_table", "if", "return"] + (["br_if"] if labels else [])
            if self.traps:
                kinds.append("unreachable")
        k = self.pick(kinds)
        e = lambda tt: self.expr(tt, max(d, 1), n_helpers)  # noqa: E731
        if k == "set":
            t = self.pick(["i32", "i64"])
            return f"(local.set ${self.pick(['a', 'b'] if t == 'i32' else ['x', 'y'])} {e(t)})"
        if k == "gset":
            t = self.pick(["i32", "i64"])
            return f"(global.set ${'g32' if t == 'i32' else 'g64'} {e(t)})"
        if k == "store":
            t = self.pick(["i32", "i64"])
            ops = (["i32.store", "i32.store8", "i32.store16"] if t == "i32"
                   else ["i64.store", "i64.store8", "i64.store16", "i64.store32"])
            return f"({self.pick(ops)} offset={self.pick([0, 5])} {self.addr(d, n_helpers)} {e(t)})"
        if k == "putchar":
            return f"(drop (call $putchar {e('i32')}))"
        if k == "loop":
            n = self.draw(st.integers(0, 4))
            body = self.stmts(d - 1, n_helpers, labels + 2, 2)
            return (f"(local.set $c (i32.const {n})) (block (loop "
                    f"(br_if 1 (i32.eqz (local.get $c))) "
                    f"(local.set $c (i32.sub (local.get $c) (i32.const 1))) {body} (br 0)))")
        if k == "br_table":
            n = self.draw(st.integers(1, 3))
            text = f"(block (br_table {' '.join(map(str, range(n + 1)))} {e('i32')}))"
            for _ in range(n):
                text = f"(block {text} {self.stmts(d - 1, n_helpers, labels + 1, 2)})"
            return text
        if k == "if":
            els = f" (else {self.stmts(d - 1, n_helpers, labels + 1, 2)})" if self.draw(st.booleans()) else ""
            return f"(if {e('i32')} (then {self.stmts(d - 1, n_helpers, labels + 1, 2)}){els})"
        if k == "br_if":
            return f"(br_if {self.draw(st.integers(0, labels - 1))} {e('i32')})"
        if k == "return":
            return f"(if {e('i32')} (then (return {e(self.result)})))"
        if k == "unreachable":
            return f"(if {e('i32')} (then (unreachable)))"
        raise AssertionError(k)

    def stmts(self, d, n_helpers, labels, max_n):
        return " ".join(self.stmt(d, n_helpers, labels)
                        for _ in range(self.draw(st.integers(0, max_n))))

    def func(self, name, result, n_helpers, depth, export=""):
        self.result = result
        body = " ".join(self.stmt(depth, n_helpers, 0)
                        for _ in range(self.draw(st.integers(1, 5))))
        return (f"(func ${name} {export}(param $a i32) (param $x i64) (result {result}) "
                f"(local $b i32) (local $y i64) (local $c i32)\n  {body}\n  "
                f"{self.expr(result, depth, n_helpers)})")


@st.composite
def wat_programs(draw, traps=True):
    gen = _Gen(draw, traps)
    n_helpers = gen.n_total = draw(st.integers(0, 3))
    funcs = [gen.func(f"h{h}", "i32" if h % 2 == 0 else "i64", h, draw(st.integers(1, 2)))
             for h in range(n_helpers)]
    funcs.append(gen.func("main", draw(st.sampled_from(["i32", "i64"])), n_helpers,
                          draw(st.integers(1, 3)), export='(export "main") '))
    data = "".join(f"\\{b:02x}" for b in draw(st.binary(max_size=12)))
    elems = " ".join(f"$h{h}" for h in range(n_helpers))
    return "\n".join([
        "(module",
        '  (import "env" "putchar" (func $putchar (param i32) (result i32)))',
        '  (import "env" "getchar" (func $getchar (result i32)))',
        "  (type $t0 (func (param i32 i64) (result i32)))",
        "  (type $t1 (func (param i32 i64) (result i64)))",
        "  (memory 1 3)",
        f'  (data (i32.const {draw(st.integers(0, 1000))}) "{data}")',
        f"  (global $g32 (mut i32) {gen.const('i32')})",
        f"  (global $g64 (mut i64) {gen.const('i64')})",
        f"  (table {n_helpers + 1} funcref)",
        f"  (elem (i32.const 0) {elems})" if n_helpers else "",
        "  (func $rec (param $n i32) (param $acc i64) (result i64)",
        "    (if (result i64) (i32.eqz (local.get $n)) (then (local.get $acc))",
        "      (else (call $rec (i32.sub (local.get $n) (i32.const 1))",
        "        (i64.add (i64.mul (local.get $acc) (i64.const 3))"
        " (i64.extend_i32_u (local.get $n)))))))",
        *funcs,
        ")",
    ])


main_args = st.tuples(st.sampled_from(I32_CONSTS) | st.integers(-(1 << 31), (1 << 31) - 1),
                      st.sampled_from(I64_CONSTS) | st.integers(-(1 << 63), (1 << 63) - 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=wat_programs(), args=main_args, input_bytes=st.binary(max_size=4))
def test_random_programs_trace_exactly(src, args, input_bytes):
    layout = build_layout(load_program(src, kind="wat"))
    assert_trace_is_exact(layout, "main", args, input_bytes, max_steps=200_000)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=wat_programs(traps=False), args=main_args)
def test_random_trap_free_programs_halt(src, args):
    layout = build_layout(load_program(src, kind="wat"))
    run = assert_trace_is_exact(layout, "main", args, b"", max_steps=200_000)
    assert run.trace[-1] == "HALT"


def test_exec_cli_prints_trace_tokens(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "ex.wat"
    path.write_text(WORKED_EXAMPLE)
    proc = subprocess.run([sys.executable, "-m", "rasp2d.cli.main", "exec", str(path),
                           "--trace-tokens"], capture_output=True, timeout=120)
    summary = proc.stderr.decode()
    # main(0): the loop exits at once, then twice(21) = 42
    run = run_traced(build_layout(load_program(str(path))), "main", (0,))
    per = len(run.trace) / run.n_steps
    assert proc.returncode == 42, summary
    assert f"trace_tokens={len(run.trace)} ({per:.2f}/instr)" in summary


def test_memory_limit_travels_in_the_prompt(features):
    """DATA's maximum is the machine's page limit, so memory.grow fails the same way."""
    run = run_traced(features, "main", (1, 0), b"", max_memory_pages=1)
    data = run.prompt.index("DATA")
    assert run.prompt[data + 1:data + 5] == ("B01", "B00", "B01", "B00")
    check_trace(features, run.tokens, "main", (1, 0), b"", run=run, max_memory_pages=1)
    with pytest.raises(ReplayError, match="pages"):
        check_trace(features, run.tokens, "main", (1, 0), b"", run=run)


I64_DIVISION = """(module (func (export "main") (param i64 i64) (result i64)
  (i64.add (i64.div_s (local.get 0) (local.get 1)) (i64.rem_u (local.get 0) (local.get 1)))))"""


@pytest.mark.parametrize("n, d", [(-1234567890123456789, 97), (2**63 - 1, -3), (5, 7)])
def test_i64_division_body_is_the_quotient_nibbles_then_the_value(n, d):
    """The 16 scratch nibbles are those of |N| div |D|, most significant first; changing any of
    them (or a value byte) is caught by the replay."""
    layout = build_layout(load_program(I64_DIVISION, kind="wat"))
    run = run_traced(layout, "main", (n, d))
    step = next(s for s in run.steps() if s.op == Op.I64_DIV_S)
    body = run.tokens[step.anchor + 1:step.anchor + 25]
    q = abs(n) // abs(d)
    assert [int(t[1:], 16) for t in body[:16]] == [(q >> (4 * v)) & 15 for v in range(15, -1, -1)]
    want = -q if (n < 0) != (d < 0) else q
    assert bytes(int(t[1:], 16) for t in body[16:]) == (want % 2**64).to_bytes(8, "little")
    check_trace(layout, run.tokens, "main", (n, d))
    for i in range(step.anchor + 1, step.anchor + 25):
        tokens = list(run.tokens)
        tokens[i] = "B0f" if tokens[i] != "B0f" else "B00"
        with pytest.raises(ReplayError):
            check_trace(layout, tokens, "main", (n, d))
