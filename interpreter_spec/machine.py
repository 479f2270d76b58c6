"""The WASM machine as a compiled transformer: build it, check it, run programs on it.

`wasm.rasp2d` is the interpreter; this module compiles it (cached per source hash), says which
opcodes it supports, and checks it teacher-forced against the reference trace: the model must
predict every trace token from the tokens before it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .program import Op

SPEC = Path(__file__).with_name("wasm.rasp2d")

SUPPORTED_OPS = frozenset({
    Op.I32_CONST, Op.LOCAL_GET, Op.LOCAL_SET, Op.LOCAL_TEE, Op.I32_ADD, Op.I32_SUB, Op.I32_AND,
    Op.I32_OR, Op.I32_XOR, Op.I32_EQZ, Op.I32_EQ, Op.I32_NE, Op.I32_LT_S, Op.I32_LT_U,
    Op.I32_GT_S, Op.I32_GT_U, Op.I32_LE_S, Op.I32_LE_U, Op.I32_GE_S, Op.I32_GE_U, Op.DROP,
    Op.BR, Op.BR_IF, Op.IF, Op.CALL, Op.RETURN, Op.PUTCHAR, Op.GLOBAL_GET, Op.GLOBAL_SET,
    Op.I32_LOAD, Op.I32_LOAD8_S, Op.I32_LOAD8_U, Op.I32_LOAD16_S, Op.I32_LOAD16_U, Op.I32_STORE,
    Op.I32_STORE8, Op.I32_STORE16, Op.SELECT, Op.GETCHAR,
    Op.I32_MUL, Op.I32_SHL, Op.I32_SHR_U, Op.I32_SHR_S, Op.I32_ROTL, Op.I32_ROTR,
    Op.I32_CLZ, Op.I32_CTZ, Op.I32_POPCNT, Op.I32_EXTEND8_S, Op.I32_EXTEND16_S,
    Op.I32_DIV_U, Op.I32_REM_U, Op.I32_DIV_S, Op.I32_REM_S, Op.CALL_INDIRECT, Op.BR_TABLE, Op.I64_CONST, Op.I64_STORE, Op.UNREACHABLE,
    Op.MEMORY_SIZE,
    Op.MEMORY_GROW,
    Op.I64_LOAD,
    Op.I64_LOAD8_S,
    Op.I64_LOAD8_U,
    Op.I64_LOAD16_S,
    Op.I64_LOAD16_U,
    Op.I64_LOAD32_S,
    Op.I64_LOAD32_U,
    Op.I64_STORE8,
    Op.I64_STORE16,
    Op.I64_STORE32,
    Op.I64_EQZ,
    Op.I64_EQ,
    Op.I64_NE,
    Op.I64_LT_S,
    Op.I64_LT_U,
    Op.I64_GT_S,
    Op.I64_GT_U,
    Op.I64_LE_S,
    Op.I64_LE_U,
    Op.I64_GE_S,
    Op.I64_GE_U,
    Op.I64_CLZ,
    Op.I64_CTZ,
    Op.I64_POPCNT,
    Op.I64_ADD,
    Op.I64_SUB,
    Op.I64_MUL,
    Op.I64_AND,
    Op.I64_OR,
    Op.I64_XOR,
    Op.I64_SHL,
    Op.I64_SHR_S,
    Op.I64_SHR_U,
    Op.I64_ROTL,
    Op.I64_ROTR,
    Op.I32_WRAP_I64,
    Op.I64_EXTEND_I32_S,
    Op.I64_EXTEND_I32_U,
    Op.I64_EXTEND8_S,
    Op.I64_EXTEND16_S,
    Op.I64_EXTEND32_S,
    Op.I64_DIV_U,
    Op.I64_DIV_S,
    Op.I64_REM_U,
    Op.I64_REM_S,
})
"""Opcodes the machine (wasm.rasp2d) executes."""

MAX_GLOBALS = 64
"""The GLOB section's byte offsets are decoded up to this many globals (wasm.rasp2d)."""

MAX_MEMORY_PAGES = 1024
"""Memory addresses are clamped to 2^26 in wasm.rasp2d so that look-up scores stay exact
float64 integers (the token format caps DATA's maximum, so memory.grow stops here too); a
memory may not start larger than this."""

