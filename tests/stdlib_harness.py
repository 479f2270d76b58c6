"""Compile one stdlib function into a small program and read every output byte it produces.

Why this shape: a stdlib function returns a tuple of bytes, but a program emits one token.
So the harness builds a program whose operand bytes come from the token stream through pure
look-ups (one attention head each, no FFN), binds every output of the function to a name, and
emits a cheap token that depends on all of them (so none is pruned).  The outputs are then
read two ways:

* the reference evaluator (the language's semantics) on the graph nodes of the outputs, for
  the first `REFERENCE_EXAMPLES` examples of each check (it is plain Python over every node
  at every position, far slower than the model);
* the compiled transformer, for every example: each output is an affine combination of
  residual dimensions (its `Lin`), read from the residual stream right after the stage that
  writes it.  The bulk runs through `model_forward` (the `model_file` machine in batched
  NumPy with sparse FFNs); the first `TORCH_EXAMPLES` of the first check of each program
  also run through the torch backend (hard-max) and must agree.

Many examples share one sequence: example `e` occupies tokens `n*e .. n*e+n-1` and its outputs
are read at the last of them (operand byte `j` is `lookup(indices, indices - (n-1-j), ...)`),
so one evaluation covers a whole batch.  A function is compiled once per test session.

The depth of an op is the FFN layer of its deepest output (inputs come from layer-0 heads), and
its unit count is the number of ReLU units in the FFN blocks its outputs depend on: exactly
the cost the op adds to a program, without the input plumbing or the emit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from rasp2d.backends.model_file import LATEST, CompiledModel, Generation, position_features
from rasp2d.backends.reference import evaluate
from rasp2d.compiler.allocate import allocate
from rasp2d.compiler.elaborate import Elaborator, NodeVal, TupleVal
from rasp2d.compiler.graph import Affine, Const, Graph
from rasp2d.compiler.lower import Lowerer
from rasp2d.compiler.primitives import ONE, Lin, Lowered
from rasp2d.compiler.schedule import Schedule, schedule
from rasp2d.compiler.weights import emit_weights
from rasp2d.lang.parser import parse

VOCAB = " ".join(str(b) for b in range(256))
BATCH = 8  # examples per sequence (attention costs grow with the square of its length)
TORCH_EXAMPLES = 3  # examples also run through the torch backend, once per program (dense: slow when wide)
_TORCH_AGREES: set[int] = set()  # programs (ids of cached CompiledOps) already cross-checked with torch
REFERENCE_EXAMPLES = 64  # examples per check also run through the reference evaluator


class _NamingElaborator(Elaborator):
    """Keeps the main module's scope so the harness can find the nodes its names denote."""

    main_scope = None

    def _module_scope(self, module):
        scope = super()._module_scope(module)
        if module.path == "<stdlib-harness>":
            self.main_scope = scope
        return scope


@dataclass(frozen=True)
class OpCost:
    depth: int  # FFN layers from the operand bytes to the deepest output
    units: int  # ReLU units the outputs depend on
    layers: int  # layers of the whole harness program (plumbing and emit included)


