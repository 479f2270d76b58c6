"""`rasp2d exec`: run a C / WAT / WASM program like a native binary.

The program's output bytes go to stdout untouched, a one-line summary goes to stderr, and the
exit status is main's return value & 0xFF. Backends are looked up in `BACKENDS`, so other
executors (the transformer backends) plug in by adding an entry.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import Callable

TRAP_EXIT = 134  # like a native program killed by SIGABRT
STEP_LIMIT_EXIT = 124  # like `timeout`
LOAD_ERROR_EXIT = 2


@dataclass(frozen=True)
class ExecRequest:
    program: "object"  # rasp2d.interpreter_spec.program.Program
    entry: str
    input: bytes
    max_steps: int | None
    module: "object" = None  # the decoded Module (the token format needs its local types)
    trace_tokens: bool = False  # also count the WASM machine's trace tokens (slower)
    specialise: bool = False  # transformer backends: bake the program into the weights


@dataclass(frozen=True)
class ExecResult:
    results: tuple[int, ...]  # the entry function's results (bit patterns); () when it trapped
    output: bytes
    steps: int  # WASM (flat-program) instructions executed
    trap: str | None = None  # the trap, named as the spec names it, with its location
    trace_tokens: int | None = None  # tokens generated, for backends that run a transformer
    run_seconds: float | None = None  # the transformer's prompt + generation, without loading
    prompt_tokens: int = 0  # the transformer's prompt


def _run_reference(req: ExecRequest) -> ExecResult:
    from rasp2d.interpreter_spec.reference import Machine
    from rasp2d.interpreter_spec.traps import Trap

    machine = Machine(req.program, input=req.input)  # type: ignore[arg-type]
    fn = machine.function(req.entry)
    try:
        results = machine.invoke(req.entry, [0] * fn.n_params, max_steps=req.max_steps)
    except Trap as trap:
        return ExecResult((), bytes(machine.output), machine.steps, trap=str(trap))
    return ExecResult(results, bytes(machine.output), machine.steps)


def _trace_tokens(req: ExecRequest) -> int | None:
    """Tokens the WASM machine's trace of this run has (interpreter_spec/TRACE_FORMAT.md): a
    second, traced run that only counts (about 15x the plain run's time, not timed)."""
    from rasp2d.interpreter_spec.layout import TraceFormatError
    from rasp2d.interpreter_spec.program import Program
    from rasp2d.interpreter_spec.trace import trace_stats

    assert isinstance(req.program, Program)
    n_params = req.program.functions[req.program.export_func(req.entry)].n_params
    try:
        return trace_stats(req.module, req.entry, [0] * n_params, req.input,  # type: ignore[arg-type]
                           req.max_steps).trace_tokens
    except TraceFormatError as exc:
        print(f"rasp2d exec: no trace tokens: {exc}", file=sys.stderr)
        return None


def _progress(tokens: int, instructions: int, seconds: float) -> None:
    if sys.stderr.isatty():
        rate = tokens / seconds if seconds > 0 else 0.0
        print(f"\r[rasp2d exec] {tokens} tokens  {instructions} instructions  {rate:,.0f} tok/s",
              end="", file=sys.stderr, flush=True)


def _run_transformer(backend: str) -> Callable[[ExecRequest], ExecResult]:
    """Run the program inside the compiled WASM machine (interpreter_spec/wasm.rasp2d)."""
    def run(req: ExecRequest) -> ExecResult:
        from rasp2d.interpreter_spec.machine import run_in_model
        from rasp2d.interpreter_spec.specialize import run_specialised
        from rasp2d.interpreter_spec.traps import StepLimitExceeded
        max_tokens = 50_000_000 if req.max_steps is None else 12 * req.max_steps
        runner = run_specialised if req.specialise else run_in_model
        r = runner(req.module, req.entry, req.input, backend=backend, max_tokens=max_tokens,
                   progress=_progress)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        n = len(r.tokens) - r.prompt_len
        if r.results is None and r.trap is None:
            raise StepLimitExceeded(f"stopped after {n} generated tokens without HALT")
        return ExecResult(r.results or (), r.output, r.instructions,
                          trap=None if r.trap is None else r.trap, trace_tokens=n,
                          run_seconds=r.seconds, prompt_tokens=r.prompt_len)
    return run


BACKENDS: dict[str, Callable[[ExecRequest], ExecResult]] = {
    "reference": _run_reference,
    "hull": _run_transformer("hull"),
    "brute": _run_transformer("brute"),
    "torch": _run_transformer("torch"),
}
"""Backend name -> executor. An executor raises StepLimitExceeded past `max_steps`."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Output bytes are written to stdout exactly as the program writes them; a summary line\n"
        "(instructions executed, time, rate) goes to stderr.\n\n"
        "exit status: main's return value & 0xFF; "
        f"{TRAP_EXIT} if the program traps (the trap is named on stderr);\n"
        f"{STEP_LIMIT_EXIT} if --max-steps is exceeded; "
        f"{LOAD_ERROR_EXIT} if the program cannot be loaded or compiled.")
    parser.add_argument("program", help="program file: .c (compiled with zig cc), .wat or .wasm")
    parser.add_argument("--backend", default="reference", choices=sorted(BACKENDS),
                        help="executor: reference (the plain-Python interpreter, default), or the "
                             "compiled transformer with the hull cache (hull), a brute-force "
                             "cache (brute) or PyTorch (torch)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--input", default=None, metavar="TEXT",
                     help="bytes getchar() returns (UTF-8); default: none (getchar gives -1)")
    src.add_argument("--input-file", default=None, metavar="PATH",
                     help="read getchar()'s input bytes from a file ('-' for stdin)")
    parser.add_argument("--entry", default=None, metavar="NAME",
                        help="exported function to run (default: main / __main_void / _start)")
    parser.add_argument("--trace-tokens", action="store_true",
                        help="also count the tokens of the transformer machine's trace "
                             "(reference backend; re-runs the program traced, ~15x slower)")
    parser.add_argument("--specialise", action="store_true",
                        help="transformer backends: compile a machine with this program baked "
                             "into its weights (instruction fetch by FFN tables, no program in "
                             "the prompt; compiled once, cached)")
    parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                        help="stop after about N instructions (exit status "
                             f"{STEP_LIMIT_EXIT})")


def _input_bytes(args: argparse.Namespace) -> bytes:
    if args.input is not None:
        return args.input.encode()
    if args.input_file == "-":
        return sys.stdin.buffer.read()
    if args.input_file is not None:
        with open(args.input_file, "rb") as f:
            return f.read()
    return b""


def run(args: argparse.Namespace) -> int:
    from rasp2d.interpreter_spec.decoder import WasmError
    from rasp2d.interpreter_spec.frontend import CompileError, default_entry, load_program
    from rasp2d.interpreter_spec.program import flatten
    from rasp2d.interpreter_spec.machine import UnsupportedByMachine
    from rasp2d.interpreter_spec.specialize import SpecialisationError
    from rasp2d.interpreter_spec.traps import StepLimitExceeded, Trap, UnsupportedAtRuntime

    try:
        module = load_program(args.program)
        program = flatten(module)
        entry = args.entry or default_entry(module)
        program.export_func(entry)
        if args.specialise and args.backend == "reference":
            raise ValueError("--specialise bakes the program into the transformer; use it with "
                             "--backend hull, brute or torch")
        request = ExecRequest(program, entry, _input_bytes(args), args.max_steps, module,
                              args.trace_tokens, args.specialise)
    except (OSError, CompileError, WasmError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else exc
        print(f"rasp2d exec: {message}", file=sys.stderr)
        return LOAD_ERROR_EXIT

    started = time.perf_counter()
    try:
        result = BACKENDS[args.backend](request)
    except Trap as trap:  # a trap during instantiation (data segments, start function)
        result = ExecResult((), b"", 0, trap=str(trap))
    except StepLimitExceeded as exc:
        print(f"rasp2d exec: {exc}", file=sys.stderr)
        return STEP_LIMIT_EXIT
    except UnsupportedByMachine as exc:
        print(f"rasp2d exec: {exc}", file=sys.stderr)
        return LOAD_ERROR_EXIT
    except SpecialisationError as exc:
        print(f"rasp2d exec: cannot specialise the machine: {exc}", file=sys.stderr)
        return LOAD_ERROR_EXIT
    except UnsupportedAtRuntime as exc:
        print(f"rasp2d exec: unsupported: {exc}", file=sys.stderr)
        return LOAD_ERROR_EXIT
    elapsed = time.perf_counter() - started
    if request.trace_tokens and result.trace_tokens is None and args.backend == "reference":
        result = dataclasses.replace(result, trace_tokens=_trace_tokens(request))

    sys.stdout.buffer.write(result.output)
    sys.stdout.buffer.flush()
    if result.trap is not None:
        print(f"rasp2d exec: trap: {result.trap}", file=sys.stderr)
        status = TRAP_EXIT
    else:
        status = (result.results[0] & 0xFF) if result.results else 0
    rate = result.steps / elapsed if elapsed > 0 else float("inf")
    summary = (f"[rasp2d exec] backend={args.backend} instructions={result.steps} "
               f"time={elapsed:.3f}s rate={rate / 1e6:.4f}M instr/s")
    if args.backend != "reference" and result.trace_tokens:
        # tokens per second of the run itself (prompt + trace), not of loading the machine
        run_s = result.run_seconds or elapsed
        summary += (f" run={run_s:.3f}s tok/s="
                    f"{(result.trace_tokens + result.prompt_tokens) / run_s:,.0f}")
    if result.trace_tokens is not None:
        summary += (f" trace_tokens={result.trace_tokens} "
                    f"({result.trace_tokens / max(1, result.steps):.2f}/instr)")
    print(f"{summary} exit={status}", file=sys.stderr)
    return status
