"""Incremental decoding of a CompiledModel with a hull (or brute-force) cache per head.

``HullDecoder(model).feed(token_id)`` implements the ``Decoder`` protocol of
:mod:`rasp2d.backends.generate`: the new position's residual stream is computed once, each
head inserts its key/value into its cache and answers its query from the cache, so the
prefix is never recomputed.  With ``cache="hull"`` a head costs O(log h) per token (h =
distinct hull points, see :mod:`rasp2d.backends.hull_kernels`); with ``cache="brute"`` it
scans every earlier position, O(t), as the speed baseline and a second check.

The whole per-token step is one numba function over the flattened sparse weights of
:mod:`rasp2d.backends.sparse_program` (padding heads and dead FFN units are dropped, rows
hold only their non-zeros), so there is no per-head Python overhead.  :meth:`generate`
additionally runs the greedy loop itself inside numba, for long traces.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rasp2d.backends import hull_kernels as hk
from rasp2d.backends.brute_cache import brute_query
from rasp2d.backends.generate import Generated
from rasp2d.backends.hull_cache import ERROR_TEXT, ExactnessError, HullPool
from rasp2d.backends.model_file import CompiledModel
from rasp2d.backends.sparse_program import (
    HEAD_ROWS, HEADS, UNEMBED, UNIT_ROWS, UNITS, SparseProgram, sparse_program,
)

CACHES = ("hull", "brute")

# _decode status codes
DONE, NEED_ROOM, FAILED = 0, 1, 2


@njit(cache=True)
def _dot(ptr, idx, val, r, x):
    s = 0.0
    for e in range(ptr[r], ptr[r + 1]):
        s += val[e] * x[idx[e]]
    return s


@njit(cache=True)
def _scatter(ptr, idx, val, r, w, out):
    for e in range(ptr[r], ptr[r + 1]):
        out[idx[e]] += val[e] * w


@njit(cache=True)
def _step(tok, pos, embed, ptr, idx, val, bases, layer_heads, layer_units, head_tie,
          x, delta, head_out, logits, stages, record, use_hull,
          nodes, points, point_info, head_i, head_f, meta, bkeys, bvals, err):
    """Feed token ``tok`` at position ``pos``; return the argmax next token (-1 on error)."""
    d = x.shape[0]
    fpos = float(pos)
    for j in range(d):
        x[j] = embed[tok, j]
    _scatter(ptr, idx, val, 0, fpos, x)
    _scatter(ptr, idx, val, 1, fpos * fpos, x)
    if record:
        stages[0, :] = x
    hb = bases[HEADS]
    ub = bases[UNITS]
    n_layers = layer_heads.shape[0] - 1
    for l in range(n_layers):
        for g in range(layer_heads[l], layer_heads[l + 1]):
            r = hb + HEAD_ROWS * g
            q0 = _dot(ptr, idx, val, r, x)
            q1 = _dot(ptr, idx, val, r + 1, x)
            k0 = _dot(ptr, idx, val, r + 2, x)
            k1 = _dot(ptr, idx, val, r + 3, x)
            v0 = _dot(ptr, idx, val, r + 4, x)
            v1 = _dot(ptr, idx, val, r + 5, x)
            if use_hull:
                code = hk.hull_insert(nodes, points, point_info, head_i, head_f, meta, g,
                                      k0, k1, v0, v1, fpos)
                if code == hk.OK:
                    o0, o1, code = hk.hull_query(nodes, points, head_i, head_f, g, q0, q1)
                if code != hk.OK:
                    err[0] = code
                    err[1] = g
                    err[2] = pos
                    return -1
            else:
                bkeys[g, pos, 0] = k0
                bkeys[g, pos, 1] = k1
                bvals[g, pos, 0] = v0
                bvals[g, pos, 1] = v1
                o0, o1 = brute_query(bkeys, bvals, g, pos + 1, q0, q1, head_tie[g])
            head_out[g, 0] = o0
            head_out[g, 1] = o1
        for g in range(layer_heads[l], layer_heads[l + 1]):
            r = hb + HEAD_ROWS * g
            _scatter(ptr, idx, val, r + 6, head_out[g, 0], delta)
            _scatter(ptr, idx, val, r + 7, head_out[g, 1], delta)
        for j in range(d):
            x[j] += delta[j]
            delta[j] = 0.0
        if record:
            stages[2 * l + 1, :] = x
        for u in range(layer_units[l], layer_units[l + 1]):
            r = ub + UNIT_ROWS * u
            gate = _dot(ptr, idx, val, r, x)
            if gate > 0.0:
                _scatter(ptr, idx, val, r + 2, gate * _dot(ptr, idx, val, r + 1, x), delta)
        for j in range(d):
            x[j] += delta[j]
            delta[j] = 0.0
        if record:
            stages[2 * l + 2, :] = x
    eb = bases[UNEMBED]
    best = 0
    for t in range(logits.shape[0]):
        logits[t] = _dot(ptr, idx, val, eb + t, x)
        if logits[t] > logits[best]:
            best = t
    return best


@njit(cache=True)
def _decode(prompt, out, cursor, max_new, stop_id, start,
            embed, ptr, idx, val, bases, layer_heads, layer_units, head_tie,
            x, delta, head_out, logits, stages, record, use_hull,
            nodes, points, point_info, head_i, head_f, meta, bkeys, bvals, err):
    """The greedy loop of ``generate.stream`` inside numba, resumable.

    ``cursor`` = [tokens fed, tokens emitted, last prediction]; the first token goes to
    position ``start``.  Returns DONE, NEED_ROOM (grow the caches and call again) or FAILED
    (``err`` says why)."""
    n_prompt = prompt.shape[0]
    n_heads = head_tie.shape[0]
    while True:
        fed = cursor[0]
        if use_hull:
            if not hk.has_room(nodes, points, meta, n_heads):
                return NEED_ROOM
        elif start + fed >= bkeys.shape[1]:
            return NEED_ROOM
        if fed >= n_prompt and fed == n_prompt + cursor[1]:
            nxt = cursor[2]
            out[cursor[1]] = nxt
            cursor[1] += 1
            if nxt == stop_id or cursor[1] == max_new:
                return DONE
        tok = prompt[fed] if fed < n_prompt else out[fed - n_prompt]
        nxt = _step(tok, start + fed, embed, ptr, idx, val, bases, layer_heads, layer_units, head_tie,
                    x, delta, head_out, logits, stages, record, use_hull,
                    nodes, points, point_info, head_i, head_f, meta, bkeys, bvals, err)
        if nxt < 0:
            return FAILED
        cursor[2] = nxt
        cursor[0] = fed + 1


class HullDecoder:
    """Token-by-token decoder of a CompiledModel with one hull (or brute) cache per used head.

    ``record=True`` keeps the residual stream of every stage of the last fed token in
    :attr:`stages` (``[2L+1, d]``); :attr:`logits` always holds the last logits.
    """

    def __init__(self, model: CompiledModel | SparseProgram, cache: str = "hull",
                 record: bool = False):
        if cache not in CACHES:
            raise ValueError(f"unknown cache {cache!r}; use one of {CACHES}")
        self.program = model if isinstance(model, SparseProgram) else sparse_program(model)
        self.cache = cache
        self.record = bool(record)
        p = self.program
        G = p.n_used_heads
        self.position = 0
        self.x = np.zeros(p.d_model)
        self._delta = np.zeros(p.d_model)
        self._head_out = np.zeros((max(G, 1), 2))
        self.logits = np.zeros(p.vocab_size)
        self.stages = np.zeros((2 * p.n_layers + 1, p.d_model))
        self._err = np.zeros(3, dtype=np.int64)
        self._use_hull = cache == "hull"
        self.pool = HullPool([int(t) for t in p.head_tie] if self._use_hull else [0])
        width = 0 if self._use_hull else 64
        self._bkeys = np.zeros((max(G, 1), width, 2))
        self._bvals = np.zeros((max(G, 1), width, 2))

    # ------------------------------------------------------------------ room
    def _make_room(self, positions: int = 1) -> None:
        if self._use_hull:
            self.pool.reserve()
        else:
            need = self.position + positions
            cap = self._bkeys.shape[1]
            if need > cap:
                new = max(need, 2 * cap)
                grow = lambda a: np.concatenate(  # noqa: E731
                    [a, np.zeros((a.shape[0], new - cap, 2))], axis=1)
                self._bkeys, self._bvals = grow(self._bkeys), grow(self._bvals)

    def _args(self):
        p, pool = self.program, self.pool
        return (p.embed, p.ptr, p.idx, p.val, p.bases, p.layer_heads, p.layer_units, p.head_tie,
                self.x, self._delta, self._head_out, self.logits, self.stages, self.record,
                self._use_hull, pool.nodes, pool.points, pool.point_info, pool.head_i,
                pool.head_f, pool.meta, self._bkeys, self._bvals, self._err)

    def _raise(self) -> None:
        code, g, pos = (int(v) for v in self._err)
        layer, head = (int(v) for v in self.program.head_origin[g])
        raise ExactnessError(f"layer {layer} head {head} at position {pos}: "
                             f"{ERROR_TEXT.get(code, f'error code {code}')}")

    # ------------------------------------------------------------------ decoding
    def feed(self, token_id: int) -> int:
        if not 0 <= token_id < self.program.vocab_size:
            raise ValueError(f"token id {token_id} is outside the vocabulary "
                             f"(size {self.program.vocab_size})")
        self._make_room()
        nxt = _step(token_id, self.position, *self._args())
        if nxt < 0:
            self._raise()
        self.position += 1
        return int(nxt)

    def generate(self, prompt: list[int], max_new_tokens: int,
                 stop_id: int | None = None) -> Generated:
        """Same result as ``generate.generate(self, ...)``, with the loop inside numba."""
        if not prompt:
            raise ValueError("the prompt must contain at least one token")
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        bad = [t for t in prompt if not 0 <= t < self.program.vocab_size]
        if bad:
            raise ValueError(f"token ids {bad[:5]} are outside the vocabulary")
        ids = np.asarray(prompt, dtype=np.int64)
        out = np.zeros(max_new_tokens, dtype=np.int64)
        cursor = np.array([0, 0, -1], dtype=np.int64)
        start = self.position
        stop = -1 if stop_id is None else int(stop_id)
        while True:
            # positions are absolute: the prompt continues whatever was fed before
            status = _decode(ids, out, cursor, max_new_tokens, stop, start, *self._args())
            self.position = start + int(cursor[0])
            if status == DONE:
                break
            if status == FAILED:
                self._raise()
            self._make_room(positions=max(1024, self.position))
        n = int(cursor[1])
        output = tuple(int(t) for t in out[:n])
        return Generated(tuple(prompt), output, bool(n) and output[-1] == stop_id)

    # ------------------------------------------------------------------ inspection
    def cache_bytes(self) -> int:
        """Bytes the caches use for the positions fed so far (live rows only)."""
        if self._use_hull:
            return self.pool.live_bytes()
        return self.program.n_used_heads * self.position * 4 * 8

