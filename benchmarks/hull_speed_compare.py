"""Decode speed of two checkouts of rasp2d side by side: a baseline and this tree.

    git archive <commit> | tar -x -C /tmp/base/rasp2d        # a baseline checkout
    python benchmarks/hull_speed_compare.py --baseline /tmp/base --model /tmp/frozen.npz

Why a separate script: speed changes of the runtime are smaller than the noise of a shared
machine between two runs minutes apart, so each repeat decodes every program once with the
baseline and once with this tree, alternating, each in a fresh process (``PYTHONPATH`` puts
the baseline's ``rasp2d`` first), and the figures are medians over repeats with their ratio.
Every run's trace must equal the reference interpreter's (``trace.run_traced``), for both
trees, or the script stops.  ``--baseline`` is a directory holding a ``rasp2d`` package
directory (the repository root of the older commit).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import hashlib, json, sys, time
sys.path.insert(0, {bench!r})
from hull_wasm_speed import prompt_of
from rasp2d.interpreter_spec.model_trace import generate_trace, sparse_machine
from pathlib import Path
prog = sparse_machine(Path({model!r}))
generate_trace(prog, prompt_of({first!r})[:8], 4)  # load the compiled step
out = {{}}
for name in {programs!r}:
    r = generate_trace(prog, prompt_of(name), {max_tokens})
    out[name] = [len(r.trace) / r.decode_seconds, len(r.trace),
                 hashlib.sha256(" ".join(r.trace).encode()).hexdigest()]
print("RESULT " + json.dumps(out))
"""


def run_child(tree: Path | None, model: Path, programs: list[str], max_tokens: int) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if tree is not None:
        env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    code = _CHILD.format(bench=str(HERE), model=str(model), first=programs[0],
                         programs=programs, max_tokens=max_tokens)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd="/")
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if res.returncode or line is None:
        raise SystemExit(f"decoding with {tree or 'this tree'} failed:\n{res.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", type=Path, required=True, metavar="DIR",
                   help="directory holding the baseline's rasp2d package directory")
    p.add_argument("--model", type=Path, required=True, metavar="PATH")
    p.add_argument("--programs", nargs="+", default=["fizzbuzz", "crc32", "primes", "hungarian"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=2_000_000)
    args = p.parse_args()
    if not (args.baseline / "rasp2d" / "backends" / "hull_kernels.py").exists():
        raise SystemExit(f"{args.baseline} holds no rasp2d/backends/hull_kernels.py; pass the "
                         "directory that contains the baseline's rasp2d package directory")
    sys.path.insert(0, str(HERE))
    from hull_wasm_speed import reference_trace

    refs = {}
    for name in args.programs:
        ref = reference_trace(name, args.max_tokens)
        refs[name] = None if ref is None else hashlib.sha256(" ".join(ref).encode()).hexdigest()
    speeds = {"base": {n: [] for n in args.programs}, "new": {n: [] for n in args.programs}}
    lengths = {}
    for _ in range(args.repeats):
        for label, tree in (("base", args.baseline), ("new", None)):
            got = run_child(tree, args.model, args.programs, args.max_tokens)
            for name, (tps, n, digest) in got.items():
                if refs[name] is not None and digest != refs[name]:
                    raise SystemExit(f"{name}: the {label} tree's trace differs from the "
                                     "reference interpreter's")
                speeds[label][name].append(tps)
                lengths[name] = n
    print(f"{'program':>10} {'trace':>9} {'base tok/s':>11} {'new tok/s':>11} {'new/base':>9}"
          f"   (medians of {args.repeats}, alternating runs)")
    for name in args.programs:
        b = statistics.median(speeds["base"][name])
        n = statistics.median(speeds["new"][name])
        checked = "= reference" if refs[name] is not None else "(over --max-tokens: unchecked)"
        print(f"{name:>10} {lengths[name]:>9,} {b:>11,.0f} {n:>11,.0f} {n / b:>8.2f}x   {checked}")


if __name__ == "__main__":
    main()
