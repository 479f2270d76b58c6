"""The unembedding's static hull (``sparse_program.UnembedHull``, ``unembed_argmax``) picks
exactly the dense argmax, ties to the lowest token id, for rank-2 integer blocks with
duplicate and collinear points; other blocks are refused, and inexact inputs fall back."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp2d.backends.hull_kernels import unembed_argmax
from rasp2d.backends.sparse_program import unembed_hull


def dense_argmax(block: np.ndarray, xs: np.ndarray) -> int:
    logits = xs @ block
    return int(np.flatnonzero(logits == logits.max())[0])


def args(h):
    return (h.usable, h.m, h.uabs, h.pabs, h.chain_ptr, h.chain_x, h.chain_y, h.chain_id,
            h.extreme_id)


@st.composite
def rank2_blocks(draw):
    """``M @ P`` with small integer ``M`` and points ``P`` drawn from a few shapes: random
    (with repeats), on a line (all collinear), on a parabola (the compiled ``token(e)``)."""
    V = draw(st.integers(1, 24))
    shape = draw(st.sampled_from(["random", "line", "parabola"]))
    coord = st.integers(-6, 6)
    if shape == "random":
        P = np.array([[draw(coord) for _ in range(V)] for _ in range(2)])
    elif shape == "line":
        t = np.array([draw(coord) for _ in range(V)])
        P = np.array([draw(coord) * t + draw(coord), draw(coord) * t + draw(coord)])
    else:
        t = np.array(draw(st.permutations(range(V))))
        P = np.array([-t * t, 2 * t])
    C = draw(st.integers(1, 4))
    M = np.array([[draw(st.integers(-2, 2)) for _ in range(2)] for _ in range(C)])
    return (M @ P).astype(np.float64)


@settings(max_examples=300, deadline=None)
@given(rank2_blocks(), st.data())
def test_static_hull_argmax_equals_the_dense_argmax(block, data):
    h = unembed_hull(block)
    if not h.usable:  # (two rows of the block that need a fractional M: refused)
        return
    C = block.shape[0]
    xs = np.array([data.draw(st.integers(-40, 40)) for _ in range(C)], dtype=np.float64)
    ucols = np.arange(C, dtype=np.int64)
    assert unembed_argmax(xs, ucols, args(h)) == dense_argmax(block, xs)


def test_most_rank2_blocks_are_usable():
    seen = {"usable": 0, "all": 0}

    @settings(max_examples=100, deadline=None, database=None)
    @given(rank2_blocks())
    def collect(block):
        seen["all"] += 1
        seen["usable"] += unembed_hull(block).usable

    collect()
    assert seen["usable"] >= 0.8 * seen["all"], seen
    t = np.arange(1664.0)  # the compiled token(e): logit_t = 2 t e - t^2
    assert unembed_hull(np.array([-t * t, -2 * t, 2 * t, 2 * t, -2 * t])).usable


def test_rank_three_and_fractional_blocks_are_refused():
    t = np.arange(6.0)
    assert not unembed_hull(np.array([t, t * t, t ** 3])).usable
    assert not unembed_hull(np.array([t / 2, t])).usable


def test_inexact_inputs_fall_back():
    """A fractional or huge input makes the step compute every logit (-1 here)."""
    t = np.arange(8.0)
    block = np.array([-t * t, 2 * t])
    h = unembed_hull(block)
    ucols = np.arange(2, dtype=np.int64)
    assert unembed_argmax(np.array([1.0, 3.0]), ucols, args(h)) == 3
    assert unembed_argmax(np.array([1.0, 2.5]), ucols, args(h)) == -1
    assert unembed_argmax(np.array([1.0, 2.0**60]), ucols, args(h)) == -1
    assert unembed_argmax(np.array([1.0, np.nan]), ucols, args(h)) == -1
