"""Speed of C programs inside the compiled WASM machine, beside the reference interpreter and
wasmtime, all measured in the same run.

Per example (default inputs): instructions executed, and for each executor the median wall time
of `--repeat` runs and its instructions/s:

* model: the compiled machine (interpreter_spec/wasm.rasp2d) with the hull cache, generating
  the trace in the numba loop (`HullDecoder.generate`). Prefill (feeding the prompt) and
  decoding are timed apart; tok/s is generated trace tokens per decoding second. The generated
  trace is compared with the reference interpreter's, token for token: a figure is only printed
  for an exact run. A program the machine cannot run yet prints `check_supported`'s reason.
* reference: the plain-Python interpreter's fast loop (`Machine.invoke`).
* wasmtime: `oracle.run_wasmtime` (instantiation and the host putchar/getchar included; the
  module is compiled once before timing).

`--max-steps N` caps the model run at N instructions (the reference trace is cut there too, so
the comparison stays exact); the model's full-run time is then **extrapolated** linearly from
the capped run and marked `~`. Ratios compare instructions/s: reference / model and wasmtime /
model (how many times slower the transformer is), wasmtime / reference.

`--specialise` also compiles, per supported program, the machine with that program baked into
its weights (interpreter_spec/specialize.py) and prints its size and speed beside the general
machine's: prompt tokens, layers, d_model, heads, FFN width, non-zero weights, decode tok/s
(its trace must equal the reference's too).

    python benchmarks/wasm_machine_speed.py [names...] [--repeat 3] [--max-steps 200000]
                                            [--specialise]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS threads spin on small machines

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from rasp2d.interpreter_spec.frontend import default_entry, load_program, load_wasm_bytes  # noqa: E402
from rasp2d.interpreter_spec.layout import Layout, build_layout  # noqa: E402
from rasp2d.interpreter_spec.machine import (UnsupportedByMachine, check_supported,  # noqa: E402
                                             model_path)
from rasp2d.interpreter_spec.model_trace import (first_difference, generate_trace,  # noqa: E402
                                                 sparse_machine)
from rasp2d.interpreter_spec.oracle import run_reference, run_wasmtime  # noqa: E402
from rasp2d.interpreter_spec.reference import Machine  # noqa: E402
from rasp2d.interpreter_spec.prompt import build_prompt  # noqa: E402
from rasp2d.interpreter_spec.specialize import specialised_model_path  # noqa: E402
from rasp2d.interpreter_spec.trace import run_traced  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"
DEFAULT_NAMES = ("sudoku", "hungarian", "collatz", "addition", "fizzbuzz", "primes", "crc32")


@dataclass(frozen=True)
class Case:
    name: str
    layout: Layout
    wasm: bytes
    entry: str


@dataclass(frozen=True)
class ModelFigures:
    instructions: int  # executed in the (possibly capped) run
    trace_tokens: int
    prompt_tokens: int
    cache_bytes: int  # KV caches at the end of the run (hull runtime)
    prefill_s: float  # medians
    decode_s: float
    capped: bool


def load_case(name: str) -> Case:
    path = EXAMPLES / f"{name}.c"
    module = load_program(path)
    return Case(name, build_layout(module), load_wasm_bytes(path), default_entry(module))


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reference_run(case: Case, repeat: int) -> tuple[int, float]:
    """(instructions, median seconds) of the fast loop; instantiation excluded."""
    probe = Machine(case.layout.program)
    probe.invoke(case.entry)
    times = []
    for _ in range(repeat):
        m = Machine(case.layout.program)
        start = time.perf_counter()
        m.invoke(case.entry)
        times.append(time.perf_counter() - start)
    return probe.steps, statistics.median(times)


def model_run(case: Case, repeat: int, max_steps: int | None,
              specialised: bool = False) -> ModelFigures:
    """Median prefill and decode times of the hull backend; raises if the trace is not exact."""
    ref = run_traced(case.layout, case.entry, max_steps=max_steps)
    if specialised:
        machine = sparse_machine(specialised_model_path(case.layout))
        fn = case.layout.program.functions[case.layout.program.export_func(case.entry)]
        prompt = build_prompt(case.layout, fn.index, with_program=False)
    else:
        machine, prompt = sparse_machine(model_path()), list(ref.prompt)
    prefill, decode = [], []
    for _ in range(repeat):
        got = generate_trace(machine, prompt, len(ref.trace))
        i = first_difference(got.trace, ref.trace)
        if i is not None:
            raise AssertionError(f"{case.name}: the model's trace differs from the reference at "
                                 f"trace token {i} ({got.trace[i:i + 1]} vs {ref.trace[i:i + 1]})")
        prefill.append(got.prefill_seconds)
        decode.append(got.decode_seconds)
    return ModelFigures(ref.instructions, len(ref.trace), len(prompt), got.cache_bytes,
                        statistics.median(prefill), statistics.median(decode),
                        ref.stopped_early)


def warm_up() -> None:
    """Compile the numba loop and the machine's sparse form before anything is timed."""
    layout = build_layout(load_program('(module (func (export "main") (result i32) i32.const 1))',
                                       "wat"))
    run = run_traced(layout, "main")
    generate_trace(sparse_machine(model_path()), run.prompt, len(run.trace))


