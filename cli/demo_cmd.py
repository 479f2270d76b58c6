"""`rasp2d demo`: compile the WASM machine and run a C program inside it, end to end."""

from __future__ import annotations

import sys
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "wasm" / "fizzbuzz.c"


def add_arguments(p) -> None:
    p.add_argument("program", nargs="?", default=str(DEMO),
                   help="C / WAT / WASM program (default: the bundled examples/wasm/fizzbuzz.c)")
    p.add_argument("--backend", default="hull", choices=("hull", "brute", "torch"),
                   help="runtime of the transformer (default: hull, the convex-hull KV cache)")


def run(args) -> int:
    from rasp2d.interpreter_spec.frontend import default_entry, load_program
    from rasp2d.interpreter_spec.machine import (
        UnsupportedByMachine, cached_model_path, model_path, run_in_model,
    )
    from rasp2d.interpreter_spec.oracle import run_reference

    cached = cached_model_path()
    print("== compiling the WASM interpreter (interpreter_spec/wasm.rasp2d) into a transformer"
          + (f" (already compiled: {cached})" if cached.exists() else ""))
    t0 = time.perf_counter()
    path = model_path()
    from rasp2d.backends.model_file import CompiledModel
    model = CompiledModel.load(path)
    print(f"   {model.summary()}  ({time.perf_counter() - t0:.1f}s)")
    print(f"== compiling {args.program} to WebAssembly and running it inside the model ({args.backend})")
    module = load_program(args.program)
    entry = default_entry(module)
    try:
        r = run_in_model(module, entry, backend=args.backend)
    except UnsupportedByMachine as exc:
        print(f"rasp2d demo: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(r.output.decode("utf-8", "replace"))
    n = len(r.tokens) - r.prompt_len
    print(f"== {r.instructions} WASM instructions, {r.prompt_len} prompt + {n} generated tokens "
          f"in {r.seconds:.2f}s ({(r.prompt_len + n) / r.seconds:,.0f} tok/s)")
    from rasp2d.interpreter_spec.program import flatten
    ref = run_reference(flatten(module), entry)
    same = ref.output == r.output and (ref.trap is None) == (r.trap is None) and \
        (r.results or ()) == tuple(ref.results or ())
    print(f"== result {r.results}  trap {r.trap}  |  plain-Python reference interpreter agrees: {same}")
    return 0 if same else 1
