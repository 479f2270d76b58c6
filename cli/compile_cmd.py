"""`rasp2d compile SPEC.rasp2d -o MODEL.npz`."""

from __future__ import annotations

import sys
from pathlib import Path

from rasp2d.lang.errors import Rasp2dError


def add_arguments(p) -> None:
    p.add_argument("spec", help="the .rasp2d program")
    p.add_argument("-o", "--output", help="where to write the model (default: SPEC with .npz)")
    p.add_argument("-I", "--include", action="append", default=[],
                   help="extra folder to search for imported modules (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def run(args) -> int:
    from rasp2d.compiler.api import compile_file
    out = Path(args.output) if args.output else Path(args.spec).with_suffix(".npz")
    try:
        res = compile_file(args.spec, search_path=tuple(Path(p) for p in args.include))
    except Rasp2dError as exc:
        print(exc, file=sys.stderr)
        return 1
    res.model.save(out)
    if not args.quiet:
        m = res.model
        print(f"compiled {args.spec} -> {out}")
        print(f"  layers         {m.n_layers}")
        print(f"  d_model        {m.d_model}  ({res.allocation.n_dims} residual dimensions in use)")
        print(f"  heads/layer    {m.n_heads}  ({m.used_heads()} used in total)")
        print(f"  FFN width      {m.d_ffn}")
        print(f"  non-zero wts   {m.nonzero_weights()}")
        print(f"  vocabulary     {len(m.vocab)} tokens")
        times = " ".join(f"{k}={v * 1000:.1f}ms" for k, v in res.seconds.items())
        print(f"  compile time   {res.total_seconds:.3f}s ({times})")
    return 0
