"""Where a decoded token's time goes in the hull runtime, per component and per layer.

    python benchmarks/hull_ffn_profile.py --model /tmp/frozen-wasm-machine.npz fizzbuzz

Decodes ``--tokens`` tokens of a WASM example after its prompt (``HullDecoder.generate``, the
real loop: total us/token), then records every stage of the same tokens (``feed`` with
``record=True``) and replays parts of the step on the recorded residual streams in jitted
loops: each layer's FFN (``hull_kernels.ffn_layer``), the unembedding and argmax, and the
heads' q/k/v/out rows.  The cost of copying recorded streams in is measured apart and
subtracted.  Counts per token: FFN groups run (FAMILY groups count once; members run only when
a family's guard fails), their input entries read, used heads (hull / closed form).
Replays share the machine with everything else: compare figures from one run only.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from hull_wasm_speed import prompt_of  # noqa: E402
from numba import njit  # noqa: E402

from rasp2d.backends import hull_kernels as hk  # noqa: E402
from rasp2d.backends.hull_runtime import HullDecoder  # noqa: E402
from rasp2d.backends.model_file import CompiledModel  # noqa: E402
from rasp2d.backends.sparse_program import sparse_program  # noqa: E402
from rasp2d.interpreter_spec.machine import model_path  # noqa: E402
from rasp2d.interpreter_spec.vocab import TOKEN_ID  # noqa: E402

ffn_layer = hk.ffn_layer
_dot = hk._dot
_scatter = hk._scatter
FAMILY = getattr(hk, "GROUP_FAMILY", -1)  # (-1: a runtime from before families)


@njit(_nrt=False)
def _replay_ffn(S, layer, ptr, idx, val, ub, ffn, stamp, x, delta, reps):
    """Layer ``layer``'s FFN (all layers when -1) on every recorded token."""
    acc = 0.0
    d = x.shape[0]
    L = (S.shape[1] - 1) // 2
    tick = 0
    for _ in range(reps):
        for i in range(S.shape[0]):
            for l in range(L):
                if layer >= 0 and l != layer:
                    continue
                for j in range(d):
                    x[j] = S[i, 2 * l + 1, j]
                tick += 1
                if layer != -2:  # -2: the copies only
                    ffn_layer(l, x, delta, ptr, idx, val, ub, ffn, stamp, tick)
                for j in range(delta.shape[0]):
                    acc += delta[j]
                    delta[j] = 0.0
    return acc


@njit(_nrt=False)
def _replay_heads(S, ptr, idx, val, hb, layer_heads, x, delta, reps):
    """Every used head's q, k, v dots and out scatters (no cache: that is total - the rest)."""
    acc = 0.0
    d = x.shape[0]
    for _ in range(reps):
        for i in range(S.shape[0]):
            for l in range(layer_heads.shape[0] - 1):
                for j in range(d):
                    x[j] = S[i, 2 * l, j]
                for g in range(layer_heads[l], layer_heads[l + 1]):
                    r = hb + hk.HEAD_ROWS * g
                    s = 0.0
                    for k in range(6):
                        s += _dot(ptr, idx, val, r + k, x)
                    _scatter(ptr, idx, val, r + 6, s, delta)
                    _scatter(ptr, idx, val, r + 7, s, delta)
                for j in range(delta.shape[0]):
                    acc += delta[j]
                    delta[j] = 0.0
    return acc


_unembed_argmax = getattr(hk, "unembed_argmax", None)  # (None: a runtime before the static hull)
if _unembed_argmax is None:
    @njit(_nrt=False)
    def _unembed_argmax(x, ucols, uh):
        return -1


@njit(_nrt=False)
def _replay_unembed(S, ucols, ublock, uh, logits, reps):
    """The step's argmax: the unembedding's static hull where it is exact, else every logit."""
    V = logits.shape[0]
    acc = 0
    last = S.shape[1] - 1
    for _ in range(reps):
        for i in range(S.shape[0]):
            best = _unembed_argmax(S[i, last], ucols, uh)
            if best != -1:
                acc += best
                continue
            for t in range(V):
                logits[t] = 0.0
            for c in range(ucols.shape[0]):
                xc = S[i, last, ucols[c]]
                if xc != 0.0:
                    for t in range(V):
                        logits[t] += ublock[c, t] * xc
            best = 0
            top = -np.inf
            for t in range(V):
                z = logits[t]
                if z > top or t == 0:
                    best = t
                    top = z
            acc += best
    return acc