def model_size(path: Path) -> str:
    import numpy as np

    from rasp2d.backends.model_file import CompiledModel
    m = CompiledModel.load(path)
    nonzero = sum(int(np.count_nonzero(getattr(m, k))) for k in
                  ("embed", "pos_embed", "W_q", "W_k", "W_v", "W_o", "W_gate", "W_val", "W_out",
                   "unembed"))
    return (f"{m.W_q.shape[0]} layers, d_model {m.embed.shape[1]}, {m.W_q.shape[1]} heads/layer, "
            f"FFN width {m.W_gate.shape[1]}, {nonzero:,} non-zero weights")


def specialised_report(case: Case, repeat: int, max_steps: int | None,
                       general: ModelFigures) -> None:
    t0 = time.perf_counter()
    path = specialised_model_path(case.layout)
    built = time.perf_counter() - t0
    fig = model_run(case, repeat, max_steps, specialised=True)
    print(f"{'':<10} specialised ({built:.0f}s to compile or load): prompt {general.prompt_tokens:,}"
          f" -> {fig.prompt_tokens:,} tokens; prefill {general.prefill_s:.3f}s -> "
          f"{fig.prefill_s:.3f}s; decode {rate(general.trace_tokens, general.decode_s)} -> "
          f"{rate(fig.trace_tokens, fig.decode_s)} tok/s; trace equals the reference")
    print(f"{'':<10}   general:     {model_size(model_path())}")
    print(f"{'':<10}   specialised: {model_size(path)}")


def rate(n: float, s: float) -> str:
    return f"{n / s:,.0f}" if s > 0 else "inf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"examples (default: {' '.join(DEFAULT_NAMES)})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per executor (median)")
    parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                        help="cap model runs at N instructions and extrapolate the full run")
    parser.add_argument("--specialise", action="store_true",
                        help="also run each supported program on its specialised machine")
    args = parser.parse_args()
    names = args.names or list(DEFAULT_NAMES)

    t0 = time.perf_counter()
    warm_up()
    print(f"machine: {model_path().name} (compile/load + numba warm-up "
          f"{time.perf_counter() - t0:.1f}s, not counted)")
    print(f"repeats: {args.repeat} (medians); model cap: "
          f"{args.max_steps if args.max_steps else 'none'} instructions ('~' = extrapolated)\n")
    header = (f"{'program':<10} {'instr':>10} {'ref instr/s':>12} {'wasmtime s':>10} "
              f"{'wt instr/s':>12} {'model tok/s':>11} {'model instr/s':>13} {'model s':>10} "
              f"{'ref/model':>10} {'wt/model':>10} {'wt/ref':>7}")
    print(header)
    model_seconds: dict[str, tuple[float, bool]] = {}
    reasons: list[str] = []
    for name in names:
        case = load_case(name)
        steps, ref_s = reference_run(case, args.repeat)
        theirs = run_wasmtime(case.wasm, case.entry)  # compiles the module once, untimed
        ours = run_reference(case.layout.program, case.entry)
        if not ours.same_behaviour(theirs):
            raise AssertionError(f"{name}: wasmtime and the reference interpreter disagree")
        wt_s = median_time(lambda: run_wasmtime(case.wasm, case.entry), args.repeat)
        ref_rate, wt_rate = steps / ref_s, steps / wt_s
        row = f"{name:<10} {steps:>10,} {ref_rate:>12,.0f} {wt_s:>10.4f} {wt_rate:>12,.0f}"
        try:
            check_supported(case.layout)
        except UnsupportedByMachine as exc:
            print(f"{row} {'-':>11} {'-':>13} {'-':>10} {'-':>10} {'-':>10} "
                  f"{wt_rate / ref_rate:>6.1f}x")
            reasons.append(f"  {name}: {exc}")
            continue
        fig = model_run(case, args.repeat, args.max_steps)
        model_rate = fig.instructions / fig.decode_s
        full_s = (fig.prefill_s + fig.decode_s * steps / fig.instructions) if fig.capped \
            else fig.prefill_s + fig.decode_s
        model_seconds[name] = (full_s, fig.capped)
        mark = "~" if fig.capped else ""
        print(f"{row} {rate(fig.trace_tokens, fig.decode_s):>11} {model_rate:>13,.0f} "
              f"{mark + f'{full_s:.2f}':>10} {ref_rate / model_rate:>9,.0f}x "
              f"{wt_rate / model_rate:>9,.0f}x {wt_rate / ref_rate:>6.1f}x")
        print(f"{'':<10} model: prompt {fig.prompt_tokens:,} tokens prefilled in "
              f"{fig.prefill_s:.3f}s; {fig.instructions:,} instructions -> "
              f"{fig.trace_tokens:,} trace tokens in {fig.decode_s:.3f}s"
              f"{' (capped run)' if fig.capped else ''}; trace equals the reference; "
              f"caches {fig.cache_bytes / 1e6:,.0f} MB = "
              f"{fig.cache_bytes / (fig.prompt_tokens + fig.trace_tokens):,.0f} B per token")
        if args.specialise:
            specialised_report(case, args.repeat, args.max_steps, fig)
    if reasons:
        print("\nnot run inside the model (check_supported):")
        print("\n".join(reasons))
    if "sudoku" in names:
        if "sudoku" in model_seconds:
            s, capped = model_seconds["sudoku"]
            how = "extrapolated from a capped run" if capped else "measured, whole run"
            print(f"\nhardest Sudoku inside the model: {s:.1f}s ({how}; goal < 60 s)")
        else:
            print("\nhardest Sudoku inside the model: not supported by the machine yet")


if __name__ == "__main__":
    main()