MAX_TABLE = 4096
"""call_indirect reads table element min(index, 4095) (wasm.rasp2d): a larger table is refused."""


class UnsupportedByMachine(ValueError):
    """The program uses something the compiled machine does not execute yet."""


def check_supported(layout) -> None:
    """Refuse, naming the first reason, a program the machine cannot run exactly."""
    prog = layout.program
    if layout.n_globals > MAX_GLOBALS:
        raise UnsupportedByMachine(f"the module has {layout.n_globals} globals; the compiled "
                                   f"machine reads at most {MAX_GLOBALS} (use --backend reference)")
    for limits in layout.module.memory_limits():
        if limits.minimum > MAX_MEMORY_PAGES:
            raise UnsupportedByMachine(f"the memory starts with {limits.minimum} pages; the compiled "
                                       f"machine addresses at most {MAX_MEMORY_PAGES} pages (use "
                                       "--backend reference)")
    n_elements = prog.tables[0].limits.minimum if prog.tables else 0
    if n_elements > MAX_TABLE:
        raise UnsupportedByMachine(f"the table has {n_elements} elements; the compiled machine "
                                   f"reads at most {MAX_TABLE} (use --backend reference)")
    for pc, ins in enumerate(prog.code):
        if ins.op not in SUPPORTED_OPS:
            raise UnsupportedByMachine(f"pc {pc}: {ins.op.text} is not implemented by the compiled "
                                       f"WASM machine yet (use --backend reference)")


@lru_cache(maxsize=1)
def compiled():
    """CompileResult of wasm.rasp2d (graph + model); the model file is cached on disk."""
    from rasp2d.compiler.api import compile_file
    return compile_file(SPEC)


def cache_key(source: bytes) -> str:
    """Key of a compiled machine in the cache: its source, the stdlib, the vocabulary, the
    compiler itself (a compiler change can change the weights of the same source) and the
    model file format."""
    from rasp2d.compiler.elaborate import STDLIB_DIR
    pkg = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(source)
    for p in [*sorted(STDLIB_DIR.glob("*.rasp2d")), SPEC.with_name("wasm_vocab.txt"),
              *sorted((pkg / "compiler").glob("*.py")), *sorted((pkg / "lang").glob("*")),
              pkg / "backends" / "model_file.py"]:
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cached_model_path() -> Path:
    """Where :func:`model_path` keeps the compiled machine (it may not be there yet)."""
    from rasp2d.cache import cache_dir
    return cache_dir() / f"wasm-machine-{cache_key(SPEC.read_bytes())}.npz"


def model_path() -> Path:
    """The compiled machine as a model file, rebuilt when wasm.rasp2d, the stdlib or the
    compiler change."""
    path = cached_model_path()
    if not path.exists():
        compiled().model.save(path)
    return path


@dataclass(frozen=True)
class Mismatch:
    position: int
    step: int
    pc: int
    op: str
    expected: str
    predicted: str


def teacher_forced_mismatches(run, limit: int = 5) -> list[Mismatch]:
    """Run the reference evaluator of the machine over prompt + trace at once and list the
    positions where its prediction differs from the next trace token."""
    from rasp2d.backends.reference import evaluate
    from .vocab import TOKEN_ID, VOCAB
    res = compiled()
    toks = list(run.tokens)
    ids = [TOKEN_ID[t] for t in toks]
    pred = evaluate(res.graph, ids)[res.graph.output]
    starts = list(run.step_starts)
    out = []
    import bisect
    for p in range(len(run.prompt) - 1, len(toks) - 1):
        if pred[p] != ids[p + 1]:
            s = max(bisect.bisect_right(starts, p) - 1, 0)
            pc = run.step_pcs[s] if starts else -1
            out.append(Mismatch(p, s, pc, run.program.code[pc].op.text if pc >= 0 else "?",
                                toks[p + 1], VOCAB[pred[p]]))
            if len(out) >= limit:
                break
    return out


@dataclass(frozen=True)
class ModelRun:
    tokens: tuple[str, ...]  # prompt + generated trace
    prompt_len: int
    output: bytes
    results: tuple[int, ...] | None
    trap: str | None
    instructions: int
    seconds: float