def group_counts(prog, S):
    """Per layer, mean groups queued and input entries read per token (Python, from the plan)."""
    f = prog.ffn
    L = prog.n_layers
    groups = np.zeros(L)
    inputs = np.zeros(L)
    fam = f.group_kind == FAMILY
    for i in range(S.shape[0]):
        for l in range(L):
            x = S[i, 2 * l + 1]
            run = set(f.always_groups[f.always_ptr[l]:f.always_ptr[l + 1]].tolist())
            for e in range(f.wake_ptr[l], f.wake_ptr[l + 1]):
                if x[f.wake_dim[e]] != 0:
                    run.update(f.wake_groups[f.wake_gptr[e]:f.wake_gptr[e + 1]].tolist())
            for g in list(run):
                if fam[g]:  # the family's guard, as ffn_layer evaluates it
                    q = slice(f.in_ptr[g], f.in_ptr[g + 1])
                    xs = x[f.in_dim[q]]
                    ok = all(v == math.floor(v) for v in xs) and \
                        float(np.sum(f.fam_cw[q] * np.abs(xs))) <= f.group_bound[g]
                    if not ok:
                        run.update(f.fam_member[f.fam_mptr[g]:f.fam_mptr[g + 1]].tolist())
            groups[l] += len(run)
            inputs[l] += sum(int(f.in_ptr[g + 1] - f.in_ptr[g]) for g in run)
    return groups / S.shape[0], inputs / S.shape[0]


def timed(fn, *args) -> float:
    fn(*args)  # compile / warm
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("program", nargs="?", default="fizzbuzz")
    p.add_argument("--model", type=Path, default=None, metavar="PATH")
    p.add_argument("--tokens", type=int, default=2000)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    prog = sparse_program(CompiledModel.load(args.model or model_path()))
    prompt = [TOKEN_ID[t] for t in prompt_of(args.program)]
    N, L, R = args.tokens, prog.n_layers, args.reps

    dec = HullDecoder(prog)
    dec.generate(prompt[:-1], 1)
    dec.generate([prompt[-1]], 8)  # compile / load
    runs = []
    for _ in range(R):
        dec = HullDecoder(prog)
        dec.generate(prompt[:-1], 1)
        t0 = time.perf_counter()
        dec.generate([prompt[-1]], N)
        runs.append((time.perf_counter() - t0) / N)
    total = float(np.median(runs))

    rec = HullDecoder(prog, record=True)
    rec.generate(prompt[:-1], 1)
    S = np.zeros((N, 2 * L + 1, prog.d_model))
    tok = prompt[-1]
    for i in range(N):
        tok = rec.feed(tok)
        S[i] = rec.stages

    stamp = np.full_like(rec._stamp, -1)
    delta = np.zeros(2 * prog.d_model)  # the step's write buffer; x is its first half
    x = delta[:prog.d_model]
    fargs = (prog.ptr, prog.idx, prog.val, prog.bases[hk.UNITS], rec._ffn, stamp, x, delta, R)
    per = lambda s: s / N / R * 1e6  # noqa: E731
    copies = per(timed(_replay_ffn, S, -2, *fargs))
    ffn_all = per(timed(_replay_ffn, S, -1, *fargs)) - copies
    by_layer = [per(timed(_replay_ffn, S, l, *fargs)) - copies / L for l in range(L)]
    hcopies = per(timed(_replay_heads, S, prog.ptr, prog.idx, prog.val, prog.bases[hk.HEADS],
                        np.array([0] * (L + 1)), x, delta, R))
    heads = per(timed(_replay_heads, S, prog.ptr, prog.idx, prog.val, prog.bases[hk.HEADS],
                      prog.layer_heads, x, delta, R)) - hcopies
    uh = getattr(rec, "_uhull", (False,) + (np.zeros((0, 2)),) + (np.zeros(0),) * 2 +
                 (np.zeros(3, dtype=np.int64),) + (np.zeros(0),) * 2 +
                 (np.zeros(0, dtype=np.int64),) * 2)
    unembed = per(timed(_replay_unembed, S, prog.ucols, prog.ublock, uh,
                        np.zeros(prog.vocab_size), R))
    groups, inputs = group_counts(prog, S)
    kinds = {name: int((prog.ffn.group_kind == getattr(hk, "GROUP_" + name)).sum())
             for name in ("TABLE", "SELECT", "FAMILY", "LINEAR", "CHANNEL")
             if hasattr(hk, "GROUP_" + name)}

    print(f"{args.program}: {N} decoded tokens after a {len(prompt)}-token prompt; "
          f"{prog.n_used_heads} used heads ({prog.n_position_heads} closed form), "
          f"{prog.ffn.n_groups} FFN groups (" +
          ", ".join(f"{n} {k.lower()}" for k, n in kinds.items()) + ")")
    print(f"per token: decode {total * 1e6:.1f} us ({1 / total:,.0f} tok/s, median of {R})")
    print(f"  FFN replay           {ffn_all:6.1f} us   {groups.sum():7.0f} groups, "
          f"{inputs.sum():7.0f} input entries")
    print(f"  heads q/k/v/out rows {heads:6.1f} us   (cache insert + query: in the rest)")
    print(f"  unembed + argmax     {unembed:6.1f} us")
    print(f"  rest (caches, embedding, folds, loop) {total * 1e6 - ffn_all - heads - unembed:.1f} us")
    print("FFN by layer (us/token, groups/token):")
    print("  " + " ".join(f"{l}:{t:.1f}/{g:.0f}" for l, (t, g) in enumerate(zip(by_layer, groups))))


if __name__ == "__main__":
    main()
