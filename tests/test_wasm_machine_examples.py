"""The example C programs (examples/wasm/*.c) run inside the compiled WASM machine: the hull
backend generates the whole trace from the prompt and it must equal the reference
interpreter's, token for token (so output and result are equal too).  Short inputs run by
default; the examples' full default runs are `slow`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rasp2d.interpreter_spec.frontend import default_entry, load_program
from rasp2d.interpreter_spec.layout import build_layout
from rasp2d.interpreter_spec.machine import run_in_model
from rasp2d.interpreter_spec.trace import run_traced

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"


def check_example(name: str, input_bytes: bytes = b"") -> None:
    module = load_program(EXAMPLES / f"{name}.c")
    entry = default_entry(module)
    ref = run_traced(build_layout(module), entry, input_bytes=input_bytes)
    got = run_in_model(module, entry, input_bytes, max_tokens=len(ref.trace) + 8)
    assert got.output == ref.output and got.results == ref.results and got.trap == ref.trap
    assert got.tokens == ref.tokens


def test_addition_c_adds_inside_the_model():
    check_example("addition", b"999 + 1")


def test_crc32_c_checksums_inside_the_model():
    check_example("crc32", b"abc")


def test_primes_c_sieves_inside_the_model():
    check_example("primes", b"30")


SUDOKU_SOLUTION = b"534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def test_sudoku_c_fills_a_nearly_solved_grid_inside_the_model():
    """Nine blanks (column 0): br_table, i64.const and i64.store (the solver's memsets) run."""
    check_example("sudoku", bytes(c if i % 9 else ord(".") for i, c in enumerate(SUDOKU_SOLUTION)))


def test_hungarian_c_assigns_inside_the_model():
    check_example("hungarian")


def test_collatz_c_divides_64_bit_numbers_inside_the_model():
    """print_u64's v % 10 and v /= 10 are i64.rem_u / i64.div_u: 25-token division steps."""
    check_example("collatz", b"7")


@pytest.mark.slow
@pytest.mark.parametrize("name, input_bytes", [
    ("sudoku", b"530070000600195000098000060800060003400803001700020006060000280000419005000080079"),
    ("primes", b""), ("primes", b"100"),
    ("addition", b""), ("addition", b"12345678901234567890 + 98765"), ("crc32", b""),
    ("crc32", b"The quick brown fox jumps over the lazy dog"), ("collatz", b""), ("collatz", b"837799")])
def test_examples_inside_the_model(name, input_bytes):
    check_example(name, input_bytes)
