"""The typed dataflow graph: one node per sequence-valued expression.

Ops are frozen dataclasses naming their operands by node id; the graph itself is a
networkx DiGraph (edges operand -> user) so passes can ask for topological orders and
ancestors.  Every node knows its value range, inferred from its operands' ranges when it is
built (never by enumerating inputs), and the source span and text it came from: those labels
end up in the manifest next to the residual dimensions, heads and FFN units they became.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import networkx as nx

from rasp2d.lang.errors import Span

Kind = Literal["int", "bool", "token", "mean"]


@dataclass(frozen=True)
class VType:
    """Every value is an integer per position; `token` values are vocabulary ids.

    The one exception is `mean` (a `tie=average` attention result and affine combinations of
    it): a rational in [lo, hi] whose denominator is at most `den`.  That bound is what makes a
    mean usable exactly: a mean differing from an integer differs from it by at least 1/den, so
    a comparison can round with a margin instead of trusting float64 to represent 1/3."""

    kind: Kind
    lo: int
    hi: int
    den: int = 1

    def __str__(self) -> str:
        if self.kind == "int":
            return f"int[{self.lo}..{self.hi}]"
        if self.kind == "mean":
            return f"mean[{self.lo}..{self.hi}, denominator <= {self.den}]"
        return self.kind

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1


BOOL = VType("bool", 0, 1)


# ------------------------------------------------------------------------------ ops
@dataclass(frozen=True)
class Tokens:
    pass


@dataclass(frozen=True)
class Indices:
    pass


@dataclass(frozen=True)
class Const:
    value: int


@dataclass(frozen=True)
class Affine:
    """sum(coef * operand) + const, with integer coefficients."""

    terms: tuple[tuple[int, int], ...]
    const: int


@dataclass(frozen=True)
class Mul:
    a: int
    b: int


@dataclass(frozen=True)
class Step:
    """[operand >= threshold] for an integer operand: the one primitive behind comparisons."""

    a: int
    threshold: int


@dataclass(frozen=True)
class Equals:
    """[operand == value]."""

    a: int
    value: int


@dataclass(frozen=True)
class FloorDiv:
    a: int
    k: int


@dataclass(frozen=True)
class Mod:
    a: int
    k: int


@dataclass(frozen=True)
class Min:
    a: int
    b: int


@dataclass(frozen=True)
class Max:
    a: int
    b: int


@dataclass(frozen=True)
class Abs:
    a: int


@dataclass(frozen=True)
class Table:
    """A finite function of one operand; inputs not listed map to `default`."""

    a: int
    entries: tuple[tuple[int, int], ...]
    default: int

    def apply(self, x: int) -> int:
        return dict(self.entries).get(x, self.default)


@dataclass(frozen=True)
class Select:
    cond: int
    then: int
    other: int


@dataclass(frozen=True)
class Case:
    """`if c1 then v1 else if c2 then v2 ... else default`: the value of the first true condition.

    A chain of if/else is one op so it compiles to one FFN layer (each branch is selected by
    the step [c_i - c_1 - ... - c_{i-1} >= 1]), not one layer per `else if`."""

    conds: tuple[int, ...]
    values: tuple[int, ...]
    default: int


@dataclass(frozen=True)
class Lookup:
    """Value at the latest j <= i with key_j == query_i, else `default`.

    Without a default (None) it is the value at the *nearest* key: |key_j - query_i| minimal,
    ties (two keys equally near, or one key written several times) to the latest j.  That is
    exactly what the 2D head computes, and it saves the layer that checks the key.

    tie="average": the mean of the values at *every* such j instead of the latest one (with a
    default: every j whose key equals the query; without: every j at the minimal distance,
    which may mix the keys just below and just above the query).  The result is a `mean`.
    """

    key: int
    query: int
    value: int
    default: int | None
    tie: Literal["latest", "average"]


@dataclass(frozen=True)
class PrefixSum:
    a: int


@dataclass(frozen=True)
class SelectMax:
    """Value at the j <= i with the largest score (ties: latest or average)."""

    score: int
    value: int
    tie: Literal["latest", "average"]


@dataclass(frozen=True)
class Attend:
    """The raw 2D head: value at argmax_j (q1_i*k1_j + q2_i*k2_j) over j <= i."""

    q: tuple[int, int]
    k: tuple[int, int]
    value: int
    tie: Literal["latest", "average"]


Op = (Tokens | Indices | Const | Affine | Mul | Step | Equals | FloorDiv | Mod | Min | Max | Abs
      | Table | Select | Case | Lookup | PrefixSum | SelectMax | Attend)

ELEMENTWISE = (Const, Affine, Mul, Step, Equals, FloorDiv, Mod, Min, Max, Abs, Table, Select, Case)


def operands(op: Op) -> tuple[int, ...]:
    match op:
        case Tokens() | Indices() | Const():
            return ()
        case Affine(terms=terms):
            return tuple(n for n, _ in terms)
        case Mul(a, b) | Min(a, b) | Max(a, b):
            return (a, b)
        case Step(a=a) | Equals(a=a) | FloorDiv(a=a) | Mod(a=a) | Abs(a) | Table(a=a) | PrefixSum(a):
            return (a,)
        case Select(c, t, o):
            return (c, t, o)
        case Case(conds, values, default):
            return (*conds, *values, default)
        case Lookup(key, query, value, default, _):
            return (key, query, value) if default is None else (key, query, value, default)
        case SelectMax(score, value, _):
            return (score, value)
        case Attend(q, k, value, _):
            return (*q, *k, value)
    raise TypeError(f"unknown op {op!r}")


@dataclass(frozen=True)
class Node:
    id: int
    op: Op
    type: VType
    label: str
    span: Span


@dataclass
class Graph:
    """The program as a DAG plus its emitted output and generation settings."""

    g: nx.DiGraph = field(default_factory=nx.DiGraph)
    output: int | None = None
    vocab: tuple[str, ...] = ()
    max_len: int = 1024
    prompt_end: str | None = None
    stop: str | None = None
    max_new: int = 256
    _by_op: dict = field(default_factory=dict)

    def node(self, nid: int) -> Node:
        return self.g.nodes[nid]["node"]

    def add(self, op: Op, vtype: VType, label: str, span: Span) -> int:
        """Add a node, sharing it with an identical earlier one (hash-consing = CSE)."""
        key = (op, vtype)
        if key in self._by_op:
            return self._by_op[key]
        nid = self.g.number_of_nodes()
        self.g.add_node(nid, node=Node(nid, op, vtype, label, span))
        for src in operands(op):
            self.g.add_edge(src, nid)
        self._by_op[key] = nid
        return nid

    def topo(self) -> list[int]:
        return list(nx.topological_sort(self.g))

    def live_nodes(self) -> set[int]:
        """Nodes the output depends on (dead code is never compiled)."""
        if self.output is None:
            return set()
        return nx.ancestors(self.g, self.output) | {self.output}
