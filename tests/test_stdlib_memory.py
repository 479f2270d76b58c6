"""stdlib/memory.rasp2d, slots.rasp2d and counters.rasp2d: thin wrappers over lookup and
prefix_sum, checked on token streams against a plain-Python model of the trace's streams, at
every position, in the reference evaluator and the compiled model.

Each token t (0..255) stands for one trace position; the keys, values and queries are
functions of t alone (so they cost nothing in the compiled model) chosen to give frequent
collisions, rewrites and misses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stdlib_harness import compile_program

LEN = 48
streams = st.lists(st.lists(st.integers(0, 255), min_size=LEN, max_size=LEN), min_size=4, max_size=8)

# ---------------------------------------------------------------------- memory
MEM_LETS = (
    "int(tokens)",
    "memory.write_key(r0 < 128, r0 % 16)",   # writers: t < 128, at address t mod 16
    "(r0 * 37) % 256",                       # the byte written
    "(r0 // 8) % 16",                        # the address read
    "memory.byte_at(r1, r2, r3)",
    "memory.load32(r1, r2, r3)",
    "memory.load8_s(r1, r2, r3)",
    "memory.load16_s(r1, r2, r3)",
    "memory.load16_u(r1, r2, r3)",
)
MEM_OUTS = ("r4",) + tuple(f"r5[{k}]" for k in range(4)) + tuple(f"r6[{k}]" for k in range(4)) \
    + tuple(f"r7[{k}]" for k in range(4)) + tuple(f"r8[{k}]" for k in range(4))


def memory_model(seq):
    mem: dict[int, int] = {}
    out = []
    for t in seq:
        if t < 128:
            mem[t % 16] = (t * 37) % 256
        a = (t // 8) % 16
        b = [mem.get(a + k, 0) for k in range(4)]
        fill8 = 255 if b[0] >= 128 else 0
        fill16 = 255 if b[1] >= 128 else 0
        out.append((b[0], *b, b[0], fill8, fill8, fill8, b[0], b[1], fill16, fill16, b[0], b[1], 0, 0))
    return out


def test_memory_reads():
    op = compile_program("import memory", 1, MEM_LETS, MEM_OUTS, 64)
    check_streams(op, [[(i * 29 + s * 7) % 256 for i in range(LEN)] for s in range(6)], memory_model)


@settings(max_examples=3, deadline=None)
@given(seqs=streams)
def test_memory_random(seqs):
    op = compile_program("import memory", 1, MEM_LETS, MEM_OUTS, 64)
    check_streams(op, seqs, memory_model)


# Addresses up to 2^26 (the WASM machine's 1024 pages): the uncentred look-up score bound
# (2|k||q| + k^2, about 1.2e16) is past 2^53, so the compiler centres keys and queries on the
# keys' midpoint; neighbouring addresses (addr + 1 ..) must still miss exactly.
WIDE = 4194304  # 2^22: addresses 0, 2^22, ..., 15 * 2^22
WIDE_LETS = (
    "int(tokens)",
    f"memory.write_key(r0 < 128, (r0 % 16) * {WIDE} + r0 % 3)",
    "(r0 * 37) % 256",
    f"((r0 // 8) % 16) * {WIDE} + r0 % 4",
    "memory.load32(r1, r2, r3)",
)


def wide_model(seq):
    mem: dict[int, int] = {}
    out = []
    for t in seq:
        if t < 128:
            mem[(t % 16) * WIDE + t % 3] = (t * 37) % 256
        a = ((t // 8) % 16) * WIDE + t % 4
        out.append(tuple(mem.get(a + k, 0) for k in range(4)))
    return out


@settings(max_examples=3, deadline=None)
@given(seqs=streams)
def test_memory_reads_at_wide_addresses(seqs):
    op = compile_program("import memory", 1, WIDE_LETS, tuple(f"r4[{k}]" for k in range(4)), 64)
    check_streams(op, [[(i * 29 + s * 7) % 256 for i in range(LEN)] for s in range(3)] + seqs,
                  wide_model)


# ---------------------------------------------------------------------- slots
SLOT_LETS = (
    "int(tokens)",
    "slots.write_key(r0 % 3 == 0, r0 % 5)",          # stream P0 writers and their slots
    "slots.write_key(r0 % 3 == 1, (r0 // 3) % 5)",   # stream P1
    "(r0 * 997) % 65536",                            # the pair written
    "(r0 // 7) % 5",                                 # the slot read
    "slots.read_i32(r1, r3, r2, r3, r4)",
    "slots.pair_value(r0 % 256, (r0 * 3) % 256)",
)
SLOT_OUTS = tuple(f"r5[{k}]" for k in range(4)) + ("r6",)


def slots_model(seq):
    p0: dict[int, int] = {}
    p1: dict[int, int] = {}
    out = []
    for t in seq:
        v = (t * 997) % 65536
        if t % 3 == 0:
            p0[t % 5] = v
        if t % 3 == 1:
            p1[(t // 3) % 5] = v
        s = (t // 7) % 5
        pair = t % 256 + 256 * ((t * 3) % 256)
        if s in p0 and s in p1:  # a slot is always written before it is read
            out.append((p0[s] % 256, p0[s] // 256, p1[s] % 256, p1[s] // 256, pair))
        else:
            out.append(None)
    return out


def test_slots_reads():
    op = compile_program("import slots", 1, SLOT_LETS, SLOT_OUTS, 64)
    check_streams(op, [[(i * 31 + s * 11) % 256 for i in range(LEN)] for s in range(6)], slots_model)


SLOTS_FIRST = [0, 3, 6, 9, 12, 1, 4, 7, 10, 13]  # every slot written in both streams


@settings(max_examples=3, deadline=None)
@given(seqs=streams)
def test_slots_random(seqs):
    op = compile_program("import slots", 1, SLOT_LETS, SLOT_OUTS, 64)
    check_streams(op, [SLOTS_FIRST + s[len(SLOTS_FIRST):] for s in seqs], slots_model)


# ---------------------------------------------------------------------- counters
COUNT_LETS = (
    "int(tokens)",
    "r0 % 3 == 0",   # cond
    "r0 % 7 == 0",   # marker
    "r0 % 5",        # x
    "(counters.count(r1), counters.total(r3), counters.latest_position(r2), counters.since(r2), "
    "counters.count_since(r1, r2), counters.total_since(r3, r2))",
)
COUNT_OUTS = tuple(f"r4[{k}]" for k in range(6))


def counters_model(seq):
    out, count, total, latest, c_since, t_since = [], 0, 0, -1, 0, 0
    for i, t in enumerate(seq):
        cond, marker, x = t % 3 == 0, t % 7 == 0, t % 5
        count += cond
        total += x
        if marker:
            latest, c_since, t_since = i, 0, 0
        c_since += cond
        t_since += x
        out.append((count, total, latest, i - latest, c_since if latest >= 0 else count,
                    t_since if latest >= 0 else total))
    return out


def test_counters():
    op = compile_program("import counters", 1, COUNT_LETS, COUNT_OUTS, 64)
    check_streams(op, [[(i * 13 + s * 5) % 256 for i in range(LEN)] for s in range(6)], counters_model)


@settings(max_examples=3, deadline=None)
@given(seqs=streams)
def test_counters_random(seqs):
    op = compile_program("import counters", 1, COUNT_LETS, COUNT_OUTS, 64)
    check_streams(op, seqs, counters_model)


def check_streams(op, seqs, model):
    ref, got = op.stream(seqs)
    for seq, r, g in zip(seqs, ref, got):
        want = model(seq)
        checked = 0
        for i, w in enumerate(want):
            if w is None:
                continue
            assert r[i] == w, f"reference at position {i} of {seq}: {r[i]}, expected {w}"
            assert g[i] == w, f"compiled at position {i} of {seq}: {g[i]}, expected {w}"
            checked += 1
        assert checked > 0
