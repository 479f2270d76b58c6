"""Incremental decoding of a CompiledModel with a hull (or brute-force) cache per head.

``HullDecoder(model).feed(token_id)`` implements the ``Decoder`` protocol of
:mod:`rasp2d.backends.generate`: the new position's residual stream is computed once, each
head inserts its key/value into its cache and answers its query from the cache, so the
prefix is never recomputed.  With ``cache="hull"`` a head costs O(log h) per token (h =
distinct hull points, see :mod:`rasp2d.backends.hull_kernels`); with ``cache="brute"`` it
scans every earlier position, O(t), as the speed baseline and a second check.

Heads whose keys are a fixed function of the position (``lookup(indices, ...)``, previous
token) keep no hull: their answer has a closed form (``position_query``), and they store one
value pair per position, as float32 when that is exact (it is for the WASM machine's bytes,
flags and positions; other pairs go to a side table), and only the non-zero values: a position
costs its mask (two bits per position head, in 64-bit words) and an 8-byte offset, plus 4 bytes
per non-zero value.
FFN units are evaluated by groups (:mod:`rasp2d.backends.hull_ffn_plan`).

Decoding runs in one numba function (:func:`~rasp2d.backends.hull_kernels.decode_loop`)
over the flattened sparse weights of :mod:`rasp2d.backends.sparse_program` (padding heads
and dead FFN units are dropped, rows hold only their non-zeros), so there is no per-head
Python overhead: ``feed`` runs it for one token, :meth:`generate` for a whole greedy trace.
"""

from __future__ import annotations

import numpy as np

from rasp2d.backends.generate import Generated
from rasp2d.backends.hull_cache import ERROR_TEXT, ExactnessError, HullPool
from rasp2d.backends.hull_kernels import DONE, FAILED, decode_loop, dense_logits, exc_rehash
from rasp2d.backends.model_file import CompiledModel
from rasp2d.backends.sparse_program import SparseProgram, sparse_program

CACHES = ("hull", "brute")


def _table_size(n: int) -> int:
    """Smallest power of two >= max(n, 64): the wide-value table's sizes."""
    return 1 << max(6, (max(n, 1) - 1).bit_length())