@dataclass(frozen=True, eq=False)
class CompiledOp:
    source: str
    n_in: int
    n_out: int
    graph: Graph
    out_nodes: tuple[int | None, ...]  # graph node per output (None: a constant)
    out_consts: tuple[int | None, ...]
    out_lins: tuple[Lin, ...]
    lowered: Lowered
    sched: Schedule
    dims: tuple[int, ...]
    model: CompiledModel
    cost: OpCost

    # ------------------------------------------------------------------ reference
    def reference(self, examples: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        want = {n for n in self.out_nodes if n is not None}
        nodes = self.graph.live_nodes() | want
        for n in want:
            nodes |= nx.ancestors(self.graph.g, n)
        for chunk in _chunks(examples, BATCH):
            ids = [b for ex in chunk for b in ex]
            vals = evaluate(self.graph, ids, nodes)
            for e in range(len(chunk)):
                pos = self.n_in * e + self.n_in - 1
                out.append(tuple(c if n is None else vals[n][pos]
                                 for n, c in zip(self.out_nodes, self.out_consts)))
        return out

    # ------------------------------------------------------------------ compiled model
    def compiled(self, examples: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """Outputs read from the residual stream of the compiled model.

        The bulk runs through `model_forward` (the machine semantics in batched NumPy, used
        heads only, read positions only after the last attention); the first sequence also
        runs through the torch backend, and both must agree on every output read.
        """
        chunks = list(_chunks(examples, BATCH))
        width = max(len(c) for c in chunks)
        pad = (0,) * self.n_in
        ids = np.array([[b for ex in c + [pad] * (width - len(c)) for b in ex] for c in chunks])
        read = np.arange(width) * self.n_in + self.n_in - 1
        snaps = model_forward(self.model, ids, read)
        values = np.stack([self._read_all(lin, snaps) for lin in self.out_lins], axis=-1)  # [B, E, outs]
        out = [tuple(int(v) for v in values[ci, e]) for ci, chunk in enumerate(chunks) for e in range(len(chunk))]
        if id(self) not in _TORCH_AGREES:
            torch_first = self._torch_outputs(ids[:1, :TORCH_EXAMPLES * self.n_in], read[:TORCH_EXAMPLES])
            if torch_first != out[:len(torch_first)]:
                raise AssertionError("the NumPy forward and the torch backend disagree on the compiled model")
            _TORCH_AGREES.add(id(self))
        return out

    # ------------------------------------------------------------------ whole streams
    def stream(self, seqs: list[list[int]]) -> tuple[list[list[tuple[int, ...]]], list[list[tuple[int, ...]]]]:
        """Outputs at every position of each token sequence (equal lengths): reference, compiled.

        For programs whose values depend on the whole history (memory, slots, counters)
        rather than on a fixed window of operand bytes.
        """
        ids = np.array(seqs)
        read = np.arange(ids.shape[1])
        snaps = model_forward(self.model, ids, read)
        values = np.stack([self._read_all(lin, snaps) for lin in self.out_lins], axis=-1)
        got = [[tuple(int(v) for v in values[b, i]) for i in range(ids.shape[1])] for b in range(ids.shape[0])]
        if id(self) not in _TORCH_AGREES:
            if self._torch_outputs(ids[:1], read) != got[0]:
                raise AssertionError("the NumPy forward and the torch backend disagree on the compiled model")
            _TORCH_AGREES.add(id(self))
        ref = []
        want = [n for n in self.out_nodes if n is not None]
        nodes = self.graph.live_nodes() | set(want)
        for n in want:
            nodes |= nx.ancestors(self.graph.g, n)
        for seq in seqs:
            vals = evaluate(self.graph, list(seq), nodes)
            ref.append([tuple(c if n is None else vals[n][i] for n, c in zip(self.out_nodes, self.out_consts))
                        for i in range(len(seq))])
        return ref, got

    def _torch_outputs(self, ids: np.ndarray, read: np.ndarray) -> list[tuple[int, ...]]:
        import torch

        with torch.no_grad():
            _, res = _torch_net(self.model)(torch.tensor(ids), return_residuals=True)
        snaps = [r.numpy()[:, read, :] for r in res]
        n = len(read)
        return [tuple(self._read(lin, snaps, 0, e) for lin in self.out_lins) for e in range(n)]

    def _read_all(self, lin: Lin, snaps) -> np.ndarray:
        """The value of `lin` at every read position ([batch, examples]), checked integral."""
        total = np.full(snaps[0].shape[:2], float(lin.const))
        for s, c in lin.terms:
            total += c * snaps[self.sched.write_stage[s]][:, :, self.dims[s]]
        if not np.array_equal(total, np.round(total)):
            raise AssertionError("a compiled output is not an integer")
        return np.round(total).astype(np.int64)

    def _read(self, lin: Lin, snaps, seq: int, e: int) -> int:
        total = float(lin.const)
        for s, c in lin.terms:
            stage = self.sched.write_stage[s]
            total += c * float(snaps[stage][seq, e, self.dims[s]])
        if total != round(total):
            raise AssertionError(f"compiled output {total!r} is not an integer")
        return int(round(total))


def model_forward(model: CompiledModel, ids: np.ndarray, read: np.ndarray) -> list[np.ndarray]:
    """Residual snapshots ``[stage][batch, len(read), d]`` at positions ``read``.

    The machine of `model_file` (hard-max heads with exact ties, ReGLU FFN), batched, skipping
    padding heads (``W_o == 0`` adds nothing) and, after the last layer with a used head,
    computing only the read positions (FFNs act on each position alone).
    """
    B, n = ids.shape
    x = model.embed[ids] + (position_features(np.arange(n)) @ model.pos_embed)[None]
    heads = _used_heads(model)
    last_attn = max((l for l in range(model.n_layers) if heads[l]), default=-1)
    causal = np.tril(np.ones((n, n), dtype=bool))
    pos = np.arange(n)
    snaps = [x[:, read, :]]
    if last_attn < 0:
        x = x[:, read, :]
    for l in range(model.n_layers):
        if l <= last_attn:
            upd = np.zeros_like(x)
            for tie, cols, wq, wk, wv, rows, wo in heads[l]:
                xc = x[:, :, cols]
                q, k, v = xc @ wq.T, xc @ wk.T, xc @ wv.T  # [B, n, 2]
                scores = q[:, :, None, 0] * k[:, None, :, 0] + q[:, :, None, 1] * k[:, None, :, 1]
                scores = np.where(causal[None], scores, -np.inf)
                winners = causal[None] & (scores == scores.max(axis=2, keepdims=True))
                if tie == LATEST:
                    last = np.where(winners, pos[None, None, :], -1).max(axis=2)  # [B, n]
                    o = np.take_along_axis(v, last[..., None], axis=1)
                else:
                    o = (winners.astype(np.float64) @ v) / winners.sum(axis=2, keepdims=True)
                upd[:, :, rows] += o @ wo.T
            x = x + upd
            if l == last_attn:
                x = x[:, read, :]
        snaps.append(x if l >= last_attn else x[:, read, :])
        gate, val, out = _sparse_ffn(model)[l]
        flat = x.reshape(-1, x.shape[-1])
        hidden = np.maximum(_spmm(flat, *gate), 0) * _spmm(flat, *val)
        x = x + _spmm(hidden, *out).reshape(x.shape)
        snaps.append(x if l >= last_attn else x[:, read, :])
    return snaps


@functools.lru_cache(maxsize=None)
def _used_heads(model: CompiledModel):
    """Per layer, the heads with a non-zero output (the rest are padding), restricted to the
    residual dimensions they read and write."""
    out = []
    for l in range(model.n_layers):
        layer = []
        for h in range(model.n_heads):
            wo = model.W_o[l, :, h, :]
            rows = np.flatnonzero(np.any(wo, axis=1))
            if not len(rows):
                continue
            w = np.concatenate([model.W_q[l, h], model.W_k[l, h], model.W_v[l, h]])
            cols = np.flatnonzero(np.any(w, axis=0))
            layer.append((model.tie[l, h], cols, model.W_q[l, h][:, cols], model.W_k[l, h][:, cols],
                          model.W_v[l, h][:, cols], rows, wo[rows]))
        out.append(layer)
    return out


@functools.lru_cache(maxsize=None)
def _sparse_ffn(model: CompiledModel):
    """Per layer, (rows, cols, vals, n_rows) of W_gate, W_val and W_out: compiled FFNs are
    almost all zeros, and dense products over them dominated the test time."""
    def sparse(w: np.ndarray):
        rows, cols = np.nonzero(w)
        return rows, cols, w[rows, cols], w.shape[0]

    return [(sparse(model.W_gate[l]), sparse(model.W_val[l]), sparse(model.W_out[l]))
            for l in range(model.n_layers)]


def _spmm(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int) -> np.ndarray:
    """x @ W.T for W given by its non-zeros (rows sorted, as np.nonzero returns them)."""
    out = np.zeros((x.shape[0], n_rows))
    if len(rows):
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[:, rows[starts]] = np.add.reduceat(x[:, cols] * vals, starts, axis=1)
    return out


@functools.lru_cache(maxsize=None)
def _torch_net(model: CompiledModel):
    from rasp2d.backends.torch_backend import TorchTransformer

    return TorchTransformer.from_compiled(model)


def _chunks(xs: list, n: int):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def program_text(imports: str, n_in: int, lets: tuple[str, ...], outputs: tuple[str, ...],
                 max_len: int | None = None) -> str:
    lines = [f"vocab {{ {VOCAB} }}", f"max_len {max_len or BATCH * n_in}", imports]
    for j in range(n_in):
        lines.append(f"let x{j} = lookup(indices, indices - {n_in - 1 - j}, int(tokens))")
    lines += [f"let r{i} = {e}" for i, e in enumerate(lets)]
    lines += [f"let out{k} = {e}" for k, e in enumerate(outputs)]
    # every output feeds one gated product (whose value side is exactly the output, so its
    # range is the node's own) and the emit tests their sum: nothing is pruned, and no
    # comparison runs on an output itself (see `compile_program` on why)
    lines += [f"let keep{k} = if x0 == 255 then out{k} else 0" for k in range(len(outputs))]
    total = " + ".join(f"keep{k}" for k in range(len(outputs)))
    lines.append(f'emit if {total} == 0 then "0" else "1"')
    return "\n".join(lines) + "\n"


def compile_op(imports: str, n_in: int, expr: str, n_out: int) -> CompiledOp:
    """`expr` uses operand bytes `x0 .. x{n_in-1}` and gives `n_out` values (a tuple if > 1)."""
    outputs = ("r0",) if n_out == 1 else tuple(f"r0[{k}]" for k in range(n_out))
    return compile_program(imports, n_in, (expr,), outputs)


@functools.lru_cache(maxsize=None)
def compile_program(imports: str, n_in: int, lets: tuple[str, ...], outputs: tuple[str, ...],
                    max_len: int | None = None) -> CompiledOp:
    """`lets` bind `r0, r1, ...` from the operand bytes `x0 ..`; `outputs` are read from them.

    The emit never compares an output directly: the compiler bounds a value that mixes PWL
    blocks by summing its slots' ranges, and a block's range is the sum of its units'
    magnitudes, so e.g. the top byte of `arith32.mul` (truly -260864..260864) is bounded by
    ~2^60 and a comparison on it is refused.  A gated product whose value side is exactly an
    output uses the output's own (tight) range.
    """
    n_out = len(outputs)
    source = program_text(imports, n_in, lets, outputs, max_len)
    module = parse(source, "<stdlib-harness>")
    el = _NamingElaborator()
    graph = el.program(module)
    out_nodes, out_consts = [], []
    for k in range(n_out):
        val = el.main_scope.names[f"out{k}"]
        if isinstance(val, TupleVal) or not isinstance(val, NodeVal):
            raise TypeError(f"output {k} of `{expr}` is not a single value")
        node = graph.node(val.nid)
        if isinstance(node.op, Const):
            out_nodes.append(None)
            out_consts.append(node.op.value)
        else:
            out_nodes.append(val.nid)
            out_consts.append(None)
    # the `keep` gate must read each output's block, not fuse it away: fuse the first PWL factor
    # of a product (the gate's test), not the one ready first as the compiler prefers
    lw = Lowerer(graph, fuse_ready_first=False)
    low = lw.lower()
    sch = schedule(low)
    alloc = allocate(low, sch)
    model = emit_weights(low, sch, alloc, Generation())

    def lin_of(nid: int | None, const: int | None) -> Lin:
        if nid is None:
            return Lin(const=const)
        if nid in lw.lin:
            return lw.lin[nid]
        op = graph.node(nid).op
        if isinstance(op, Affine):
            acc = Lin(const=op.const)
            for sub, c in op.terms:
                acc = acc + lin_of(sub, None) * c
            return acc
        raise AssertionError(f"output node {nid} ({graph.node(nid).label}) was not lowered")

    lins = tuple(lin_of(n, c) for n, c in zip(out_nodes, out_consts))
    for lin in lins:
        for s, _ in lin.terms:
            if low.slots[s].source == "dead":
                raise AssertionError("an output reads a pruned slot")
    cost = _cost(low, sch, lins)
    return CompiledOp(source, n_in, n_out, graph, tuple(out_nodes), tuple(out_consts), lins, low,
                      sch, alloc.dim, model, cost)


def _cost(low: Lowered, sch: Schedule, lins: tuple[Lin, ...]) -> OpCost:
    producer = {b.output: b for b in low.ffns}
    seen: set[int] = set()
    todo = [s for lin in lins for s, _ in lin.terms]
    units = 0
    while todo:
        s = todo.pop()
        if s in seen or s == ONE:
            continue
        seen.add(s)
        if s in producer:
            units += len(producer[s].units)
            todo.extend(producer[s].inputs())
    depth = max((sch.write_stage[s] // 2 for lin in lins for s, _ in lin.terms), default=0)
    return OpCost(depth, units, sch.n_layers)


def check(op: CompiledOp, examples: list[tuple[int, ...]], expected: list[tuple[int, ...]],
          reference_examples: int | None = None) -> None:
    """Every output byte equals the expected one: in the compiled model for every example, in
    the reference evaluator for the first REFERENCE_EXAMPLES (it evaluates every node at
    every position in Python: a few seconds per hundred examples of a division)."""
    got = op.compiled(examples)
    ref = op.reference(examples[:REFERENCE_EXAMPLES if reference_examples is None else reference_examples])
    for ex, want, g in zip(examples, expected, got):
        assert g == want, f"compiled model: inputs {ex} -> {g}, expected {want}"
    for ex, want, r in zip(examples, expected, ref):
        assert r == want, f"reference: inputs {ex} -> {r}, expected {want}"
    assert len(got) == len(expected) == len(examples)


# ---------------------------------------------------------------------- value <-> bytes
def to_bytes(x: int, n: int) -> tuple[int, ...]:
    return tuple((x >> (8 * i)) & 255 for i in range(n))


def from_bytes(bs) -> int:
    return sum(b << (8 * i) for i, b in enumerate(bs))


# ---------------------------------------------------------------------- op specs
@dataclass(frozen=True)
class OpSpec:
    """One stdlib function under test.

    `expr` names its operands `{0}`, `{1}`, ... (each replaced by the tuple of that operand's
    bytes, or by the single byte when its width is 1); `widths` are the operands' byte
    counts; `ref` maps the operands' unsigned values to the expected outputs; `depth` pins
    the FFN depth the op is designed for.
    """

    name: str
    imports: str
    expr: str
    widths: tuple[int, ...]
    n_out: int
    ref: Callable[..., tuple[int, ...]]
    depth: int

    def compile(self) -> CompiledOp:
        return compile_op(self.imports, sum(self.widths), self.expr.format(*_operand_names(self.widths)),
                          self.n_out)

    def check(self, operands: list[tuple[int, ...]]) -> None:
        examples = [tuple(b for v, w in zip(ops, self.widths) for b in to_bytes(v, w)) for ops in operands]
        expected = [tuple(self.ref(*ops)) for ops in operands]
        check(self.compile(), examples, expected)


def compile_together(specs: list[OpSpec]) -> tuple[CompiledOp, list[tuple[str, int]]]:
    """Several ops of one operand shape in ONE program; also says which op owns each output."""
    widths = specs[0].widths
    assert all(s.widths == widths for s in specs), "ops compiled together need one operand shape"
    lets, outputs, owner = [], [], []
    for i, s in enumerate(specs):
        lets.append(s.expr.format(*_operand_names(widths)))
        outputs += [f"r{i}"] if s.n_out == 1 else [f"r{i}[{k}]" for k in range(s.n_out)]
        owner += [(s.name, k) for k in range(s.n_out)]
    imports = "\n".join(sorted({line for s in specs for line in s.imports.splitlines()}))
    return compile_program(imports, sum(widths), tuple(lets), tuple(outputs)), owner


def check_together(specs: list[OpSpec], operands: list[tuple[int, ...]]) -> None:
    """Check several ops of one operand shape in one compiled program (one pass of the
    reference evaluator and one forward of the model for all of them: much faster than one
    program per op, and the outputs stay separate)."""
    op, owner = compile_together(specs)
    widths = specs[0].widths
    examples = [tuple(b for v, w in zip(ops, widths) for b in to_bytes(v, w)) for ops in operands]
    expected = [tuple(x for s in specs for x in s.ref(*ops)) for ops in operands]
    got = op.compiled(examples)
    ref = op.reference(examples[:REFERENCE_EXAMPLES])
    for i, (ops, want, g) in enumerate(zip(operands, expected, got)):
        r = ref[i] if i < len(ref) else want
        for (name, k), w_, r_, g_ in zip(owner, want, r, g):
            assert r_ == w_, f"{name} output {k} (reference) on {[hex(v) for v in ops]}: {r_}, expected {w_}"
            assert g_ == w_, f"{name} output {k} (compiled) on {[hex(v) for v in ops]}: {g_}, expected {w_}"
    assert len(got) == len(operands) and len(ref) == min(len(operands), REFERENCE_EXAMPLES)


def costs_together(specs: list[OpSpec]) -> dict[str, OpCost]:
    """Each op's depth and units, read off the shared program: the scheduler places every
    block at its earliest layer and equal expressions are shared, so an op's outputs there have
    exactly the depth and ancestor units of the op compiled alone (`OpSpec.compile`)."""
    op, owner = compile_together(specs)
    out = {}
    for s in specs:
        lins = tuple(lin for (name, _), lin in zip(owner, op.out_lins) if name == s.name)
        out[s.name] = _cost(op.lowered, op.sched, lins)
    return out


def _operand_names(widths: tuple[int, ...]) -> list[str]:
    names, j = [], 0
    for w in widths:
        xs = [f"x{j + i}" for i in range(w)]
        names.append(xs[0] if w == 1 else "(" + ", ".join(xs) + ")")
        j += w
    return names


EDGE32 = (0, 1, 2, 3, 7, 8, 31, 32, 33, 63, 64, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
          0x10000, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF, 0x12345678)
EDGE64 = EDGE32 + (0xFFFFFFFF + 1, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0x8000000000000001,
                   0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0x123456789ABCDEF0, 0xFFFFFFFF00000000,
                   0x00000000FFFFFFFF + 0x100000000 * 0x80000000)


# a smaller set for grids of pairs (every pair is checked)
GRID32 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0x80000001,
          0xFFFFFFFE, 0xFFFFFFFF, 0x12345678, 31)
GRID64 = (0, 1, 0xFF, 0x80, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFF, 0x80000000, 0x7FFFFFFFFFFFFFFF,
          0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0x123456789ABCDEF0,
          0xFFFFFFFF00000000, 63, 0x0000000100000001)


def edge_grid(widths: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every combination of edge values (all of them for one operand, a grid set for more)."""
    import itertools

    if len(widths) == 1:
        return [(v,) for v in (EDGE32 if widths[0] == 4 else EDGE64)]
    sets = [GRID32 if w == 4 else GRID64 for w in widths]
    return list(itertools.product(*sets))


def word_strategy(nbytes: int):
    """Whole-range words, weighted towards the bytes that stress carries and signs."""
    from hypothesis import strategies as st

    edge = EDGE32 if nbytes == 4 else EDGE64
    byte = st.one_of(st.sampled_from((0, 1, 0x7F, 0x80, 0xFE, 0xFF)), st.integers(0, 255))
    by_bytes = st.lists(byte, min_size=nbytes, max_size=nbytes).map(from_bytes)
    return st.one_of(st.integers(0, 2 ** (8 * nbytes) - 1), st.sampled_from(edge), by_bytes,
                     st.integers(0, 70))


def wasm(op_name: str, nbytes: int = 4, result_bytes: int | None = None):
    """The project's WASM semantics (interpreter_spec.numeric) as a spec's `ref`.

    Comparisons and tests give one value (their 0/1); everything else gives the result's bytes.
    """
    from rasp2d.interpreter_spec.numeric import BINARY, UNARY
    from rasp2d.interpreter_spec.program import Op

    op = Op[op_name]
    fn = BINARY.get(op) or UNARY[op]
    if result_bytes == 0:
        return lambda *xs: (fn(*xs),)
    n = nbytes if result_bytes is None else result_bytes
    return lambda *xs: to_bytes(fn(*xs), n)
