"""Hypothesis strategy for random, always-terminating integer WAT modules.

A module has a few helper functions (each may call only lower-numbered helpers, so there is no
recursion), a table of them for call_indirect, mutable i32/i64 globals and one page of memory
(max 3), all exported, and an exported `main`. Bodies mix straight-line i32/i64 arithmetic,
loads/stores, blocks with br/br_if carrying values, br_table dispatch, if/else, loops bounded by
dedicated counter locals, calls, putchar, memory.size/grow, and operations that may trap
(div/rem, out-of-bounds addresses, unreachable, bad call_indirect).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from hypothesis import strategies as st

I32_EDGES = [0, 1, 2, 3, 7, 31, 32, 33, 255, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, -0x80000000,
             -1, -2, -7, 1 << 20]
I64_EDGES = [0, 1, 2, 63, 64, 65, 0xFF, 0xFFFFFFFF, 1 << 32, 0x7FFFFFFFFFFFFFFF,
             -0x8000000000000000, -1, -2, -12345678901]

I32_BINOPS = ["add", "sub", "mul", "and", "or", "xor", "shl", "shr_s", "shr_u", "rotl", "rotr",
              "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
TRAPPING_BINOPS = ["div_s", "div_u", "rem_s", "rem_u"]
I64_CMP = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
I64_ARITH = ["add", "sub", "mul", "and", "or", "xor", "shl", "shr_s", "shr_u", "rotl", "rotr"]
LOADS = {"i32": ["i32.load", "i32.load8_s", "i32.load8_u", "i32.load16_s", "i32.load16_u"],
         "i64": ["i64.load", "i64.load8_s", "i64.load8_u", "i64.load16_s", "i64.load16_u",
                 "i64.load32_s", "i64.load32_u"]}
STORES = {"i32": ["i32.store", "i32.store8", "i32.store16"],
          "i64": ["i64.store", "i64.store8", "i64.store16", "i64.store32"]}
MAX_HELPERS = 3  # indices from here on miss every table
HELPER_TYPES = [("i32",), ("i64",)]  # result type of helper k is HELPER_TYPES[k % 2]


@dataclass
class _Scope:
    """What a function body may refer to."""

    n_helpers: int  # callable helpers: $h0 .. $h{n-1}
    loop_depth: int = 0
    labels: int = 0  # enclosing labels whose arity is 0 (br/br_if targets)


@functools.lru_cache(maxsize=None)
def _sampled(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


@functools.lru_cache(maxsize=None)
def _ints(lo: int, hi: int) -> st.SearchStrategy:
    return st.integers(lo, hi)


_CONSTS = {
    t: st.one_of(st.sampled_from(edges), st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1))
    for t, edges, bits in (("i32", I32_EDGES, 32), ("i64", I64_EDGES, 64))
}


class _Gen:
    """Strategies are built once and cached: constructing them per draw dominated run time."""

    def __init__(self, draw, allow_traps: bool) -> None:
        self.draw = draw
        self.allow_traps = allow_traps

    def choice(self, options):
        return self.draw(_sampled(tuple(options)))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(_ints(lo, hi))

    def flip(self) -> bool:
        return self.draw(_ints(0, 1)) == 1

    def const(self, t: str) -> str:
        return f"({t}.const {self.draw(_CONSTS[t])})"

    def address(self, depth: int, scope: _Scope) -> str:
        """Mostly in-bounds (masked into the first page); sometimes raw, which may trap."""
        raw = self.expr("i32", depth, scope)
        if self.allow_traps and self.integer(0, 9) == 0:
            return raw
        return f"(i32.and {raw} (i32.const 0xFFF0))"

    def expr(self, t: str, depth: int, scope: _Scope) -> str:  # noqa: C901 - a grammar
        if depth <= 0:
            kind = self.choice(["const", "local", "global"])
        else:
            kind = self.choice(["const", "local", "global", "unop", "binop", "binop", "binop",
                                "cmp64", "conv", "load", "select", "block", "if", "tee",
                                "call", "call_indirect", "memsize", "trapop"])
        d = depth - 1
        if kind == "const":
            return self.const(t)
        if kind == "local":
            return f"(local.get ${self.choice(['a', 'b']) if t == 'i32' else self.choice(['x', 'y'])})"
        if kind == "global":
            return f"(global.get ${'g32' if t == 'i32' else 'g64'})"
        if kind == "unop":
            op = self.choice(["clz", "ctz", "popcnt", "eqz", "extend8_s", "extend16_s"]
                             + (["extend32_s"] if t == "i64" else []))
            if op == "eqz":  # eqz yields i32 from either type
                src = self.choice(["i32", "i64"])
                inner = f"({src}.eqz {self.expr(src, d, scope)})"
                return inner if t == "i32" else f"(i64.extend_i32_u {inner})"
            return f"({t}.{op} {self.expr(t, d, scope)})"
        if kind == "binop":
            ops = I32_BINOPS if t == "i32" else I64_ARITH
            op = self.choice(ops)
            return f"({t}.{op} {self.expr(t, d, scope)} {self.expr(t, d, scope)})"
        if kind == "cmp64":
            op = self.choice(I64_CMP)
            cmp = f"(i64.{op} {self.expr('i64', d, scope)} {self.expr('i64', d, scope)})"
            return cmp if t == "i32" else f"(i64.extend_i32_s {cmp})"
        if kind == "conv":
            if t == "i32":
                return f"(i32.wrap_i64 {self.expr('i64', d, scope)})"
            op = self.choice(["extend_i32_s", "extend_i32_u"])
            return f"(i64.{op} {self.expr('i32', d, scope)})"
        if kind == "load":
            op = self.choice(LOADS[t])
            offset = self.choice([0, 0, 1, 4, 13, 100])
            return f"({op} offset={offset} {self.address(d, scope)})"
        if kind == "select":
            return (f"(select {self.expr(t, d, scope)} {self.expr(t, d, scope)} "
                    f"{self.expr('i32', d, scope)})")
        if kind == "block":
            # a block whose value may leave early through br_if carrying a value
            inner = _Scope(scope.n_helpers, scope.loop_depth, 0)
            stmts = self.stmts(d, inner, max_n=2)
            early = (f"(br_if 0 {self.expr(t, d, scope)} {self.expr('i32', d, scope)}) "
                     if self.flip() else "")
            tail = f"(drop {early.strip()}) " if early else ""
            return f"(block (result {t}) {stmts} {tail}{self.expr(t, d, scope)})"
        if kind == "if":
            return (f"(if (result {t}) {self.expr('i32', d, scope)} "
                    f"(then {self.expr(t, d, scope)}) (else {self.expr(t, d, scope)}))")
        if kind == "tee":
            name = self.choice(["a", "b"]) if t == "i32" else self.choice(["x", "y"])
            return f"(local.tee ${name} {self.expr(t, d, scope)})"
        if kind in ("call", "call_indirect"):
            candidates = [k for k in range(scope.n_helpers) if HELPER_TYPES[k % 2][0] == t]
            if not candidates:
                return self.const(t)
            k = self.choice(candidates)
            args = f"{self.expr('i32', d, scope)} {self.expr('i64', d, scope)}"
            if kind == "call":
                return f"(call $h{k} {args})"
            index = f"(i32.const {k})"
            if self.allow_traps and self.integer(0, 5) == 0:
                # may miss the table, hit a helper of the other type (a signature trap, so even
                # when k ^ 1 is this helper itself nothing recurses) or compute its index; a
                # helper only ever reaches lower-numbered helpers, which keeps every run finite
                pick = self.integer(0, 2)
                computed = f"(i32.rem_u {self.expr('i32', d, scope)} (i32.const {scope.n_helpers}))"
                index = (f"(i32.const {MAX_HELPERS})" if pick == 0 else
                         f"(i32.const {k ^ 1})" if pick == 1 else computed)
            return f"(call_indirect (type $t{k % 2}) {args} {index})"
        if kind == "memsize":
            size = "(memory.size)"
            if self.flip():
                size = f"(memory.grow (i32.const {self.choice([0, 1, 2])}))"
            return size if t == "i32" else f"(i64.extend_i32_u {size})"
        if kind == "trapop":
            if not self.allow_traps:
                return self.const(t)
            op = self.choice(TRAPPING_BINOPS)
            divisor = self.const(t) if self.flip() else self.expr(t, d, scope)
            return f"({t}.{op} {self.expr(t, d, scope)} {divisor})"
        raise AssertionError(kind)

    def stmt(self, depth: int, scope: _Scope) -> str:  # noqa: C901 - a grammar
        kinds = ["set", "set", "gset", "store", "store", "drop", "putchar", "call"]
        if depth > 0:
            kinds += ["if", "block", "loop", "loop", "br_table", "return"]
            if scope.labels:
                kinds += ["br_if_out"]
        kind = self.choice(kinds)
        if kind == "return" and self.allow_traps and self.integer(0, 3) == 0:
            kind = "unreachable"  # same shape: a conditional exit, but trapping
        d = depth - 1
        if kind == "set":
            t = self.choice(["i32", "i64"])
            name = self.choice(["a", "b"]) if t == "i32" else self.choice(["x", "y"])
            return f"(local.set ${name} {self.expr(t, d + 1, scope)})"
        if kind == "gset":
            t = self.choice(["i32", "i64"])
            return f"(global.set ${'g32' if t == 'i32' else 'g64'} {self.expr(t, d + 1, scope)})"
        if kind == "store":
            t = self.choice(["i32", "i64"])
            op = self.choice(STORES[t])
            offset = self.choice([0, 0, 2, 8, 64])
            return f"({op} offset={offset} {self.address(d + 1, scope)} {self.expr(t, d + 1, scope)})"
        if kind == "drop":
            t = self.choice(["i32", "i64"])
            return f"(drop {self.expr(t, d + 1, scope)})"
        if kind == "putchar":
            return f"(drop (call $putchar {self.expr('i32', d + 1, scope)}))"
        if kind == "call":
            if not scope.n_helpers:
                return f"(drop {self.expr('i32', d + 1, scope)})"
            k = self.integer(0, scope.n_helpers - 1)
            return (f"(drop (call $h{k} {self.expr('i32', d, scope)} "
                    f"{self.expr('i64', d, scope)}))")
        if kind == "if":
            inner = _Scope(scope.n_helpers, scope.loop_depth, scope.labels + 1)
            els = f" (else {self.stmts(d, inner)})" if self.flip() else ""
            return f"(if {self.expr('i32', d, scope)} (then {self.stmts(d, inner)}){els})"
        if kind == "block":
            inner = _Scope(scope.n_helpers, scope.loop_depth, scope.labels + 1)
            return f"(block {self.stmts(d, inner)})"
        if kind == "br_if_out":
            k = self.integer(0, scope.labels - 1)
            return f"(br_if {k} {self.expr('i32', d, scope)})"
        if kind == "loop":
            if scope.loop_depth >= 2:
                return self.stmt(0, scope)
            c = f"$c{scope.loop_depth}"
            n = self.integer(0, 4)
            inner = _Scope(scope.n_helpers, scope.loop_depth + 1, scope.labels + 2)
            return (f"(local.set {c} (i32.const {n})) "
                    f"(block (loop (br_if 1 (i32.eqz (local.get {c}))) "
                    f"(local.set {c} (i32.sub (local.get {c}) (i32.const 1))) "
                    f"{self.stmts(d, inner)} (br 0)))")
        if kind == "br_table":
            n = self.integer(1, 3)
            labels = " ".join(str(i) for i in range(n + 1))
            inner_scope = _Scope(scope.n_helpers, scope.loop_depth, scope.labels + 1)
            text = f"(block (br_table {labels} {self.expr('i32', d, scope)}))"
            for _ in range(n):
                text = f"(block {text} {self.stmts(d, inner_scope, max_n=2)})"
            return f"(block {text})"
        if kind == "return":
            return f"(if {self.expr('i32', d, scope)} (then (return {self.expr(self.result, d, scope)})))"
        if kind == "unreachable":
            return f"(if {self.expr('i32', d, scope)} (then (unreachable)))"
        raise AssertionError(kind)

    def stmts(self, depth: int, scope: _Scope, max_n: int = 3, min_n: int = 0) -> str:
        n = self.integer(min_n, max_n)
        return " ".join(self.stmt(depth, scope) for _ in range(n))

    def function(self, name: str, export: str, result: str, scope: _Scope, depth: int) -> str:
        self.result = result
        body = self.stmts(depth, scope, max_n=6, min_n=1)
        tail = self.expr(result, depth, scope)
        return (f"(func ${name} (export \"{export}\") (param $a i32) (param $x i64) (result {result}) "
                f"(local $b i32) (local $y i64) (local $c0 i32) (local $c1 i32)\n  {body}\n  {tail})")


@st.composite
def wat_modules(draw, allow_traps: bool = True, max_depth: int = 3) -> str:
    """A random terminating module exporting main(i32, i64) -> i32|i64, memory and globals."""
    gen = _Gen(draw, allow_traps)
    n_helpers = draw(st.integers(0, MAX_HELPERS))
    funcs = []
    for k in range(n_helpers):
        funcs.append(gen.function(f"h{k}", f"h{k}", HELPER_TYPES[k % 2][0], _Scope(k),
                                  draw(st.integers(1, 2))))
    result = draw(st.sampled_from(["i32", "i64"]))
    funcs.append(gen.function("main", "main", result, _Scope(n_helpers),
                              draw(st.integers(1, max_depth))))
    data = draw(st.binary(max_size=16))
    data_text = "".join(f"\\{b:02x}" for b in data)
    g32 = draw(st.sampled_from(I32_EDGES))
    g64 = draw(st.sampled_from(I64_EDGES))
    elems = " ".join(f"$h{k}" for k in range(n_helpers))
    return "\n".join([
        "(module",
        '  (import "env" "putchar" (func $putchar (param i32) (result i32)))',
        "  (type $t0 (func (param i32 i64) (result i32)))",
        "  (type $t1 (func (param i32 i64) (result i64)))",
        '  (memory (export "memory") 1 3)',
        f'  (data (i32.const {draw(st.integers(0, 200))}) "{data_text}")',
        f'  (global $g32 (export "g32") (mut i32) (i32.const {g32}))',
        f'  (global $g64 (export "g64") (mut i64) (i64.const {g64}))',
        f"  (table {n_helpers} funcref)",
        f"  (elem (i32.const 0) {elems})" if n_helpers else "",
        *funcs,
        ")",
    ])


main_args = st.tuples(st.sampled_from(I32_EDGES) | st.integers(-(1 << 31), (1 << 31) - 1),
                      st.sampled_from(I64_EDGES) | st.integers(-(1 << 63), (1 << 63) - 1))