class HullDecoder:
    """Token-by-token decoder of a CompiledModel with one hull (or brute) cache per used head.

    ``record=True`` keeps the residual stream of every stage of the last fed token in
    :attr:`stages` (``[2L+1, d]``); :attr:`logits` gives the last token's logits (the step
    usually finds the argmax without them, so they are computed when asked for).  A model
    that breaks the hull's exact-integer contract raises :class:`ExactnessError` naming the
    layer, head and position; the decoder's caches are then partly updated, so start a new
    decoder (or use ``cache="brute"``, which has no such contract).
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
        # the step writes into a [2d] buffer: x is its first half, deferred writes the second
        # (see hull_kernels._fold)
        self._delta = np.zeros(2 * p.d_model)
        self.x = self._delta[:p.d_model]
        self._head_out = np.zeros((max(G, 1), 2))
        self._logits = np.zeros(p.vocab_size)
        self.stages = np.zeros((2 * p.n_layers + 1, p.d_model))
        self._err = np.zeros(3, dtype=np.int64)
        self._feed_prompt = np.zeros(1, dtype=np.int64)
        self._feed_out = np.zeros(1, dtype=np.int64)
        self._feed_cursor = np.zeros(3, dtype=np.int64)
        self._use_hull = cache == "hull"
        self.pool = HullPool([int(t) for t in p.head_tie] if self._use_hull else [0])
        width = 0 if self._use_hull else 64
        self._bkeys = np.zeros((max(G, 1), 2, width))  # component-major: see brute_query
        self._bvals = np.zeros((max(G, 1), 2, width))
        # position heads keep their values per position (their keys are known functions of
        # it), packed: per position a mask of the non-zero values (two bits per position head)
        # and its offset into one float32 store of those values, in head order (see
        # hull_kernels.position_insert; pairs float32 cannot hold go to the open-addressing
        # table exc_keys/exc_vals, keyed slot << 40 | position, -1 = empty).  Growing appends
        # at the end, which realloc does without copying (see _make_room).
        words = max(1, (2 * p.n_position_heads + 63) // 64)
        self._pmask = np.zeros((64 if self._use_hull else 0, words), dtype=np.uint64)
        self._poff = np.zeros(64 if self._use_hull else 0, dtype=np.int64)
        self._pstore = np.zeros(4096 if self._use_hull else 0, dtype=np.float32)
        self._pmeta = np.zeros(1, dtype=np.int64)  # values in the store
        self._exc_keys = np.full(_table_size(4 * G), -1, dtype=np.int64)
        self._exc_vals = np.zeros((self._exc_keys.shape[0], 2))
        self._exc_meta = np.zeros(1, dtype=np.int64)  # entries in the table
        u = p.uhull
        self._uhull = (u.usable, u.m, u.uabs, u.pabs, u.chain_ptr, u.chain_x, u.chain_y,
                       u.chain_id, u.extreme_id)
        f = p.ffn
        self._ffn = (f.layer_groups, f.layer_generic, f.generic_units, f.group_kind,
                     f.group_bound, f.group_units, f.in_ptr, f.in_dim, f.in_w, f.bp_ptr, f.bp,
                     f.iv_ptr, f.ent_dim, f.ent_a, f.ent_b, f.rise_ptr, f.rise_t, f.rise_unit,
                     f.rise_a, f.rise_c, f.fall_ptr, f.fall_t, f.fall_unit, f.fall_a, f.fall_c,
                     f.z_ptr, f.z_dim, f.z_b, f.zl_ptr, f.zl_dim, f.zl_val, f.always_ptr,
                     f.always_groups, f.wake_ptr, f.wake_dim, f.wake_gptr, f.wake_groups,
                     f.fam_mptr, f.fam_member, f.fam_t, f.fam_tcum, f.fam_tptr, f.fam_rep,
                     f.fam_ew, f.fam_cw, f.ent_unit, f.iv_p, f.iv_q, f.ch_vptr, f.ch_vdim,
                     f.mv_ptr, f.mv_dst, f.mv_k)
        # row 0: the token a group was last queued for; row 1: the queue (see ffn_layer)
        self._stamp = np.full((2, max(f.n_groups, 1)), -1, dtype=np.int64)

    # ------------------------------------------------------------------ room
    def _make_room(self, positions: int = 1) -> None:
        need = self.position + positions
        if self._use_hull:
            self.pool.reserve()
            cap = self._pmask.shape[0]
            if need > cap:
                # in place: large blocks grow by mremap, no copy of the (gigabytes of) old
                # rows; the kernel holds no view of the arrays between calls
                self._pmask.resize((max(need, 2 * cap), self._pmask.shape[1]), refcheck=False)
                self._poff.resize(max(need, 2 * cap), refcheck=False)
            used, vcap = int(self._pmeta[0]), self._pstore.shape[0]
            if used + 2 * self.program.n_used_heads > vcap:
                self._pstore.resize(max(used + 2 * self.program.n_used_heads, 2 * vcap),
                                    refcheck=False)
            want = _table_size(2 * (int(self._exc_meta[0]) + self.program.n_used_heads))
            if want > self._exc_keys.shape[0]:
                old_keys, old_vals = self._exc_keys, self._exc_vals
                self._exc_keys = np.full(2 * want, -1, dtype=np.int64)
                self._exc_vals = np.zeros((2 * want, 2))
                exc_rehash(old_keys, old_vals, self._exc_keys, self._exc_vals, self._exc_meta)
        else:
            cap = self._bkeys.shape[2]
            if need > cap:
                new = max(need, 2 * cap)
                for name in ("_bkeys", "_bvals"):
                    old = getattr(self, name)
                    grown = np.empty((old.shape[0], 2, new))
                    grown[:, :, :cap] = old  # entries past the position are written before read
                    setattr(self, name, grown)

    def _args(self):
        p, pool = self.program, self.pool
        return (p.embed, p.ptr, p.idx, p.val, p.bases, p.layer_heads, p.head_tie, p.head_mode,
                p.head_slot, p.head_kcoef, p.head_pmax, p.fold_ptr, p.fold_idx, p.ucols,
                p.ublock, self._uhull, self._ffn, self._stamp, self.x, self._delta, self._head_out, self._logits,
                self.stages, self.record, self._use_hull, pool.nodes, pool.points,
                pool.point_info, pool.head_i, pool.head_f, pool.meta, self._pmask, self._poff,
                self._pstore, self._pmeta, self._exc_keys,
                self._exc_vals, self._exc_meta, self._bkeys,
                self._bvals, self._err)

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
        self._feed_prompt[0] = token_id
        cursor = self._feed_cursor
        cursor[:] = (0, 0, -1)
        while True:  # one token in, its prediction out: the jitted loop with a budget of one
            status = decode_loop(self._feed_prompt, self._feed_out, cursor, 1, -1,
                                 self.position, *self._args())
            if status == DONE:
                break
            if status == FAILED:
                self._raise()
            self._make_room()
        self.position += 1
        return int(self._feed_out[0])

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
            status = decode_loop(ids, out, cursor, max_new_tokens, stop, start, *self._args())
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
    @property
    def logits(self) -> np.ndarray:
        """The logits of the last fed token, from its final residual stream."""
        p = self.program
        dense_logits(self.x, p.ucols, p.ublock, self._logits)
        return self._logits.copy()

    def cache_bytes(self) -> int:
        """Bytes the caches use for the positions fed so far (live rows only)."""
        if self._use_hull:
            return (self.pool.live_bytes() + self.position * (self._pmask.shape[1] + 1) * 8
                    + int(self._pmeta[0]) * 4 + int(self._exc_meta[0]) * 3 * 8)
        return self.program.n_used_heads * self.position * 4 * 8

