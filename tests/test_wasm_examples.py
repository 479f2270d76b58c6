"""The example C programs: compiled with zig cc, run on the reference machine, checked against
wasmtime and against plain-Python answers."""

from __future__ import annotations

import re
import zlib
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp2d.interpreter_spec.decoder import decode_module
from rasp2d.interpreter_spec.frontend import default_entry, load_wasm_bytes
from rasp2d.interpreter_spec.oracle import RunOutcome, run_reference, run_wasmtime
from rasp2d.interpreter_spec.program import Program, flatten

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"
INKALA_SOLUTION = (
    "812753649\n943682175\n675491283\n154237896\n369845721\n"
    "287169534\n521974368\n438526917\n796318452\n"
)


@lru_cache(maxsize=None)
def compiled(name: str) -> tuple[bytes, Program, str]:
    wasm = load_wasm_bytes(EXAMPLES / f"{name}.c")
    module = decode_module(wasm)
    return wasm, flatten(module), default_entry(module)


def run(name: str, input: bytes = b"") -> RunOutcome:
    _, program, entry = compiled(name)
    return run_reference(program, entry, input=input)


CASES = [("addition", b""), ("addition", b"999 + 1"), ("collatz", b""), ("collatz", b"837799"),
         ("sudoku", b""), ("hungarian", b""), ("primes", b""), ("primes", b"2"),
         ("crc32", b""), ("crc32", b"The quick brown fox jumps over the lazy dog")]


@pytest.mark.parametrize("name, input", CASES)
def test_example_matches_wasmtime(name, input):
    wasm, program, entry = compiled(name)
    ours = run_reference(program, entry, input=input)
    theirs = run_wasmtime(wasm, entry, input=input)
    assert ours.same_behaviour(theirs)
    assert ours.results == (0,)


def test_sudoku_solves_the_hardest_puzzle_in_few_instructions():
    out = run("sudoku")
    assert out.output.decode() == INKALA_SOLUTION
    assert out.steps < 3_000_000  # the transformer executes every one of these


def test_sudoku_reads_a_puzzle_and_reports_bad_ones():
    easy = ("53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
    out = run("sudoku", easy.encode())
    assert out.results == (0,)
    rows = out.output.decode().split()
    assert len(rows) == 9
    assert all(sorted(r) == list("123456789") for r in rows)
    assert all(sorted(col) == list("123456789") for col in zip(*rows))
    assert all(g == "." or g == s for g, s in zip(easy, "".join(rows)))
    assert run("sudoku", b"11" + b"." * 79).results == (1,)  # clashing givens
    assert run("sudoku", b"123").results == (2,)  # too short


def _cost_matrix() -> list[list[int]]:
    source = (EXAMPLES / "hungarian.c").read_text()
    body = re.search(r"COST\[N\]\[N\] = \{(.*?)\n\};", source, re.S).group(1)
    return [[int(x) for x in row.split(",") if x.strip()]
            for row in re.findall(r"\{([^{}]*)\}", body)]


def test_hungarian_finds_the_optimal_assignment():
    cost = _cost_matrix()
    n = len(cost)

    @lru_cache(maxsize=None)
    def best(row: int, used: int) -> int:  # exact minimum by DP over subsets of columns
        if row == n:
            return 0
        return min(cost[row][c] + best(row + 1, used | 1 << c)
                   for c in range(n) if not used >> c & 1)

    text = run("hungarian").output.decode()
    pairs = [tuple(map(int, m)) for m in re.findall(r"row (\d+) -> column (\d+) \(cost (\d+)\)", text)]
    assert [r for r, _, _ in pairs] == list(range(n))
    assert sorted(c for _, c, _ in pairs) == list(range(n))
    assert all(cost[r][c] == x for r, c, x in pairs)
    total = int(re.search(r"total (\d+)", text).group(1))
    assert total == sum(x for _, _, x in pairs) == best(0, 0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**60), st.integers(0, 10**60))
def test_addition_adds_big_numbers(a, b):
    out = run("addition", f"{a} + {b}".encode())
    assert out.output.decode() == f"{a + b}\n" and out.results == (0,)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=200))
def test_crc32_matches_zlib(data):
    out = run("crc32", data)
    assert out.output.decode() == f"{zlib.crc32(data):08x}\n"


@pytest.mark.parametrize("limit", [0, 3, 100, 1000, 7919])
def test_primes_lists_the_primes_below_the_limit(limit):
    primes = [p for p in range(2, limit) if all(p % d for d in range(2, int(p ** 0.5) + 1))]
    lines = run("primes", str(limit).encode()).output.decode().split("\n")
    assert lines[0] == " ".join(map(str, primes)) and int(lines[1]) == len(primes)


@pytest.mark.parametrize("start", [1, 27, 97, 871, 837799])
def test_collatz_trajectory(start):
    seq = [start]
    while seq[-1] != 1:
        n = seq[-1]
        seq.append(3 * n + 1 if n % 2 else n // 2)
    lines = run("collatz", str(start).encode()).output.decode().split("\n")
    assert lines[0] == " ".join(map(str, seq))
    assert lines[1] == f"steps {len(seq) - 1} peak {max(seq)}"
    assert lines[2] == "longest below 100: 97 (118 steps)"
