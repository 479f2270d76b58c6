"""Hull cache vs brute force: the same model, prompt and greedy decoding, growing trace length.

    python benchmarks/hull_vs_brute.py              # full run (a few minutes)
    python benchmarks/hull_vs_brute.py --quick      # 100K hull / 10K brute, 1 repeat

Part 1 decodes the running-memory program of ``memory_models.MEMORY_WALK_SOURCE`` (compiled
with ``rasp2d.compiler``; ``--handbuilt`` uses the hand-built twin) up to ``--max-tokens``
with each cache, in chunks, and reports medians over ``--repeats`` runs: tokens/s at 1K,
10K, 100K, 1M tokens; the per-token cost around each length (flat for the hull, linear in
t for brute force); bytes per cached token.  Brute force runs up to ``--brute-max``; beyond
that its total time is extrapolated from a least-squares fit of its per-token cost
``a + b t`` (printed as such).  Both caches must produce identical tokens.

Part 2 measures single-stream decoding of ``wide_memory_machine`` (7 layers x 16 used heads,
the WASM machine's size) with the in-numba loop (``HullDecoder.generate``) and with the
Python ``feed`` loop of the Decoder protocol.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS threads spin on small machines

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
from memory_models import compiled_memory_walk, memory_walk_model, wide_memory_machine  # noqa: E402

from rasp2d.backends.hull_runtime import HullDecoder  # noqa: E402
from rasp2d.backends.model_file import CompiledModel  # noqa: E402

LENGTHS = (1_000, 10_000, 100_000, 1_000_000)
PROMPT = [int(t) for t in np.random.default_rng(0).permutation(16)] + [0]


@dataclass(frozen=True)
class Run:
    tokens: tuple[int, ...]
    elapsed_at: dict[int, float]  # generated tokens -> seconds since the start
    chunk_cost: list[tuple[int, float]]  # (position at chunk start, seconds per token)
    cache_bytes: int
    position: int
    total: float  # seconds for all generated tokens


def decode(model: CompiledModel, cache: str, n: int, chunk: int) -> Run:
    """Greedy decoding of ``n`` tokens after PROMPT, timed chunk by chunk."""
    dec = HullDecoder(model, cache)
    dec.generate(PROMPT[:2], 2)  # load the compiled step outside the timing
    dec = HullDecoder(model, cache)
    out: list[int] = []
    elapsed_at, costs = {}, []
    feed, total = PROMPT, 0.0
    while len(out) < n:
        k = min(chunk, n - len(out))
        start = dec.position
        t0 = time.perf_counter()
        got = dec.generate(feed, k).output
        dt = time.perf_counter() - t0
        total += dt
        costs.append((start, dt / k))
        out.extend(got)
        feed = [got[-1]]  # the last prediction is fed next: one continuous greedy trace
        for length in LENGTHS:
            if len(out) == length:
                elapsed_at[length] = total
    return Run(tuple(out), elapsed_at, costs, dec.cache_bytes(), dec.position, total)


def cost_near(run: Run, t: int) -> float:
    """Median seconds per token over the chunks starting in [0.8 t, t]."""
    window = [c for s, c in run.chunk_cost if 0.8 * t <= s <= t] or \
             [min(run.chunk_cost, key=lambda sc: abs(sc[0] - t))[1]]
    return statistics.median(window)


def fit_linear_cost(runs: list[Run]) -> tuple[float, float]:
    """Least-squares per-token cost a + b t over every brute chunk of every run."""
    pts = np.array([(s, c) for r in runs for s, c in r.chunk_cost if s > 0])
    A = np.stack([np.ones(len(pts)), pts[:, 0]], axis=1)
    (a, b), *_ = np.linalg.lstsq(A, pts[:, 1], rcond=None)
    return float(a), float(b)


def med(values) -> float:
    return statistics.median(values)


def part1(args) -> None:
    if args.handbuilt:
        model, name = memory_walk_model(), "memory walk (hand-built)"
    else:
        model, name = compiled_memory_walk(), "memory walk (compiled .rasp2d)"
    print(f"== Part 1: {name}: {model.summary()}")
    print(f"   prompt {len(PROMPT)} tokens; {args.repeats} repeat(s); chunks of {args.chunk}")
    lengths = [n for n in LENGTHS if n <= args.max_tokens]
    hull = [decode(model, "hull", lengths[-1], args.chunk) for _ in range(args.repeats)]
    brute_n = max([n for n in lengths if n <= args.brute_max] or [lengths[0]])
    brute = [decode(model, "brute", brute_n, args.chunk) for _ in range(args.repeats)]
    same = all(b.tokens == h.tokens[:brute_n] for b in brute for h in hull)
    print(f"   hull and brute tokens identical over the first {brute_n:,}: {same}")
    if not same:
        sys.exit("MISMATCH between hull and brute decoding")
    a, b = fit_linear_cost(brute)
    print(f"   brute per-token cost fit: {a * 1e9:.0f} ns + {b * 1e9:.3f} ns * t")
    print()
    print(f"   {'tokens':>10} {'hull tok/s':>12} {'brute tok/s':>13} {'hull/brute':>11}"
          f" {'hull ns/tok at t':>17} {'brute ns/tok at t':>18}")
    for n in lengths:
        th = med(r.elapsed_at[n] for r in hull)
        if n <= brute_n:
            tb, mark = med(r.elapsed_at[n] for r in brute), " "
            bcost = f"{med(cost_near(r, n) for r in brute) * 1e9:>17.0f} "
        else:
            tb, mark = a * n + b * n * n / 2, "*"
            bcost = f"{(a + b * n) * 1e9:>17.0f}*"
        hcost = med(cost_near(r, n) for r in hull) * 1e9
        print(f"   {n:>10,} {n / th:>12,.0f} {n / tb:>12,.0f}{mark} {tb / th:>10,.1f}{mark}"
              f" {hcost:>17.0f} {bcost}")
    print("   (* = brute force extrapolated from the fitted per-token cost)")
    h10k = med(cost_near(r, 10_000) for r in hull)
    hmax = med(cost_near(r, lengths[-1]) for r in hull)
    print(f"   hull per-token cost {lengths[-1]:,} vs 10,000: {hmax / h10k:.2f}x")
    hb = med(r.cache_bytes for r in hull) / med(r.position for r in hull)
    bb = med(r.cache_bytes for r in brute) / med(r.position for r in brute)
    print(f"   cache bytes per cached token (all heads): hull {hb:.1f}, brute {bb:.1f}")
    print()


def part2(args) -> None:
    model = wide_memory_machine()
    print(f"== Part 2: wide memory machine: {model.summary()}")
    rows = []
    for n in (10_000, args.wide_tokens):
        runs = [decode(model, "hull", n, args.chunk) for _ in range(args.repeats)]
        rows.append((n, med(n / r.total for r in runs),
                     med(r.cache_bytes / r.position for r in runs)))
    brute = [decode(model, "brute", 10_000, args.chunk) for _ in range(args.repeats)]
    bt = med(10_000 / r.total for r in brute)
    if any(r.tokens != brute[0].tokens for r in brute):
        sys.exit("brute decoding is not deterministic")
    for n, tps, bpt in rows:
        print(f"   hull, in-numba loop, {n:>7,} tokens: {tps:>9,.0f} tok/s "
              f"({1e6 / tps:.1f} us/token), {bpt:,.0f} cache bytes per token")
    print(f"   brute, in-numba loop,  10,000 tokens: {bt:>9,.0f} tok/s -> hull/brute "
          f"{rows[0][1] / bt:.1f}x at 10K")
    dec = HullDecoder(model, "hull")
    nxt = 0
    for tok in PROMPT:
        nxt = dec.feed(tok)
    n = 10_000
    t0 = time.perf_counter()
    for _ in range(n):
        nxt = dec.feed(nxt)
    dt = time.perf_counter() - t0
    print(f"   hull, Python feed() loop, {n:,} tokens: {n / dt:>9,.0f} tok/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100K hull / 10K brute, 1 repeat")
    p.add_argument("--max-tokens", type=int, default=1_000_000)
    p.add_argument("--brute-max", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk", type=int, default=1000)
    p.add_argument("--wide-tokens", type=int, default=100_000)
    p.add_argument("--handbuilt", action="store_true", help="hand-built memory walk model")
    p.add_argument("--part", type=int, choices=(1, 2), help="run only this part")
    args = p.parse_args()
    if args.quick:
        args.max_tokens, args.brute_max, args.repeats, args.wide_tokens = 100_000, 10_000, 1, 30_000
    if args.part in (None, 1):
        part1(args)
    if args.part in (None, 2):
        part2(args)


if __name__ == "__main__":
    main()
