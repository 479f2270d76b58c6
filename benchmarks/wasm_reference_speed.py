"""Speed of the plain-Python WASM reference interpreter on the example C programs.

Prints, per example: instructions executed, median wall time of the fast run loop and its
instructions/second, the traced stepper's rate, and how much slower tracing is. Target for the
fast loop: >= 1M instructions/s.

    python benchmarks/wasm_reference_speed.py [--repeat 5] [--traced-repeat 1] [names...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rasp2d.interpreter_spec.frontend import default_entry, load_program
from rasp2d.interpreter_spec.program import flatten
from rasp2d.interpreter_spec.reference import Machine
from rasp2d.interpreter_spec.stepper import trace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "wasm"


def timed(setup, run) -> float:
    """Seconds `run(setup())` takes, instantiation (setup) excluded."""
    state = setup()
    start = time.perf_counter()
    run(state)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="example names (default: all)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--traced-repeat", type=int, default=1)
    args = parser.parse_args()
    names = args.names or sorted(p.stem for p in EXAMPLES.glob("*.c"))
    print(f"{'example':<10} {'instructions':>12} {'fast s':>8} {'fast M/s':>9} "
          f"{'traced s':>9} {'traced M/s':>10} {'traced/fast':>11}")
    for name in names:
        module = load_program(EXAMPLES / f"{name}.c")
        program, entry = flatten(module), default_entry(module)

        def instantiate() -> Machine:
            return Machine(program)

        def fast(m: Machine) -> None:
            m.invoke(entry)

        def traced(m: Machine) -> None:
            for _ in trace(m, entry):
                pass

        probe = instantiate()
        fast(probe)
        steps = probe.steps
        fast_s = statistics.median(timed(instantiate, fast) for _ in range(args.repeat))
        traced_s = statistics.median(timed(instantiate, traced) for _ in range(args.traced_repeat))
        print(f"{name:<10} {steps:>12} {fast_s:>8.3f} {steps / fast_s / 1e6:>9.2f} "
              f"{traced_s:>9.3f} {steps / traced_s / 1e6:>10.3f} {traced_s / fast_s:>10.1f}x")


if __name__ == "__main__":
    main()
