"""Malformed programs give one clear `file:line:col: error: ...` line, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rasp2d.compiler.api import compile_source
from rasp2d.lang.errors import Rasp2dError

V = 'vocab { 0 1 2 a "|" }\n'

CASES = [
    # (source, line, column, words the message must contain)
    (V + "let x = (1 + \n", 2, 0, ["syntax error", "end of file"]),
    (V + "let x = 1 $ 2\nemit x", 2, 11, ["syntax error", "'$'"]),
    (V + "emit let", 2, 6, ["syntax error", "'let'"]),
    (V + "let y = foo + 1\nemit token(y)", 2, 9, ["unknown name `foo`"]),
    (V + "let y = x\nlet x = 1\nemit token(y)", 2, 9, ["unknown name `x`"]),  # no cycles through lets
    (V + "emit bar(1)", 2, 6, ["unknown function `bar`"]),
    (V + "let y: int[0..3] = indices\nemit token(0)", 2, 8, ["range mismatch", "0..1023"]),
    (V + "let y: bool = indices\nemit token(0)", 2, 8, ["declared bool"]),
    (V + "emit token(indices)", 2, 12, ["'3' is not a token"]),
    (V + "emit tokens + 1", 2, 6, ["token, not a number", "int("]),
    (V + 'emit if tokens == "zz" then "a" else "0"', 2, 19, ["'zz' is not in the vocabulary"]),
    (V + "emit token(indices // indices)", 2, 23, ["constant divisor"]),
    (V + "emit token(indices % 0)", 2, 22, ["division by zero"]),
    (V + "let a = lookup(indices, indices, tokens, tie=average)\nemit token(0)", 2, 9, ["tie=average", "int("]),
    (V + "let a = lookup(indices, indices, indices, tie=average)\nemit token(a)", 3, 12, ["mean", "compare"]),
    (V + "let a = lookup(indices, indices)\nemit token(0)", 2, 9, ["missing its argument `value`"]),
    (V + "let a = prev(indices, indices)\nemit token(0)", 2, 23, ["constant"]),
    (V + "def f(x) = f(x)\nemit token(f(1))", 2, 12, ["recursion"]),
    (V + "def f(x) = x\nemit token(f(1, 2))", 3, 12, ["takes 1 argument"]),
    (V + "let m = prefix_mean(indices)\nemit token(m)", 3, 12, ["prefix_mean"]),
    (V + "let p = indices * indices * indices * indices * indices * indices\nemit token(clamp(p, 0, 2))",
     2, 0, ["2^53"]),
    (V + "import nosuchmodule\nemit token(0)", 2, 1, ["cannot find module"]),
    ("let x = 1\nemit x", 1, 1, ["no vocabulary"]),
    (V + "let x = 1", 1, 1, ["no `emit`"]),
    (V + "stop zz\nemit token(0)", 2, 1, ["'zz' is not in the vocabulary"]),
    (V + 'emit if tokens < "a" then "a" else "0"', 2, 16, ["only be compared with == or !="]),
]


@pytest.mark.parametrize("src,line,col,words", CASES, ids=[str(i) for i in range(len(CASES))])
def test_malformed_program_names_location(src, line, col, words):
    with pytest.raises(Rasp2dError) as info:
        compile_source(src, "bad.rasp2d")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"bad.rasp2d:{line}:") if col == 0 else msg.startswith(f"bad.rasp2d:{line}:{col}: error: "), msg
    for w in words:
        assert w in msg, msg


def test_import_cycle(tmp_path):
    (tmp_path / "a.rasp2d").write_text("import b\ndef f(x) = x\n")
    (tmp_path / "b.rasp2d").write_text("import a\ndef g(x) = x\n")
    main = tmp_path / "main.rasp2d"
    main.write_text(V + "import a\nemit token(a.f(0))\n")
    from rasp2d.compiler.api import compile_file
    with pytest.raises(Rasp2dError, match="import cycle"):
        compile_file(main)


def test_imports_resolve_and_namespace(tmp_path):
    (tmp_path / "util.rasp2d").write_text("def twice(x) = 2 * x\nlet zero = 0\n")
    main = tmp_path / "main.rasp2d"
    main.write_text(V + "import util as u\nemit token(clamp(u.twice(indices) + u.zero, 0, 2))\n")
    from rasp2d.compiler.api import compile_file
    res = compile_file(main)
    from rasp2d.backends.reference import evaluate
    out = evaluate(res.graph, [0, 0, 0])[res.graph.output]
    assert [res.model.vocab[t] for t in out] == ["0", "2", "2"]


def test_cli_prints_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.rasp2d"
    bad.write_text(V + "let y = foo + 1\nemit token(y)\n")
    proc = subprocess.run([sys.executable, "-m", "rasp2d.cli.main", "compile", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{bad}:2:9: error: unknown name `foo`")


def test_vocab_file_and_parse_int(tmp_path):
    (tmp_path / "v.txt").write_text("B00\nB0a\nBff\nM\n")
    src = tmp_path / "p.rasp2d"
    src.write_text('vocab file "v.txt"\nlet b = parse_int(tokens, "B", 16, default=-1)\n'
                   'emit if b >= 10 then "M" else "B00"\n')
    from rasp2d.compiler.api import compile_file
    from rasp2d.backends.reference import evaluate
    res = compile_file(src)
    assert res.model.vocab == ("B00", "B0a", "Bff", "M")
    out = evaluate(res.graph, [0, 1, 2, 3])[res.graph.output]
    assert [res.model.vocab[t] for t in out] == ["B00", "M", "M", "B00"]


def test_wasm_vocab_file_matches_vocab_module():
    from pathlib import Path
    from rasp2d.interpreter_spec.vocab import VOCAB
    text = (Path(__file__).resolve().parent.parent / "interpreter_spec" / "wasm_vocab.txt").read_text()
    assert tuple(text.split()) == VOCAB
