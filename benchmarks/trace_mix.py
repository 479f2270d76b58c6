"""Which instructions a program's trace tokens come from (the reference interpreter's trace).

    python benchmarks/trace_mix.py                 # sudoku
    python benchmarks/trace_mix.py collatz primes --top 10

Wall time inside the model is tokens / (tokens per second), so once the runtime's speed is
what it is, the tokens per executed instruction decide: this prints, per program, the share of
steps and of trace tokens per opcode, tokens per step, and the most frequent pairs of
consecutive instructions (candidates for fusing in the flat program: an ``i32.const`` followed
by an operator, for instance, is two steps of five tokens for one result).
"""

from __future__ import annotations

import argparse
import collections

from hull_wasm_speed import EXAMPLES

from rasp2d.interpreter_spec.frontend import default_entry, load_program
from rasp2d.interpreter_spec.layout import as_layout
from rasp2d.interpreter_spec.trace import run_traced


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("programs", nargs="*", default=["sudoku"])
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    for name in args.programs:
        module = load_program(str(EXAMPLES / f"{name}.c"))
        run = run_traced(as_layout(module), default_entry(module))
        n = run.n_steps
        total = len(run.prompt) + len(run.trace)
        ends = list(run.step_starts[1:]) + [total]
        ops = [run.program.code[pc].op.text for pc in run.step_pcs]
        steps = collections.Counter(ops)
        tokens: collections.Counter[str] = collections.Counter()
        for i, op in enumerate(ops):
            tokens[op] += ends[i] - run.step_starts[i]
        n_tok = sum(tokens.values())
        print(f"{name}: {n:,} instructions, {n_tok:,} step tokens, {n_tok / n:.2f} per instruction")
        print(f"  {'opcode':20s} {'steps':>7s} {'tokens':>7s} {'tokens/step':>12s}")
        for op, t in tokens.most_common(args.top):
            print(f"  {op:20s} {steps[op] / n:7.1%} {t / n_tok:7.1%} {t / steps[op]:12.2f}")
        pairs = collections.Counter(zip(ops, ops[1:]))
        print("  most frequent consecutive instructions (share of steps):")
        for (a, b), c in pairs.most_common(args.top):
            print(f"    {a:18s} -> {b:18s} {c / n:6.1%}")


if __name__ == "__main__":
    main()
