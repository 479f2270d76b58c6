"""Single-stream decoding speed of the compiled WASM machine on real C programs.

    python benchmarks/hull_wasm_speed.py                 # fizzbuzz, crc32, primes; 3 repeats
    python benchmarks/hull_wasm_speed.py --programs fizzbuzz --repeats 5 --brute
    python benchmarks/hull_wasm_speed.py --model /tmp/frozen-wasm-machine.npz   # a fixed machine

Each program is compiled to WASM, laid out as the machine's prompt and decoded greedily by
the hull runtime inside numba (``model_trace.generate_trace``) until HALT.  Reported per
program: prompt and trace lengths, the median decode speed over ``--repeats`` runs (prefill
timed apart), and that every run produced the same trace, equal token for token to the reference
interpreter's (``trace.run_traced``) while that trace fits ``--max-tokens``.  ``--brute`` also decodes with the
brute-force cache (O(t) per head and token) and prints the speed ratio measured side by side.
The machine is shared with other work: compare only figures from one run.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rasp2d.backends.hull_kernels import GROUP_TABLE  # noqa: E402
from rasp2d.backends.model_file import CompiledModel  # noqa: E402
from rasp2d.interpreter_spec.frontend import default_entry, load_program  # noqa: E402
from rasp2d.interpreter_spec.layout import as_layout, entry_function  # noqa: E402
from rasp2d.interpreter_spec.machine import check_supported, model_path  # noqa: E402
from rasp2d.interpreter_spec.model_trace import generate_trace, sparse_machine  # noqa: E402
from rasp2d.interpreter_spec.prompt import build_prompt  # noqa: E402
from rasp2d.interpreter_spec.trace import run_traced  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"


def prompt_of(name: str) -> list[str]:
    module = load_program(str(EXAMPLES / f"{name}.c"))
    layout = as_layout(module)
    check_supported(layout)
    fn = entry_function(layout, default_entry(module))
    return list(build_prompt(layout, fn.index, (), b""))


def reference_trace(name: str, max_tokens: int) -> tuple[str, ...] | None:
    """The reference interpreter's trace of ``name`` (None when it is longer than the budget)."""
    module = load_program(str(EXAMPLES / f"{name}.c"))
    run = run_traced(as_layout(module), default_entry(module))
    return tuple(run.trace) if len(run.trace) <= max_tokens else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--programs", nargs="+", default=["fizzbuzz", "crc32", "primes"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=2_000_000)
    p.add_argument("--brute", action="store_true", help="also time the brute-force cache")
    p.add_argument("--model", type=Path, default=None, metavar="PATH",
                   help="a WASM machine model file (default: the current compiled machine)")
    args = p.parse_args()
    path = args.model if args.model is not None else model_path()
    model = CompiledModel.load(path)
    t0 = time.perf_counter()
    prog = sparse_machine(path)
    ffn = prog.ffn
    print(f"model: {model.summary()}")
    print(f"sparse form built in {time.perf_counter() - t0:.1f}s: {prog.n_used_heads} used heads "
          f"({prog.n_position_heads} answered in closed form by position), "
          f"{len(ffn.units)} live FFN units in {ffn.n_groups} groups "
          f"({int((ffn.group_kind == GROUP_TABLE).sum())} tables), "
          f"{len(ffn.generic_units)} units evaluated one by one, "
          f"unembedding reads {len(prog.ucols)} dims")
    generate_trace(prog, prompt_of(args.programs[0])[:8], 4)  # load the compiled step
    caches = ("hull", "brute") if args.brute else ("hull",)
    print(f"{'program':>10} {'prompt':>7} {'trace':>8} " +
          " ".join(f"{c + ' tok/s':>12}" for c in caches) + ("   hull/brute" if args.brute else ""))
    for name in args.programs:
        prompt = prompt_of(name)
        speeds, traces = {}, set()
        for cache in caches:
            runs = []
            for _ in range(args.repeats):
                r = generate_trace(prog, prompt, args.max_tokens, cache=cache)
                traces.add(r.trace)
                runs.append(len(r.trace) / r.decode_seconds)
            speeds[cache] = statistics.median(runs)
        if len(traces) != 1:
            raise SystemExit(f"{name}: runs produced different traces")
        (trace,) = traces
        ref = reference_trace(name, args.max_tokens)
        if ref is not None and trace != ref:
            i = next((i for i, (a, b) in enumerate(zip(trace, ref)) if a != b),
                     min(len(trace), len(ref)))
            raise SystemExit(f"{name}: the model's trace differs from the reference interpreter's "
                             f"at token {i}")
        ratio = f" {speeds['hull'] / speeds['brute']:>11.1f}x" if args.brute else ""
        print(f"{name:>10} {len(prompt):>7,} {len(trace):>8,} " +
              " ".join(f"{speeds[c]:>12,.0f}" for c in caches) + ratio +
              ("  = reference" if ref is not None else "  (not checked: over --max-tokens)") +
              ("" if trace[-1] == "HALT" else f"  (ended with {trace[-1]})"))


if __name__ == "__main__":
    main()
