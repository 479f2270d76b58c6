"""The WebAssembly spec test suite through the transformer: every `assert_return` and
`assert_trap` the compiled machine can run is executed inside it (hull backend) and its result
or trap, decoded from the generated tokens, must equal the suite's expectation.

How one command runs: the invocation becomes a program (`invocation.py`: a driver function
that pushes the arguments and calls the export, with the functions it cannot reach removed);
if `machine.check_supported` accepts that program, its prompt lays out the module's *current*
state (a reference `Machine` runs every command of the file in order, as `spec_suite.py` does,
so the globals and memory earlier commands changed are in the prompt), and the model generates
the trace until `HALT` or a trap token. Everything else is counted as skipped, with the reason
(first unsupported opcode, token-format limit, float values, ...). The counts grow by
themselves as the machine learns opcodes: nothing here lists them.

    python -m rasp2d.interpreter_spec.spec_model [SPEC_DIR] [--files i32,br_if] [--limit N]
                                                 [--max-steps N]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .decoder import MalformedModule, UnsupportedFeature, decode_module
from .invocation import invocation
from .layout import TraceFormatError, build_layout
from .machine import UnsupportedByMachine, check_supported, model_path
from .model_trace import generate_trace, sparse_machine
from .module import Module
from .program import flatten
from .prompt import build_prompt
from .reference import Machine
from .spec_suite import DEFAULT_SPEC_DIR, STEP_LIMIT, spec_folders, spectest_host
from .trace import decode_trace
from .traps import StepLimitExceeded, Trap, UnsupportedAtRuntime

CHECKED = ("assert_return", "assert_trap")
ADVANCES_STATE = ("action", "assert_exhaustion")  # run on the reference only
DEFAULT_MAX_STEPS = 100_000
"""Commands whose reference run is longer are skipped by default (a few memory-filling loops
of memory_grow run over a million instructions: minutes each inside the model)."""
TOKENS_PER_STEP_BOUND = 300
"""Generation budget per reference instruction: a step is at most 3 entry tokens and a body of
at most 8 value bytes + FH FL, or a call's FH FL and up to 255 Z; a model that has gone wrong
stops there instead of running on."""


@dataclass
class ModelFileReport:
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    tokens: int = 0  # prompt + generated, over the commands run in the model
    seconds: float = 0.0  # model time (prefill + decoding)
    failures: list[str] = field(default_factory=list)
    skip_reasons: Counter = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] += 1


@dataclass
class _Instance:
    module: Module
    machine: Machine


def _reason(exc: Exception) -> str:
    """A skip reason without pc numbers or advice, so equal causes count together."""
    text = re.sub(r"^pc \d+: ", "", str(exc))
    text = text.replace(" (use --backend reference)", "")
    text = re.sub(r" at byte offset 0x[0-9a-f]+", "", text)
    text = re.sub(r"^function \S+ cannot run here: ", "", text)
    text = re.sub(r"\bfunction \S+ (has|returns)", r"a function \1", text)
    if isinstance(exc, UnsupportedByMachine):
        return f"machine: {text}"
    if isinstance(exc, TraceFormatError):
        return f"token format: {text}"
    return text


def _values(vals: list[dict]) -> list[int] | None:
    if any(v["type"] not in ("i32", "i64") for v in vals):
        return None
    return [int(v["value"]) for v in vals]


class _FileRunner:
    def __init__(self, folder: Path, machine, limit: int | None, max_steps: int | None) -> None:
        self.folder = folder
        self.model = machine
        self.limit = limit
        self.max_steps = max_steps
        self.report = ModelFileReport(folder.name)
        self.current: _Instance | None = None
        self.current_skip = "no module yet"
        self.named: dict[str, _Instance | None] = {}

    @property
    def done(self) -> bool:
        return self.limit is not None and self.report.passed + self.report.failed >= self.limit

    def load(self, cmd: dict) -> None:
        self.current = None
        try:
            module = decode_module((self.folder / cmd["filename"]).read_bytes(), lenient=True)
            self.current = _Instance(module, Machine(flatten(module), host=spectest_host()))
        except UnsupportedFeature as exc:
            self.current_skip = f"module unsupported ({exc.message})"
        except (MalformedModule, Trap, UnsupportedAtRuntime) as exc:
            self.current_skip = f"module did not load ({exc})"
        if "name" in cmd:
            self.named[cmd["name"]] = self.current

    def reference(self, inst: _Instance, action: dict, args: list[int]):
        """Run the command on the reference machine (advancing its state): (results, trap,
        steps) or an exception naming why it cannot run."""
        m = inst.machine
        before = m.steps
        try:
            results = m.invoke(action["field"], args, max_steps=STEP_LIMIT)
            return results, None, m.steps - before
        except Trap as exc:
            return None, exc.message, m.steps - before

    def command(self, cmd: dict) -> None:
        kind, r = cmd["type"], self.report
        if kind == "module":
            self.load(cmd)
            return
        if kind not in CHECKED + ADVANCES_STATE:
            return
        action = cmd["action"]
        inst = self.named.get(action["module"]) if "module" in action else self.current
        if action["type"] != "invoke":
            if kind in CHECKED:
                r.skip("not an invocation (global get)")
            return
        args = _values(action.get("args", []))
        expected = _values(cmd.get("expected", [])) if kind == "assert_return" else []
        if inst is None or args is None or (kind in CHECKED and expected is None):
            if kind in CHECKED:
                r.skip(self.current_skip if inst is None else "float or reference values")
            return
        prompt, why = None, None
        if kind in CHECKED:
            try:
                inv = invocation(inst.module, action["field"], args)
                layout = build_layout(inv.module)
                check_supported(layout)
                prompt = build_prompt(layout, inv.entry, (), b"", instance=inst.machine)
                driver_steps = len(args) + 2
            except (TraceFormatError, UnsupportedByMachine, ValueError) as exc:
                why = _reason(exc)
        try:  # the prompt holds the state before the command; now advance it
            _, _, steps = self.reference(inst, action, args)
        except (UnsupportedAtRuntime, StepLimitExceeded) as exc:
            if kind in CHECKED:
                r.skip(f"reference cannot run it ({_reason(exc)})")
            return
        if kind not in CHECKED:
            return
        if prompt is None:
            r.skip(why or "not run")
            return
        if self.max_steps is not None and steps > self.max_steps:
            r.skip(f"longer than {self.max_steps:,} instructions (--max-steps 0 runs it)")
            return
        self.run_in_model(cmd, prompt, TOKENS_PER_STEP_BOUND * (steps + driver_steps) + 64)

    def run_in_model(self, cmd: dict, prompt: list[str], budget: int) -> None:
        from rasp2d.backends.hull_cache import ExactnessError
        r = self.report
        where = f"{self.folder.name}.wast:{cmd['line']}: {cmd['action']['field']}"
        try:
            got = generate_trace(self.model, prompt, budget)
        except ExactnessError as exc:
            r.failed += 1
            r.failures.append(f"{where}: the hull runtime refused: {exc}")
            return
        r.tokens += len(prompt) + len(got.trace)
        r.seconds += got.seconds
        out = decode_trace(tuple(prompt) + got.trace)
        if cmd["type"] == "assert_trap":
            ok, want = out.trap == cmd["text"], f"trap {cmd['text']!r}"
        else:
            want_values = tuple(int(v["value"]) for v in cmd["expected"])
            ok, want = out.results == want_values, f"results {list(want_values)}"
        if ok:
            r.passed += 1
            return
        seen = (f"trap {out.trap!r}" if out.trap else f"results {list(out.results)}"
                if out.results is not None else f"no end within {budget} tokens")
        r.failed += 1
        r.failures.append(f"{where}: expected {want}, the model gave {seen}")


def run_spec_file_in_model(folder: Path, *, limit: int | None = None,
                           max_steps: int | None = DEFAULT_MAX_STEPS,
                           machine=None) -> ModelFileReport:
    """Run one converted .wast folder through the compiled machine; `limit` stops after that
    many commands ran in the model (the default tests' fast subset); commands whose reference
    run exceeds `max_steps` instructions are skipped (None: no cap)."""
    runner = _FileRunner(folder, machine if machine is not None else sparse_machine(model_path()),
                         limit, max_steps)
    for cmd in json.loads((folder / f"{folder.name}.json").read_text())["commands"]:
        if runner.done:
            break
        runner.command(cmd)
    return runner.report


def format_table(reports: Sequence[ModelFileReport]) -> str:
    lines = [f"{'file':<20} {'pass':>6} {'fail':>6} {'skip':>6} {'tokens':>10} {'model s':>8}"]
    total = ModelFileReport("TOTAL")
    for r in list(reports) + [total]:
        if r is not total:
            total.passed += r.passed
            total.failed += r.failed
            total.skipped += r.skipped
            total.tokens += r.tokens
            total.seconds += r.seconds
        lines.append(f"{r.name:<20} {r.passed:>6} {r.failed:>6} {r.skipped:>6} {r.tokens:>10,} "
                     f"{r.seconds:>8.1f}")
    lines.append("assert_return / assert_trap only; pass = the model's decoded result or trap "
                 "equals the suite's")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rasp2d.interpreter_spec.spec_model",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("spec_dir", nargs="?", type=Path, default=DEFAULT_SPEC_DIR)
    parser.add_argument("--files", default=None, help="comma-separated folder names (default: all)")
    parser.add_argument("--limit", type=int, default=None,
                        help="per file, stop after this many commands ran in the model")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS,
                        help="skip commands whose reference run is longer (0: no cap; default "
                             f"{DEFAULT_MAX_STEPS:,})")
    args = parser.parse_args(argv)
    folders = spec_folders(args.spec_dir)
    if args.files:
        wanted = set(args.files.split(","))
        folders = [f for f in folders if f.name in wanted]
    if not folders:
        print(f"no spec test suite found at {args.spec_dir} (see DESIGN.md section 6)",
              file=sys.stderr)
        return 2
    machine = sparse_machine(model_path())
    reports = []
    started = time.perf_counter()
    for f in folders:
        reports.append(run_spec_file_in_model(f, limit=args.limit, machine=machine,
                                              max_steps=args.max_steps or None))
        print(f"  {f.name}: {reports[-1].passed} passed, {reports[-1].failed} failed, "
              f"{reports[-1].skipped} skipped", file=sys.stderr, flush=True)
    print(format_table(reports))
    print(f"wall time {time.perf_counter() - started:.1f}s")
    reasons: Counter = Counter()
    for r in reports:
        reasons.update(r.skip_reasons)
    print("\nskip reasons:")
    for reason, n in reasons.most_common():
        print(f"  {n:5d}  {reason}")
    failures = [f for r in reports for f in r.failures]
    if failures:
        print(f"\nfailures: {len(failures)}")
        for f in failures:
            print(f"  {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
