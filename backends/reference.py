"""The reference evaluator: runs the dataflow graph on Python ints.  This is the semantics.

Every compiled model, on every backend, must produce exactly the tokens this produces.  It
is written for clarity, not speed: each step re-evaluates the whole sequence.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from fractions import Fraction

from rasp2d.compiler import semantics
from rasp2d.compiler.graph import (ELEMENTWISE, Attend, Graph, Indices, Lookup, PrefixSum,
                                   SelectMax, Tokens, operands)


def evaluate(graph: Graph, token_ids: list[int], nodes: set[int] | None = None) -> dict[int, list[int]]:
    """Value of every (live) node at every position."""
    n = len(token_ids)
    live = graph.live_nodes() if nodes is None else nodes
    vals: dict[int, list[int]] = {}
    for nid in graph.topo():
        if nid not in live:
            continue
        op = graph.node(nid).op
        args = [vals[a] for a in operands(op)]
        match op:
            case Tokens():
                out = list(token_ids)
            case Indices():
                out = list(range(n))
            case Lookup(default=None):
                out = _nearest_lookup(*args, average=op.tie == "average")
            case Lookup(tie="average"):
                key, query, value, default = args
                sums: dict[int, tuple[int, int]] = {}  # key -> (sum of values, count)
                out = []
                for i in range(n):
                    s, c = sums.get(key[i], (0, 0))
                    sums[key[i]] = (s + value[i], c + 1)
                    hit = sums.get(query[i])
                    out.append(Fraction(*hit) if hit else default[i])
            case Lookup():
                key, query, value, default = args
                latest: dict[int, int] = {}
                out = []
                for i in range(n):
                    latest[key[i]] = value[i]
                    out.append(latest.get(query[i], default[i]))
            case PrefixSum():
                (x,) = args
                out, acc = [], 0
                for v in x:
                    acc += v
                    out.append(acc)
            case SelectMax():
                score, value = args
                out, best, best_v, total, count = [], None, None, 0, 0
                for i in range(n):
                    if best is None or score[i] > best:
                        best, total, count = score[i], 0, 0
                    if score[i] == best:
                        best_v, total, count = value[i], total + value[i], count + 1
                    out.append(Fraction(total, count) if op.tie == "average" else best_v)
            case Attend():
                q1, q2, k1, k2, value = args
                out = []
                for i in range(n):
                    scores = [q1[i] * k1[j] + q2[i] * k2[j] for j in range(i + 1)]
                    m = max(scores)
                    tied = [j for j, s in enumerate(scores) if s == m]
                    out.append(Fraction(sum(value[j] for j in tied), len(tied)) if op.tie == "average"
                               else value[tied[-1]])
            case _ if isinstance(op, ELEMENTWISE):
                out = [semantics.apply(op, tuple(a[i] for a in args)) for i in range(n)]
            case _:
                raise TypeError(f"no reference semantics for {op!r}")
        vals[nid] = out
    return vals


def _nearest_lookup(key: list[int], query: list[int], value: list[int], average: bool = False) -> list:
    """Value at the key nearest the query (max of 2kq - k^2); ties to the latest position, or
    (average) the mean over every position holding one of the nearest keys."""
    keys: list[int] = []  # sorted distinct keys seen so far
    last: dict[int, tuple[int, int]] = {}  # key -> (position, value) of its latest write
    sums: dict[int, tuple[int, int]] = {}  # key -> (sum of values, count)
    out = []
    for i, (k, q) in enumerate(zip(key, query)):
        if k not in last:
            bisect.insort(keys, k)
        last[k] = (i, value[i])
        s, c = sums.get(k, (0, 0))
        sums[k] = (s + value[i], c + 1)
        j = bisect.bisect_left(keys, q)
        cands = keys[max(j - 1, 0):j + 1]
        best = max(2 * c * q - c * c for c in cands)
        near = [c for c in cands if 2 * c * q - c * c == best]
        if average:
            out.append(Fraction(sum(sums[c][0] for c in near), sum(sums[c][1] for c in near)))
        else:
            out.append(max(last[c] for c in near)[1])
    return out


def next_token(graph: Graph, token_ids: list[int]) -> int:
    return evaluate(graph, token_ids)[graph.output][-1]


@dataclass
class ReferenceDecoder:
    """Decoder protocol over the graph: re-evaluates the whole prefix at each step (O(n^2))."""

    graph: Graph

    def __post_init__(self) -> None:
        self.tokens: list[int] = []
        self._live = self.graph.live_nodes()

    def feed(self, token_id: int) -> int:
        self.tokens.append(token_id)
        return evaluate(self.graph, self.tokens, self._live)[self.graph.output][-1]

    @staticmethod
    def from_model(model) -> "ReferenceDecoder":
        """Re-elaborate the program from the source bundle stored in the model's manifest."""
        from rasp2d.compiler.api import graph_from_bundle
        if not model.manifest.source:
            raise ValueError("this model carries no program source; the reference backend needs it")
        return ReferenceDecoder(graph_from_bundle(json.loads(model.manifest.source)))