def make_decoder(backend: str, model):
    if backend in ("hull", "brute"):
        from rasp2d.backends.hull_runtime import HullDecoder
        return HullDecoder(model, cache=backend)
    if backend == "torch":
        from rasp2d.backends.torch_backend import TorchDecoder
        return TorchDecoder(model)
    raise ValueError(f"unknown transformer backend {backend!r} (hull, brute or torch)")


def startable_entry(layout, entry: str) -> int:
    """Function index of `entry`, refused when the machine cannot start it."""
    from .layout import entry_function
    fn = entry_function(layout, entry)
    if fn.n_params:
        raise UnsupportedByMachine(f"{fn.name} takes parameters; the machine starts functions "
                                   "without arguments so far")
    return fn.index


def run_in_model(module, entry: str, input_bytes: bytes = b"", *, backend: str = "hull",
                 max_tokens: int = 50_000_000, progress=None) -> ModelRun:
    """Execute `entry` inside the compiled WASM machine: the prompt goes in, the transformer
    generates the trace token by token until HALT or a trap token."""
    from .layout import as_layout
    from .prompt import build_prompt

    layout = as_layout(module)
    check_supported(layout)
    prompt = build_prompt(layout, startable_entry(layout, entry), (), input_bytes)
    return decode_run(model_path(), prompt, backend=backend, max_tokens=max_tokens, progress=progress)


def decode_run(model_file: Path, prompt: list[str], *, backend: str = "hull",
               max_tokens: int = 50_000_000, progress=None) -> ModelRun:
    """Feed `prompt` to the machine in `model_file` and let it generate the trace until HALT, a
    trap token or `max_tokens`; `progress(tokens, instructions, seconds)` after every chunk of
    the hull runtime's loop (2048 tokens, growing while a chunk takes under 0.1 s), or every
    2048 tokens of a per-token backend (torch).  After a trap token the hull loop runs on to the
    chunk's end (it stops by itself only at HALT); those tokens are dropped."""
    import time

    import numpy as np
    from rasp2d.backends.model_file import CompiledModel
    from .trace import decode_trace
    from .vocab import TOKEN_ID, VOCAB

    if backend in ("hull", "brute"):  # the sparse form only: no dense weights are built
        from rasp2d.backends.sparse_program import sparse_program_of_file
        dec = make_decoder(backend, sparse_program_of_file(model_file))
    else:
        dec = make_decoder(backend, CompiledModel.load(model_file))
    ids = [TOKEN_ID[t] for t in prompt]
    halt, m_id = TOKEN_ID["HALT"], TOKEN_ID["M"]
    jl_lo, jl_hi = TOKEN_ID["JL00"], TOKEN_ID["JLff"]
    trap_lo = min(i for i, t in enumerate(VOCAB) if t.startswith("TRAP_"))
    started = time.perf_counter()
    out: list[int] = []
    anchors = 1  # the first step's anchor ends the prompt
    if hasattr(dec, "generate"):
        # the hull runtime's loop runs inside numba: chunks of it instead of one Python call
        # per token, which cost two thirds of the time; small chunks first for the progress
        from .model_trace import generated_chunks
        for got in generated_chunks(dec, ids, max_tokens, chunk=2048, grow_below_s=0.1):
            out.extend(got.tolist())
            anchors += int(np.count_nonzero((got == m_id) | ((got >= jl_lo) & (got <= jl_hi))))
            if progress is not None:
                progress(len(ids) + len(out), anchors, time.perf_counter() - started)
    else:
        nxt = -1
        for t in ids:
            nxt = dec.feed(t)
        while len(out) < max_tokens:
            out.append(nxt)
            if nxt == halt or nxt >= trap_lo:
                break
            if nxt == m_id or jl_lo <= nxt <= jl_hi:
                anchors += 1
            if progress is not None and len(out) % 2048 == 0:
                progress(len(ids) + len(out), anchors, time.perf_counter() - started)
            nxt = dec.feed(nxt)
    seconds = time.perf_counter() - started
    tokens = tuple(prompt) + tuple(VOCAB[i] for i in out)
    decoded = decode_trace(tokens)
    return ModelRun(tokens, len(prompt), decoded.output, decoded.results, decoded.trap, anchors, seconds)
