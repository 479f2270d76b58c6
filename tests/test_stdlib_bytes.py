"""stdlib/bytes.rasp2d: every helper on every byte (the input range is small enough to be
exhaustive), in the reference evaluator and the compiled model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stdlib_harness import OpSpec, to_bytes

IMP = "import bytes"
B1 = (1,)

SPECS = [
    OpSpec("bits", IMP, "bytes.bits({0})", B1, 8, lambda b: tuple((b >> k) & 1 for k in range(8)), 1),
    OpSpec("bit5", IMP, "bytes.bit({0}, 5)", B1, 1, lambda b: ((b >> 5) & 1,), 1),
    OpSpec("bit0", IMP, "bytes.bit({0}, 0)", B1, 1, lambda b: (b & 1,), 1),
    OpSpec("roundtrip", IMP, "bytes.from_bits(bytes.bits({0}))", B1, 1, lambda b: (b,), 0),
    OpSpec("popcount", IMP, "bytes.popcount({0})", B1, 1, lambda b: (b.bit_count(),), 1),
    OpSpec("sign", IMP, "bytes.sign({0})", B1, 1, lambda b: (b >> 7,), 1),
    OpSpec("to_signed", IMP, "bytes.to_signed({0})", B1, 1, lambda b: (b - 256 * (b >> 7),), 1),
    OpSpec("signed_roundtrip", IMP, "bytes.from_signed(bytes.to_signed({0}))", B1, 1, lambda b: (b,), 2),
    OpSpec("fill", IMP, "bytes.fill(bytes.sign({0}))", B1, 1, lambda b: (255 * (b >> 7),), 1),
]
BY_NAME = {s.name: s for s in SPECS}

HALF = [
    OpSpec("split_half", IMP, "bytes.split_half(bytes.half({0}, {1}))", (1, 1), 2, lambda lo, hi: (lo, hi), 1),
    OpSpec("word_from_halves", IMP, "bytes.word_from_halves(bytes.half({0}, {1}), bytes.half({2}, {3}))",
           (1, 1, 1, 1), 4, lambda a, b, c, d: (a, b, c, d), 1),
    OpSpec("halves", IMP, "bytes.halves(({0}, {1}, {2}, {3}))", (1, 1, 1, 1), 2,
           lambda a, b, c, d: (a + 256 * b, c + 256 * d), 0),
    OpSpec("value32", IMP, "bytes.value32(({0}, {1}, {2}, {3}))", (1, 1, 1, 1), 1,
           lambda a, b, c, d: (a + 256 * b + 65536 * c + 16777216 * d,), 0),
]
HALF_BY_NAME = {s.name: s for s in HALF}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_byte(name):
    BY_NAME[name].check([(b,) for b in range(256)])


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_depth(name):
    assert BY_NAME[name].compile().cost.depth == BY_NAME[name].depth


def test_from_signed_every_value():
    spec = OpSpec("from_signed", IMP, "bytes.from_signed({0} - 128)", B1, 1, lambda b: ((b - 128) % 256,), 1)
    spec.check([(b,) for b in range(256)])


byte = st.integers(0, 255)


@pytest.mark.parametrize("name", sorted(HALF_BY_NAME))
@settings(max_examples=3, deadline=None)
@given(xs=st.lists(st.tuples(byte, byte, byte, byte), min_size=50, max_size=100))
def test_halves(name, xs):
    spec = HALF_BY_NAME[name]
    edges = [(0, 0, 0, 0), (255, 255, 255, 255), (0, 255, 255, 0), (255, 0, 0, 255)]
    spec.check([x[:len(spec.widths)] for x in edges + xs])


@pytest.mark.parametrize("name", sorted(HALF_BY_NAME))
def test_halves_depth(name):
    assert HALF_BY_NAME[name].compile().cost.depth == HALF_BY_NAME[name].depth


def test_bools_as_words():
    spec = OpSpec("bool_word", IMP, "bytes.bool_word64({0} >= 100)", B1, 8,
                  lambda b: to_bytes(int(b >= 100), 8), 1)
    spec.check([(b,) for b in range(256)])
