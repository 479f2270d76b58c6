"""HullKVCache against brute force and exact integer arithmetic: predicates, ties, limits."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasp2d.backends.brute_cache import BruteKVCache
from rasp2d.backends.hull_cache import ExactnessError, HeadStats, HullKVCache
from rasp2d.backends.hull_kernels import compare_products, orient

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BIG = 2**52


# ----------------------------------------------------------------------------- predicates
def exact_orient(o, a, b) -> int:
    v = (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    return (v > 0) - (v < 0)


coord = st.integers(-BIG, BIG)
point = st.tuples(coord, coord)


@st.composite
def nearly_collinear(draw):
    """Three points on (or one unit off) a line with huge coordinates: where floats fail."""
    ox, oy = draw(st.integers(-2**51, 2**51)), draw(st.integers(-2**51, 2**51))
    dx, dy = draw(st.integers(-2**20, 2**20)), draw(st.integers(-2**20, 2**20))
    m = draw(st.integers(-2**30, 2**30))
    n = draw(st.integers(-2**30, 2**30))
    ex, ey = draw(st.integers(-1, 1)), draw(st.integers(-1, 1))
    pts = [(ox, oy), (ox + m * dx, oy + m * dy), (ox + n * dx + ex, oy + n * dy + ey)]
    if any(abs(c) > BIG for p in pts for c in p):
        pts = [(max(-BIG, min(BIG, x)), max(-BIG, min(BIG, y))) for x, y in pts]
    return pts


@FAST
@given(st.one_of(st.tuples(point, point, point), nearly_collinear()))
def test_orient_is_exact(pts):
    o, a, b = pts
    assert orient(*map(float, o), *map(float, a), *map(float, b)) == exact_orient(o, a, b)


def test_orient_beats_naive_float_on_a_known_case():
    o, a, b = (0, 0), (2**52 - 1, 2**52 - 3), (2**52 - 3, 2**52 - 5)
    naive = (a[0] * 1.0) * b[1] - (a[1] * 1.0) * b[0]
    assert exact_orient(o, a, b) != (naive > 0) - (naive < 0)  # floats get this one wrong
    assert orient(0.0, 0.0, *map(float, a), *map(float, b)) == exact_orient(o, a, b)


@FAST
@given(st.integers(-2**53, 2**53), st.integers(-2**53, 2**53), st.integers(-2**53, 2**53),
       st.integers(-2**53, 2**53))
def test_compare_products_is_exact(a, b, c, d):
    v = a * b - c * d
    assert compare_products(float(a), float(b), float(c), float(d)) == (v > 0) - (v < 0)


# ----------------------------------------------------------------------------- streams
def exact_answer(entries, q, tie):
    """The machine semantics on Python integers: exact scores, exact tie sets."""
    scores = [q[0] * k[0] + q[1] * k[1] for k, _ in entries]
    best = max(scores)
    winners = [v for s, (_, v) in zip(scores, entries) if s == best]
    if tie == "latest":
        return tuple(float(c) for c in winners[-1])
    return tuple(float(Fraction(sum(v[c] for v in winners), len(winners))) for c in (0, 1))


values = st.tuples(st.integers(-1000, 1000), st.integers(-3, 3))


@st.composite
def streams(draw):
    """Interleaved inserts and queries over one key family, chosen to stress degeneracy."""
    family = draw(st.sampled_from(["tiny", "parabola", "line", "axis", "same", "huge", "mixed"]))
    ops = []
    n = draw(st.integers(1, 60))
    line = (draw(st.integers(-5, 5)), draw(st.integers(-5, 5)), draw(st.integers(-9, 9)))
    keys: list[tuple[int, int]] = []
    for _ in range(n):
        if family == "tiny":
            k = (draw(st.integers(-2, 2)), draw(st.integers(-2, 2)))
        elif family == "parabola":
            a = draw(st.one_of(st.integers(-6, 6), st.integers(-2**25, 2**25)))
            k = (2 * a, -a * a)
        elif family == "line":  # collinear points, every one a potential tie
            s = draw(st.integers(-6, 6))
            k = (line[0] * s + line[2], line[1] * s)
        elif family == "axis":  # select-max style keys (score, 0)
            k = (draw(st.integers(-4, 4)), 0)
        elif family == "same":
            k = (line[2], line[0])
        elif family == "huge":
            k = (draw(st.integers(-2**51, 2**51)), draw(st.integers(-2**51, 2**51)))
        else:
            k = (draw(st.integers(-3, 3)) * 2**20, draw(st.integers(-3, 3)) * 2**20)
        keys.append(k)
        ops.append(("insert", k, draw(values)))
        for _ in range(draw(st.integers(0, 2))):
            ops.append(("query", draw(queries(family, keys))))
    return ops


def queries(family, keys):
    small = st.tuples(st.integers(-3, 3), st.integers(-3, 3))
    if family == "huge":  # |q| * 2^51 * 2 must stay below 2^53
        small = st.tuples(st.integers(-1, 1), st.integers(-1, 1))
    options = [small]
    if family == "parabola":
        options.append(st.tuples(st.integers(-2**25, 2**25), st.just(1)))
        options.append(st.sampled_from([(k[0] // 2, 1) for k in keys]))  # exact hits
    if len(keys) >= 2 and family != "huge":
        # perpendicular to the segment between two stored keys: a whole edge may tie
        def perpendicular(pair):
            (ax, ay), (bx, by) = pair
            dx, dy = bx - ax, by - ay
            return (-dy, dx) if max(abs(dx), abs(dy)) < 2**23 else (0, 0)
        options.append(st.tuples(st.sampled_from(keys), st.sampled_from(keys)).map(perpendicular))
    return st.one_of(options)


def within_contract(seen, q) -> bool:
    """The documented limit: |q_x| max|k_x| + |q_y| max|k_y| < 2^53 (all scores exact)."""
    mx = max(abs(k[0]) for k, _ in seen)
    my = max(abs(k[1]) for k, _ in seen)
    return abs(q[0]) * mx + abs(q[1]) * my < 2**53


def run_stream(ops, tie):
    hull, brute, seen = HullKVCache(tie), BruteKVCache(tie), []
    for op in ops:
        if op[0] == "insert":
            _, k, v = op
            hull.insert(k, v)
            brute.insert(k, v)
            seen.append((k, v))
            q = (1, 1)
        else:
            q = op[1]
        if not within_contract(seen, q):
            with pytest.raises(ExactnessError):
                hull.query(q)
            continue
        got = hull.query(q)
        assert got == brute.query(q), (q, got)
        assert got == exact_answer(seen, q, tie), (q, got)
    return hull


@FAST
@given(streams(), st.sampled_from(["latest", "average"]))
def test_hull_equals_brute_force_and_exact_semantics(ops, tie):
    run_stream(ops, tie)


@pytest.mark.slow
@SLOW
@given(streams(), st.sampled_from(["latest", "average"]))
def test_hull_equals_brute_force_long_run(ops, tie):
    run_stream(ops, tie)


# ----------------------------------------------------------------------------- known cases
def test_perpendicular_query_returns_the_whole_edge_including_collinear_points():
    for tie, expect in (("average", (25.0, 0.0)), ("latest", (40.0, 0.0))):
        cache = HullKVCache(tie)
        for k, v in (((0, 0), 10), ((3, 0), 20), ((1, -5), 99), ((2, 0), 30), ((1, 0), 40)):
            cache.insert(k, (v, 0))
        assert cache.query((0, 1)) == expect  # (0,0), (1,0), (2,0), (3,0) all score 0
        assert cache.query((0, -1)) == (99.0, 0.0)


def test_zero_query_ties_every_key_even_interior_ones():
    cache = HullKVCache("average")
    for k in ((0, 0), (10, 0), (0, 10), (10, 10), (5, 5), (5, 5)):  # (5,5) is interior
        cache.insert(k, (6, 0))
    cache.insert((3, 3), (0, 0))
    assert cache.stats().hull_points == 4
    assert cache.query((0, 0)) == (36 / 7, 0.0)


def test_repeated_keys_cost_one_point():
    for tie in ("latest", "average"):
        cache = HullKVCache(tie)
        for t in range(1000):
            cache.insert((7, -3), (t, 1))
        assert cache.stats() == HeadStats(inserts=1000, hull_points=1)
        assert cache.query((2, 5)) == ((999.0, 1.0) if tie == "latest" else (499.5, 1.0))


def test_interior_points_are_dropped_and_parabola_keys_all_stay():
    cache = HullKVCache("latest")
    for a in range(-50, 51):
        cache.insert((2 * a, -a * a), (a, 0))
    assert cache.stats().hull_points == 101  # every point of a strictly convex curve
    for q in range(-50, 51):
        assert cache.query((q, 1)) == (q, 0.0)
    square = HullKVCache("latest")
    for x in range(10):
        for y in range(10):
            square.insert((x, y), (x, y))
    assert square.stats().hull_points == 36  # the boundary of the 10x10 grid


def test_exactness_contract_is_enforced():
    cache = HullKVCache("average")
    with pytest.raises(ExactnessError, match="not an integer"):
        cache.insert((0.5, 1), (1, 1))
    with pytest.raises(ExactnessError, match="2\\^52"):
        cache.insert((2.0**53, 0), (1, 1))
    with pytest.raises(ExactnessError, match="average"):
        cache.insert((1, 1), (0.5, 1))
    cache.insert((2**51, 2**51), (1, 1))
    with pytest.raises(ExactnessError, match="2\\^53"):
        cache.query((2, 2))
    with pytest.raises(ExactnessError, match="query coordinate"):
        cache.query((0.5, 0))
    assert cache.query((1, 1)) == (1.0, 1.0)
    latest = HullKVCache("latest")
    latest.insert((1, 2), (0.25, -1e300))  # `latest` values are only copied: any float goes
    assert latest.query((1, 0)) == (0.25, -1e300)


def test_times_must_increase():
    cache = HullKVCache("latest")
    cache.insert((0, 0), (1, 1), time=5)
    with pytest.raises(ValueError, match="not after"):
        cache.insert((0, 0), (1, 1), time=5)
