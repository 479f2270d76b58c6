"""Plain-Python statements of the example tasks: what each example program must output.

Independent of the compiler: written from the task descriptions in examples/README.md.
"""

from __future__ import annotations

from collections import Counter


def reverse(xs: list[str]) -> list[str]:
    return xs[::-1]


def length(xs: list[str]) -> list[str]:
    return [str(len(xs))]


def histogram(xs: list[str]) -> list[str]:
    c = Counter(xs)
    return [str(c[x]) for x in xs]


def sort(xs: list[str]) -> list[str]:
    return sorted(xs, key=int)


def frac_prevs(xs: list[str]) -> list[str]:
    return [str(10 * xs.count("x") // len(xs))]


def dyck1(xs: list[str]) -> list[str]:
    depth = 0
    for x in xs:
        depth += 1 if x == "(" else -1
        if depth < 0:
            return ["F"]
    return ["T" if depth == 0 else "F"]


def dyck2(xs: list[str]) -> list[str]:
    stack: list[str] = []
    pairs = {")": "(", "]": "["}
    for x in xs:
        if x in "([":
            stack.append(x)
        elif not stack or stack.pop() != pairs[x]:
            return ["F"]
    return ["T" if not stack else "F"]


def addition(xs: list[str]) -> list[str]:
    i = xs.index("+")
    a, b = xs[:i], xs[i + 1:]
    total = int("".join(a)) + int("".join(b))
    # as many digits as the longer operand (leading zeros kept), plus the final carry
    return list(str(total).zfill(max(len(a), len(b)))[::-1])


def above_mean(xs: list[str]) -> list[str]:
    ds = [int(x) for x in xs]
    total, n = sum(ds), len(ds)
    return ["+" if d * n > total else "=" if d * n == total else "-" for d in ds]
