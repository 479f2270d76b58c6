"""Compiled model sizes: the classic placement vs fused sums + placement search, side by side.

    python benchmarks/model_size.py                       # examples + the WASM machine
    python benchmarks/model_size.py --extra-layers 1      # also the +1 layer trade
    python benchmarks/model_size.py my.rasp2d other.rasp2d

Every program is compiled from scratch once per placement; `compile s` is the whole compile
(parse to weights), `place s` the fuse + schedule + allocate part of it.  Dense MB is the float64
weight arrays as the model file stores them; the ratio column is classic / new.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rasp2d.compiler.api import CLASSIC, CompileResult, Placement, compile_file

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROGRAMS = sorted((ROOT / "examples").glob("*.rasp2d")) + [ROOT / "interpreter_spec" / "wasm.rasp2d"]
ARRAYS = ("embed", "pos_embed", "W_q", "W_k", "W_v", "W_o", "tie", "W_gate", "W_val", "W_out", "unembed")


def measure(path: Path, placement: Placement) -> dict[str, float]:
    t0 = time.perf_counter()
    res: CompileResult = compile_file(path, placement=placement)
    total = time.perf_counter() - t0
    m = res.model
    return {"layers": m.n_layers, "d_model": m.d_model, "heads": m.used_heads(), "ffn": m.d_ffn,
            "nonzero": m.nonzero_weights(), "MB": sum(getattr(m, a).nbytes for a in ARRAYS) / 1e6,
            "compile_s": total, "place_s": res.seconds["place"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("programs", nargs="*", type=Path, help="programs to compile (default: examples + wasm)")
    ap.add_argument("--extra-layers", type=int, default=0, help="also compile with this many extra layers")
    args = ap.parse_args()
    setups = [("classic", CLASSIC), ("narrow", Placement())]
    if args.extra_layers:
        setups.append((f"narrow+{args.extra_layers}", Placement(extra_layers=args.extra_layers)))
    cols = ("layers", "d_model", "heads", "ffn", "nonzero", "MB", "compile_s", "place_s")
    print(f"{'program':<14}{'placement':<12}" + "".join(f"{c:>11}" for c in cols) + f"{'MB ratio':>10}")
    for path in args.programs or DEFAULT_PROGRAMS:
        base = None
        for name, placement in setups:
            r = measure(path, placement)
            base = base or r
            cells = "".join(f"{r[c]:>11.2f}" if isinstance(r[c], float) else f"{r[c]:>11}" for c in cols)
            print(f"{path.stem:<14}{name:<12}{cells}{base['MB'] / r['MB']:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
