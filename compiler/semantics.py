"""What each element-wise op computes, and the value range it can take.

This is the executable spec shared by the elaborator (constant folding, range inference),
the reference evaluator and the lowering (which must reproduce exactly these functions with
ReLU units).  Integer semantics: `//` and `%` follow Python (floor division, result of `%`
has the divisor's sign).
"""

from __future__ import annotations

from rasp2d.compiler.graph import (Abs, Affine, Case, Const, Equals, FloorDiv, Max, Min, Mod, Mul, Op,
                                   Select, Step, Table)


def apply(op: Op, args: tuple[int, ...]) -> int:
    """Evaluate an element-wise op on operand values given in `operands(op)` order."""
    match op:
        case Const(value):
            return value
        case Affine(terms, const):
            return const + sum(c * x for (_, c), x in zip(terms, args))
        case Mul():
            return args[0] * args[1]
        case Step(threshold=t):
            return int(args[0] >= t)
        case Equals(value=v):
            return int(args[0] == v)
        case FloorDiv(k=k):
            return args[0] // k
        case Mod(k=k):
            return args[0] % k
        case Min():
            return min(args)
        case Max():
            return max(args)
        case Abs():
            return abs(args[0])
        case Table():
            return op.apply(args[0])
        case Select():
            return args[1] if args[0] else args[2]
        case Case(conds=conds):
            n = len(conds)
            for c, v in zip(args[:n], args[n:2 * n]):
                if c:
                    return v
            return args[-1]
    raise TypeError(f"{op!r} is not element-wise")


def value_range(op: Op, ranges: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """Tight-enough (lo, hi) of an element-wise op from its operands' ranges."""
    match op:
        case Const(value):
            return value, value
        case Affine(terms, const):
            lo = hi = const
            for (_, c), (a, b) in zip(terms, ranges):
                lo += min(c * a, c * b)
                hi += max(c * a, c * b)
            return lo, hi
        case Mul():
            (a0, a1), (b0, b1) = ranges
            prods = (a0 * b0, a0 * b1, a1 * b0, a1 * b1)
            return min(prods), max(prods)
        case Step() | Equals():
            (a0, a1), = ranges
            vals = {apply(op, (a0,)), apply(op, (a1,))}
            if isinstance(op, Step):
                return min(vals), max(vals)
            return (1, 1) if a0 == a1 == op.value else ((0, 1) if a0 <= op.value <= a1 else (0, 0))
        case FloorDiv(k=k):
            (a0, a1), = ranges
            x, y = a0 // k, a1 // k
            return min(x, y), max(x, y)
        case Mod(k=k):
            (a0, a1), = ranges
            if a1 - a0 + 1 >= abs(k) or (a0 // k) != (a1 // k):
                return (0, k - 1) if k > 0 else (k + 1, 0)
            x, y = a0 % k, a1 % k
            return min(x, y), max(x, y)
        case Min():
            (a0, a1), (b0, b1) = ranges
            return min(a0, b0), min(a1, b1)
        case Max():
            (a0, a1), (b0, b1) = ranges
            return max(a0, b0), max(a1, b1)
        case Abs():
            (a0, a1), = ranges
            if a0 >= 0:
                return a0, a1
            if a1 <= 0:
                return -a1, -a0
            return 0, max(-a0, a1)
        case Table(entries=entries, default=default):
            (a0, a1), = ranges
            outs = [v for k, v in entries if a0 <= k <= a1]
            covered = sum(1 for k, _ in entries if a0 <= k <= a1)
            if covered < a1 - a0 + 1:
                outs.append(default)
            return min(outs), max(outs)
        case Select():
            _, (t0, t1), (o0, o1) = ranges
            return min(t0, o0), max(t1, o1)
        case Case(conds=conds):
            vals = ranges[len(conds):]
            return min(r[0] for r in vals), max(r[1] for r in vals)
    raise TypeError(f"{op!r} is not element-wise")
