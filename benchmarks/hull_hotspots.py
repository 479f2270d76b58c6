"""Where the jitted decoding loop spends its time, instruction by instruction.

    python benchmarks/hull_hotspots.py                       # sudoku, 1M tokens
    python benchmarks/hull_hotspots.py fizzbuzz --tokens 300000 --top 12 --show 2

Samples the CPU with ``perf record -e cpu-clock`` (a software clock: it works on VMs without
hardware counters) while the hull runtime decodes a WASM example after its prompt, and maps the
sampled instruction addresses onto the machine code of ``hull_kernels.decode_loop`` (its
address from numba's code library, its bytes copied out with ctypes, disassembled with
``objdump``).  Prints the share of samples inside the loop, the hottest 256-byte windows of its
code, and the instructions of the ``--show`` hottest windows with their sample counts.

Why a tool and not a guess: the step is one numba function of ~50 KB whose time is spread over
short, data-dependent loops, and it was this listing that showed numba's negative-index
wraparound (``sar``/``and``/``add`` of a length reloaded from the stack) inside the FFN's
loops, a fifth of the step (hence ``hull_kernels._U``).  A sample lands on the instruction
*after* a slow one, typically the one waiting for a load.  Needs ``perf`` and ``objdump``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import ctypes  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

CODE_BYTES = 1 << 20  # copied from the loop's entry: more than its code, less than its mapping
WINDOW = 256


def child(program: str, tokens: int, out: Path) -> None:
    """Decode ``tokens`` tokens of ``program`` after writing the loop's address and code."""
    from hull_wasm_speed import prompt_of

    from rasp2d.backends import hull_kernels as hk
    from rasp2d.backends.hull_runtime import HullDecoder
    from rasp2d.backends.model_file import CompiledModel
    from rasp2d.backends.sparse_program import sparse_program
    from rasp2d.interpreter_spec.machine import model_path
    from rasp2d.interpreter_spec.vocab import TOKEN_ID

    prog = sparse_program(CompiledModel.load(model_path()))
    prompt = [TOKEN_ID[t] for t in prompt_of(program)]
    dec = HullDecoder(prog)
    dec.generate(prompt[:-1], 1)
    dec.generate([prompt[-1]], 64)  # compiled (or loaded from numba's cache) by now
    (cres,) = hk.decode_loop.overloads.values()
    addr = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
    (out / "code.bin").write_bytes(ctypes.string_at(addr, CODE_BYTES))
    (out / "addr.txt").write_text(str(addr))
    dec = HullDecoder(prog)
    dec.generate(prompt[:-1], 1)
    t0 = time.perf_counter()
    dec.generate([prompt[-1]], tokens)
    print(f"{program}: {tokens:,} tokens at {tokens / (time.perf_counter() - t0):,.0f} tok/s "
          "(under perf)", flush=True)


def disassembly(code: Path, size: int) -> list[tuple[int, str]]:
    """(offset, instruction) for the first ``size`` bytes of the loop's code."""
    text = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", str(code)],
                          capture_output=True, text=True, check=True).stdout
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(.*)", line)
        if m:
            off = int(m.group(1), 16)
            if off > size:
                break
            if m.group(2).strip():
                rows.append((off, m.group(2).strip()))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("program", nargs="?", default="sudoku")
    p.add_argument("--tokens", type=int, default=1_000_000)
    p.add_argument("--top", type=int, default=20, help="windows listed")
    p.add_argument("--show", type=int, default=3, help="hottest windows disassembled")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child(args.program, args.tokens, args.child)
        return
    missing = [tool for tool in ("perf", "objdump") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"hull_hotspots needs {' and '.join(missing)} on PATH (linux-perf, binutils)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        data = out / "perf.data"
        cmd = [sys.executable, __file__, args.program, "--tokens", str(args.tokens),
               "--child", str(out)]
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-o", str(data),
                        "--", *cmd], check=True)
        ips = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip"],
                             capture_output=True, text=True, check=True).stdout.split()
        addr = int((out / "addr.txt").read_text())
        offs = [int(ip, 16) - addr for ip in ips]
        inside = collections.Counter(o for o in offs if 0 <= o < CODE_BYTES)
        if not inside:
            sys.exit("no sample landed in decode_loop: decode longer (--tokens)")
        rows = disassembly(out / "code.bin", max(inside) + 64)
    n = sum(inside.values())
    print(f"{len(offs):,} samples, {n:,} ({n / len(offs):.0%}) inside decode_loop "
          f"(the rest: prompt, compilation, Python); its code ~{max(inside) // 1024} KB")
    windows = collections.Counter({o // WINDOW: 0 for o, _ in rows})
    for o, c in inside.items():
        windows[o // WINDOW] += c
    cum = 0
    print(f"hottest {WINDOW}-byte windows of its code:")
    for w, c in windows.most_common(args.top):
        cum += c
        print(f"  {w * WINDOW:6x}-{(w + 1) * WINDOW - 1:6x}  {c / n:6.1%}   cumulative {cum / n:6.1%}")
    for w, c in windows.most_common(args.show):
        print(f"--- window {w * WINDOW:x} ({c / n:.1%}): offset, samples, instruction")
        for o, ins in rows:
            if o // WINDOW == w:
                print(f"  {o:6x} {inside.get(o, 0):6d}  {ins}")


if __name__ == "__main__":
    main()
