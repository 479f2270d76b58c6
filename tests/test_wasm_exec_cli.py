"""`rasp2d exec`: binary-safe output, exit status from main, traps and load errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rasp2d.cli.exec_cmd import BACKENDS, ExecRequest, ExecResult

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"
INKALA_SOLUTION = (
    b"812753649\n943682175\n675491283\n154237896\n369845721\n"
    b"287169534\n521974368\n438526917\n796318452\n"
)


def rasp2d(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rasp2d.cli.main", "exec", *args],
                          input=stdin, capture_output=True, timeout=300)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_sudoku_prints_the_solved_grid():
    proc = rasp2d(str(EXAMPLES / "sudoku.c"), "--backend", "reference")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == INKALA_SOLUTION
    summary = proc.stderr.decode()
    assert "backend=reference" in summary and "instructions=" in summary and "instr/s" in summary


def test_output_is_binary_safe_and_input_comes_from_a_file(tmp_path):
    echo = write(tmp_path, "echo.c", """
        int putchar(int); int getchar(void);
        int main(void) { int c, n = 0; while ((c = getchar()) >= 0) { putchar(c); n++; } return n; }
    """)
    data = bytes(range(256))
    proc = rasp2d(echo, "--input-file", "-", stdin=data)
    assert proc.stdout == data
    assert proc.returncode == 0  # 256 bytes read: main returned 256, and 256 & 0xFF == 0
    proc = rasp2d(echo, "--input", "hey")
    assert proc.stdout == b"hey" and proc.returncode == 3


@pytest.mark.parametrize("value, status", [(0x1FF, 255), (-1, 255), (7, 7)])
def test_exit_status_is_mains_result_low_byte(tmp_path, value, status):
    wat = write(tmp_path, "ret.wat", f'(module (func (export "main") (result i32) (i32.const {value})))')
    assert rasp2d(wat).returncode == status


def test_a_trap_exits_134_and_names_it(tmp_path):
    wat = write(tmp_path, "trap.wat", """(module
        (import "env" "putchar" (func $p (param i32) (result i32)))
        (func (export "main") (result i32)
          (drop (call $p (i32.const 33)))
          (i32.rem_u (i32.const 1) (i32.const 0))))""")
    proc = rasp2d(wat)
    assert proc.returncode == 134
    assert proc.stdout == b"!"  # output written before the trap still comes out
    assert "trap: integer divide by zero" in proc.stderr.decode()


def test_load_errors_exit_2_with_a_reason(tmp_path):
    bad_c = write(tmp_path, "bad.c", "int main(void) { return undefined_thing; }")
    proc = rasp2d(bad_c)
    assert proc.returncode == 2 and "undefined_thing" in proc.stderr.decode()
    float_wat = write(tmp_path, "f.wat", '(module (func (export "main") (result f32) (f32.const 1)))')
    proc = rasp2d(float_wat)
    assert proc.returncode == 2 and "f32" in proc.stderr.decode()
    proc = rasp2d(str(tmp_path / "missing.wasm"))
    assert proc.returncode == 2 and "no such program file" in proc.stderr.decode()
    proc = rasp2d(str(EXAMPLES / "crc32.c"), "--entry", "nope")
    assert proc.returncode == 2 and "nope" in proc.stderr.decode()


def test_step_limit_exits_124(tmp_path):
    wat = write(tmp_path, "spin.wat", '(module (func (export "main") (result i32) (loop (br 0)) (i32.const 0)))')
    proc = rasp2d(wat, "--max-steps", "1000")
    assert proc.returncode == 124 and "1000" in proc.stderr.decode()


def test_help_documents_the_trap_exit_status():
    proc = subprocess.run([sys.executable, "-m", "rasp2d.cli.main", "exec", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "134" in proc.stdout and "--backend" in proc.stdout


def test_backend_registry_runs_a_request():
    from rasp2d.interpreter_spec.frontend import default_entry, load_program
    from rasp2d.interpreter_spec.program import flatten

    module = load_program(EXAMPLES / "crc32.c")
    request = ExecRequest(flatten(module), default_entry(module), b"abc", None)
    result = BACKENDS["reference"](request)
    assert isinstance(result, ExecResult)
    assert result.output == b"352441c2\n" and result.results == (0,) and result.steps > 0
