"""Program specialisation (interpreter_spec/specialize.py): the machine with one program baked
into its weights generates the general machine's trace, token for token, from a prompt without
the program.

The source rewriting is checked without compiling; one small program is compiled by default
(about a minute: the machine's whole lowering), the examples under `slow`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rasp2d.backends.model_file import CompiledModel
from rasp2d.interpreter_spec.frontend import default_entry, load_program
from rasp2d.interpreter_spec.layout import build_layout
from rasp2d.interpreter_spec.machine import SPEC, check_supported, model_path
from rasp2d.interpreter_spec.model_trace import generate_trace, sparse_machine
from rasp2d.interpreter_spec.specialize import (SpecialisationError, fetched_values,
                                                find_fetch_block, run_specialised,
                                                specialised_model_path, specialised_source)
from rasp2d.interpreter_spec.trace import run_traced

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"

PROGRAM = """(module (import "env" "putchar" (func $p (param i32) (result i32)))
 (global $g (mut i32) (i32.const 3))
 (func $add (param i32 i32) (result i32) (local i32) local.get 0 local.get 1 i32.add local.tee 2)
 (func (export "main") (result i32) (local i32)
   i32.const 65 local.set 0
   (block (loop
     local.get 0 call $p drop
     local.get 0 global.get $g call $add local.tee 0
     i32.const 80 i32.lt_s br_if 0))
   i32.const 10 call $p drop
   global.get $g i32.const 4 i32.xor global.set $g
   global.get $g))"""


def layout_of(source: str, kind: str = "wat"):
    layout = build_layout(load_program(source, kind))
    check_supported(layout)
    return layout


# ------------------------------------------------------------------ source rewriting
def test_fetch_block_of_the_machine_defines_op_and_the_fields():
    block = find_fetch_block(SPEC.read_text().splitlines())
    assert block.defined[0] == "op" and set(block.defined) >= {f"f{i}" for i in range(9)}


def test_specialised_source_replaces_every_fetch_lookup_by_a_table():
    layout = layout_of(PROGRAM)
    src = specialised_source(layout)
    lines = src.splitlines()
    block = find_fetch_block(lines)
    fetched = [line for line in lines[block.begin:block.end] if re.match(r"let (op|f\d+) ", line)]
    assert len(fetched) == len(block.defined) and all("table(fetch_pc, {" in line for line in fetched)
    original = find_fetch_block(SPEC.read_text().splitlines()).defined
    assert "op" in block.defined and set(block.defined) <= set(original)  # unread fields dropped
    assert "11 * pc" not in src and "lookup(indices, at" not in src
    values = fetched_values(layout)
    assert values["op"][0] == "OP_local.get"  # pc 0: the putchar stub
    assert [values[f"f{i}"][5] for i in range(10)] == list(layout.fields[5].bytes())


def test_block_found_by_markers_or_header_and_refused_otherwise():
    body = ["let at = 2 + 11 * pc", "let op = lookup(indices, at, prev_tok)",
            "let f0 = lookup(indices, at, byte)"]
    layout = layout_of(PROGRAM)
    marked = ["# header", "# ---- fetch begin", *body, "# ---- fetch end", "let S = f0"]
    assert find_fetch_block(marked).defined == ("op", "f0")
    by_header = ["# ------------ fetch (PROG)", *body, "# ------------ next", "let S = f0"]
    assert find_fetch_block(by_header).defined == ("op", "f0")
    with pytest.raises(SpecialisationError, match="fetch"):
        find_fetch_block(["let op = 1"])
    with pytest.raises(SpecialisationError, match="reads `at`"):
        specialised_source(layout, "\n".join(marked + ["let z = lookup(indices, at + 3, byte)"]))


# ------------------------------------------------------------------ compiled
def check_specialised(layout, entry: str, input_bytes: bytes = b"") -> tuple[int, int]:
    """The specialised machine's trace equals the reference's and the general machine's;
    returns the prompt lengths (general, specialised)."""
    run = run_traced(layout, entry, (), input_bytes)
    special = sparse_machine(specialised_model_path(layout))
    fn = layout.program.functions[layout.program.export_func(entry)]
    from rasp2d.interpreter_spec.prompt import build_prompt
    prompt = build_prompt(layout, fn.index, (), input_bytes, with_program=False)
    got = generate_trace(special, prompt, len(run.trace) + 4)
    assert got.trace == run.trace
    general = generate_trace(sparse_machine(model_path()), run.prompt, len(run.trace) + 4)
    assert general.trace == run.trace
    return len(run.prompt), len(prompt)


def test_specialised_machine_generates_the_general_trace_with_a_shorter_prompt():
    layout = layout_of(PROGRAM)
    general, special = check_specialised(layout, "main")
    assert general - special == 11 * len(layout.program.code)
    g = CompiledModel.load(model_path())
    s = CompiledModel.load(specialised_model_path(layout))
    assert s.W_q.shape[0] <= g.W_q.shape[0]  # layers


def test_run_specialised_hull_gives_output_and_result():
    layout = layout_of(PROGRAM)
    r = run_specialised(layout, "main")
    ref = run_traced(layout, "main")
    assert r.tokens[r.prompt_len:] == ref.trace
    assert (r.output, r.results) == (ref.output, ref.results) == (b"ADGJM\n", (7,))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fizzbuzz", "crc32", "addition"])
def test_specialised_examples(name):
    module = load_program(EXAMPLES / f"{name}.c")
    layout = build_layout(module)
    check_supported(layout)
    check_specialised(layout, default_entry(module))


def test_exec_specialise_needs_a_transformer_backend(capsys):
    from rasp2d.cli.main import main
    assert main(["exec", str(EXAMPLES / "fizzbuzz.c"), "--specialise"]) == 2
    assert "--backend hull" in capsys.readouterr().err


@pytest.mark.slow
def test_exec_specialise_runs_fizzbuzz(capfdbinary):
    from rasp2d.cli.main import main
    assert main(["exec", str(EXAMPLES / "fizzbuzz.c"), "--backend", "hull", "--specialise"]) == 3
    assert capfdbinary.readouterr().out == b"..F.BF..FB.F..Z" * 3 + b"\n"


@pytest.mark.slow
def test_specialised_machine_runs_i64_division():
    """The division's body positions read the opcode too; baked into FFN tables, it still works."""
    layout = layout_of("""(module (func (export "main") (result i64) (local i64)
      (local.set 0 (i64.div_s (i64.const -1234567890123456789) (i64.const 97)))
      (i64.add (local.get 0) (i64.rem_u (i64.const -5) (i64.const 10)))))""")
    general, special = check_specialised(layout, "main")
    assert general - special == 11 * len(layout.program.code)
