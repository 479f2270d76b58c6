"""Print each stdlib op's cost: FFN depth, ReLU units and residual slots of the op compiled
alone (operand bytes from layer-0 heads; plumbing and emit excluded).

    python tests/stdlib_costs.py [--wide] [name-substring ...]
"""

from __future__ import annotations

import sys

import stdlib_harness as H
import test_stdlib_arith32 as a32
import test_stdlib_arith64 as a64
import test_stdlib_bits32 as b32
import test_stdlib_bits64 as b64
import test_stdlib_bytes as by
import test_stdlib_divide as dv


def slots(op: H.CompiledOp) -> int:
    """Residual slots the op's FFN blocks write (each PWL node or product gets one)."""
    producer = {b.output: b for b in op.lowered.ffns}
    seen, todo = set(), [s for lin in op.out_lins for s, _ in lin.terms]
    while todo:
        s = todo.pop()
        if s in seen or s not in producer:
            continue
        seen.add(s)
        todo.extend(producer[s].inputs())
    return len(seen)


def rows():
    for mod, groups in (("bytes", [by.SPECS, by.HALF]), ("arith32", [a32.BINARY, a32.UNARY]),
                        ("bits32", [b32.LOGIC, b32.SHIFTS, b32.UNARY]),
                        ("arith64", [a64.BINARY, a64.MUL, a64.UNARY, a64.FROM32]),
                        ("bits64", [b64.LOGIC, b64.SHIFTS, b64.UNARY])):
        for group in groups:
            for spec in group:
                yield f"{mod}.{spec.name}", spec.compile()
    q = "(x0, x1, x2, x3), (x4, x5, x6, x7), (x8, x9, x10, x11)"
    for kind in ("u", "s"):
        for k in (3, 2, 1, 0):
            yield f"divide.quotient_byte_{kind}(k={k})", dv.quotient_program(kind, k)
    wide = ("rem_s_from_quotient_wide",) if WIDE else ()  # ~7 GB of dense weights: opt in
    for fn in ("rem_u_from_quotient", "div_s_result", "rem_s_from_quotient") + wide:
        yield f"divide.{fn}", H.compile_op("import divide", 12, f"divide.{fn}({q})", 4)
    for fn in ("divisor_is_zero(({1}))", "div_s_overflows(({0}), ({1}))"):
        expr = fn.replace("({0})", "(x0, x1, x2, x3)").replace("({1})", "(x4, x5, x6, x7)")
        yield f"divide.{fn.split('(')[0]}", H.compile_op("import divide", 8, f"divide.{expr}", 1)


WIDE = False


def main(argv: list[str]) -> int:
    global WIDE
    WIDE = "--wide" in argv
    argv = [a for a in argv if a != "--wide"]
    print(f"{'op':44s} {'depth':>5s} {'units':>7s} {'slots':>6s}")
    for name, op in rows():
        if argv and not any(a in name for a in argv):
            continue
        print(f"{name:44s} {op.cost.depth:5d} {op.cost.units:7d} {slots(op):6d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
