"""Front end: C through zig cc (MVP only, host imports, entry naming, caching), WAT, WASM."""

from __future__ import annotations

import subprocess

import pytest

from rasp2d.interpreter_spec import frontend
from rasp2d.interpreter_spec.decoder import decode_module
from rasp2d.interpreter_spec.frontend import (
    CompileError,
    compile_c,
    default_entry,
    load_program,
    load_wasm_bytes,
)
from rasp2d.interpreter_spec.module import ExternKind


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RASP2D_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_plain_main_is_exported_and_host_functions_are_imports(cache):
    m = load_program("int main(void) { putchar(getchar()); return 0; }", kind="c")
    assert default_entry(m) == "__main_void"  # clang's name for int main(void)
    assert sorted((i.module, i.name) for i in m.imports) == [("env", "getchar"), ("env", "putchar")]
    assert any(e.kind == ExternKind.MEMORY for e in m.exports)


def test_main_with_arguments_keeps_its_name(cache):
    m = load_program("int main(int argc, char **argv) { return argc; }", kind="c")
    assert default_entry(m) == "main"
    assert len(m.func_type(m.export("main").index).params) == 2


def test_a_library_without_main_compiles(cache):
    src = '__attribute__((export_name("twice"))) int twice(int x) { return 2 * x; }'
    m = load_program(src, kind="c")
    with pytest.raises(ValueError, match="no entry point"):
        default_entry(m)
    assert m.export("twice").kind == ExternKind.FUNC


def test_only_mvp_instructions_are_emitted(cache):
    # without -mcpu=mvp clang would use sign-extension ops for the casts and memory.copy/fill
    src = r"""
        struct big { int a[40]; };
        static struct big g;
        int main(void) {
            signed char c = (signed char)getchar();
            short s = (short)getchar();
            struct big local = g;               /* a struct copy: memcpy */
            char buf[100];
            __builtin_memset(buf, c, sizeof buf);
            __builtin_memcpy(&g, &local, sizeof g);
            return c + s + buf[7] + g.a[3];
        }"""
    wasm = compile_c(src)
    module = decode_module(wasm)  # strict: would raise on bulk-memory (0xfc) instructions
    ops = {ins.opcode for f in module.functions for ins in f.body}
    assert not ops & {0xC0, 0xC1, 0xC2, 0xC3, 0xC4}


def test_compiled_output_is_cached(cache, monkeypatch):
    src = "int main(void) { return 41; }"
    first = compile_c(src)
    assert len(list(cache.glob("*.wasm"))) == 1

    def no_compiler(*args, **kwargs):
        raise AssertionError("the compiler ran although the result was cached")

    monkeypatch.setattr(subprocess, "run", no_compiler)
    assert compile_c(src) == first
    with pytest.raises(AssertionError, match="compiler ran"):
        compile_c("int main(void) { return 42; }")


def test_editing_a_local_header_invalidates_the_cache(cache, tmp_path):
    (tmp_path / "value.h").write_text("#define VALUE 5\n")
    main = tmp_path / "prog.c"
    main.write_text('#include "value.h"\nint main(void) { return VALUE; }\n')
    first = load_wasm_bytes(main)
    (tmp_path / "value.h").write_text("#define VALUE 6\n")
    assert load_wasm_bytes(main) != first


def test_compile_errors_show_the_compiler_message(cache, tmp_path):
    path = tmp_path / "oops.c"
    path.write_text("int main(void) { return nope; }\n")
    with pytest.raises(CompileError, match=r"oops\.c:1:.*nope"):
        load_program(path)


def test_wat_and_wasm_sources():
    wat = '(module (func (export "main") (result i32) (i32.const 9)))'
    wasm = load_wasm_bytes(wat)
    assert wasm[:4] == b"\0asm"
    assert load_program(wasm).export("main").index == 0
    with pytest.raises(CompileError, match="WAT"):
        load_wasm_bytes("(module (func (i32.bogus)))")


def test_kind_must_be_clear(tmp_path):
    with pytest.raises(ValueError, match="kind='c'"):
        load_wasm_bytes("int main(void) { return 0; }\n")
    odd = tmp_path / "prog.txt"
    odd.write_text("x")
    with pytest.raises(ValueError, match="suffix"):
        load_wasm_bytes(odd)
    with pytest.raises(FileNotFoundError):
        load_wasm_bytes("missing.c")


def test_header_ships_with_the_package():
    assert frontend.HEADER.is_file() and "import_module" in frontend.HEADER.read_text()


def test_one_line_wat_longer_than_a_file_name_is_source_text():
    """A long single-line module used to be taken for a path (OSError: file name too long)."""
    src = '(module (func (export "main") (result i32) ' + "i32.const 1 drop " * 30 + "i32.const 7))"
    assert len(src) > 255
    assert load_wasm_bytes(src)[:4] == b"\0asm"
