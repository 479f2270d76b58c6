"""Front end: a C, WAT or WASM program -> decoded `Module`.

C goes through the `ziglang` package's clang (`zig cc`) for wasm32-freestanding with the MVP
feature set only (`-mcpu=mvp`: without it clang emits sign-extension, bulk-memory and other
post-MVP instructions). Compiled binaries are cached by content hash so tests and repeated runs
do not pay for the compiler again. WAT goes through `wasmtime.wat2wasm`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .decoder import decode_module
from .module import ExternKind, Module

HEADER = Path(__file__).with_name("rasp2d_wasm.h")
"""Force-included header declaring putchar/getchar as `env` imports (see the file)."""

DEFAULT_STACK_SIZE = 64 * 1024
"""Shadow-stack bytes for C programs; small so a program's memory is one or two pages."""

ENTRY_NAMES = ("main", "__main_void", "__main_argc_argv", "_start")
"""Exports tried, in order, when no entry point is named. clang renames `int main(void)` to
`__main_void`; `int main(int, char **)` keeps its name on wasm32-freestanding."""

KINDS = ("c", "wat", "wasm")


class CompileError(Exception):
    """The C compiler or the WAT assembler rejected the program; the message holds its output."""


def cache_dir() -> Path:
    """Where compiled C lands: $RASP2D_CACHE_DIR, else a folder in the system temp dir."""
    env = os.environ.get("RASP2D_CACHE_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "rasp2d-wasm-cache"


def _zig_version() -> str:
    try:
        return importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        raise CompileError("compiling C needs the `ziglang` package (pip install ziglang)") from None


def _c_flags(opt: str, stack_size: int) -> list[str]:
    return [
        "--target=wasm32-freestanding", "-mcpu=mvp", opt,
        "-Wl,--no-entry", f"-Wl,-z,stack-size={stack_size}",
        "-include", str(HEADER),
    ]


_LOCAL_INCLUDE = re.compile(rb'^\s*#\s*include\s*"([^"]+)"', re.M)


def _source_fingerprint(source: bytes, directory: Path | None, seen: set[Path]) -> bytes:
    """The source plus (recursively) every `#include "..."` file found beside it, so editing a
    local header invalidates the cache too."""
    h = hashlib.sha256(source)
    if directory is not None:
        for name in _LOCAL_INCLUDE.findall(source):
            path = (directory / name.decode(errors="replace")).resolve()
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            h.update(name)
            h.update(_source_fingerprint(path.read_bytes(), path.parent, seen))
    return h.digest()


def compile_c(source: str | bytes, *, directory: Path | None = None, opt: str = "-O2",
              stack_size: int = DEFAULT_STACK_SIZE, use_cache: bool = True,
              filename: str = "program.c") -> bytes:
    """Compile one C translation unit to a wasm binary (cached by content).

    `directory` is where `#include "..."` files are looked up (the source file's folder);
    `filename` is the name compiler messages show.
    The entry point is exported under the name clang gives it (`__main_void` or `main`).
    """
    src = source.encode() if isinstance(source, str) else bytes(source)
    flags = _c_flags(opt, stack_size)
    key = hashlib.sha256()
    for part in (_zig_version().encode(), HEADER.read_bytes(), "\0".join(flags).encode(),
                 _source_fingerprint(src, directory, set())):
        key.update(hashlib.sha256(part).digest())
    cached = cache_dir() / f"{key.hexdigest()[:32]}.wasm"
    if use_cache and cached.is_file():
        return cached.read_bytes()

    with tempfile.TemporaryDirectory(prefix="rasp2d-cc-") as tmp:
        src_path = Path(tmp) / Path(filename).name
        src_path.write_bytes(src)
        out_path = Path(tmp) / "program.wasm"
        include = ["-I", str(directory)] if directory is not None else []
        errors = ""
        for export in ("__main_void", "main", None):
            cmd = [sys.executable, "-m", "ziglang", "cc", *flags, *include]
            if export is not None:
                cmd.append(f"-Wl,--export={export}")
            cmd += [str(src_path), "-o", str(out_path)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
            if proc.returncode == 0:
                break
            errors = proc.stderr
            if "symbol exported via --export not found" not in errors:
                break  # a real compile error: retrying without the export will not help
        if proc.returncode != 0:
            raise CompileError(f"C compilation failed:\n{errors.strip()}")
        binary = out_path.read_bytes()
    if use_cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp_file = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp_file.write_bytes(binary)
        os.replace(tmp_file, cached)  # atomic: parallel test workers never see half a file
    return binary


def wat_to_wasm(text: str) -> bytes:
    try:
        import wasmtime
    except ImportError:
        raise CompileError("assembling WAT needs the `wasmtime` package (pip install wasmtime)") from None
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise CompileError(f"WAT assembly failed:\n{exc}") from None


def _guess_kind(path: Path | None, source: str | bytes) -> str:
    if path is not None:
        suffix = path.suffix.lower().lstrip(".")
        if suffix in KINDS:
            return suffix
        raise ValueError(f"cannot tell the kind of {path} from its suffix: "
                         f"pass kind= one of {', '.join(KINDS)}")
    if isinstance(source, bytes) and source[:4] == b"\0asm":
        return "wasm"
    text = source.decode(errors="replace") if isinstance(source, bytes) else source
    if text.lstrip().startswith("(module") or text.lstrip().startswith("(;"):
        return "wat"
    raise ValueError("cannot tell whether this source is C or WAT: pass kind='c' or kind='wat'")


def _looks_like_path(text: str) -> bool:
    if "\n" in text or len(text) > 4096 or text.lstrip().startswith("("):
        return False  # WAT text (a one-line module can be longer than a file name may be)
    try:
        if Path(text).is_file():
            return True
    except OSError:  # e.g. a name longer than the file system allows: not a path
        return False
    return re.fullmatch(r"\S+\.(c|wat|wasm)", text, re.I) is not None


def load_wasm_bytes(path_or_source: str | bytes | os.PathLike, kind: str | None = None) -> bytes:
    """The wasm binary for a program given as a file path, C/WAT source text, or wasm bytes."""
    path: Path | None = None
    source: str | bytes
    if isinstance(path_or_source, os.PathLike):
        path = Path(path_or_source)
    elif isinstance(path_or_source, str) and _looks_like_path(path_or_source):
        path = Path(path_or_source)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"no such program file: {path}")
        source = path.read_bytes()
    else:
        source = path_or_source  # type: ignore[assignment]
    kind = kind or _guess_kind(path, source)
    if kind not in KINDS:
        raise ValueError(f"unknown program kind {kind!r}: use one of {', '.join(KINDS)}")
    if kind == "wasm":
        return source if isinstance(source, bytes) else source.encode("latin-1")
    if kind == "wat":
        return wat_to_wasm(source.decode() if isinstance(source, bytes) else source)
    if path is None:
        return compile_c(source)
    return compile_c(source, directory=path.parent.resolve(), filename=path.name)


def load_program(path_or_source: str | bytes | os.PathLike, kind: str | None = None, *,
                 lenient: bool = False) -> Module:
    """Load a C / WAT / WASM program (path or source) and decode it into a `Module`."""
    return decode_module(load_wasm_bytes(path_or_source, kind), lenient=lenient)


def default_entry(module: Module) -> str:
    """Name of the exported function a program starts at (see `ENTRY_NAMES`)."""
    funcs = {e.name for e in module.exports if e.kind == ExternKind.FUNC}
    for name in ENTRY_NAMES:
        if name in funcs:
            return name
    shown = ", ".join(sorted(funcs)) or "none"
    raise ValueError(f"program has no entry point: expected an exported function named one of "
                     f"{', '.join(ENTRY_NAMES)} (exported functions: {shown}); name one explicitly")
