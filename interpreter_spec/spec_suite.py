"""Conformance harness for the WebAssembly spec test suite (wast2json output).

The suite lives outside the repository, in `shared/wasm-spec/` beside the repository root (see
its README); nothing from it is copied here. Each folder holds NAME.json (the command list) and
the .wasm modules it names. We run every `assert_return`, `assert_trap`, `assert_exhaustion`,
`assert_uninstantiable` and plain `action` whose module and values are integer-only; modules are
decoded leniently so that the integer functions of a module that also contains float functions
still run. Everything not run is counted as skipped, with the reason. `assert_invalid`,
`assert_malformed` and `assert_unlinkable` are out of scope (this machine does not validate
rejected modules) and are only counted.

    python -m rasp2d.interpreter_spec.spec_suite [SPEC_DIR]   # prints the per-file table
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .decoder import MalformedModule, UnsupportedFeature, decode_module
from .module import ExternKind
from .program import Program, flatten
from .reference import Machine
from .stepper import Stepper
from .traps import StepLimitExceeded, Trap, UnsupportedAtRuntime

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC_DIR = REPO_ROOT.parent / "shared" / "wasm-spec"
RUN_KINDS = ("assert_return", "assert_trap", "assert_exhaustion", "assert_uninstantiable", "action")
NOT_ATTEMPTED = ("assert_invalid", "assert_malformed", "assert_unlinkable")
STEP_LIMIT = 50_000_000  # no spec command comes close; a hang becomes a failure instead
INTEGER_TYPES = ("i32", "i64")


def spectest_host() -> dict:
    """The `spectest` module the suite imports from (print functions do nothing)."""
    host: dict = {("spectest", "global_i32"): 666, ("spectest", "global_i64"): 666}
    for name in ("print", "print_i32", "print_i64", "print_i32_f32", "print_f64_f64",
                 "print_f32", "print_f64"):
        host[("spectest", name)] = lambda *args: None
    return host


@dataclass
class FileReport:
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    not_attempted: int = 0
    failures: list[str] = field(default_factory=list)
    skip_reasons: Counter = field(default_factory=Counter)
    skipped_modules: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] += 1

    def fail(self, line: int, message: str) -> None:
        self.failed += 1
        self.failures.append(f"{self.name}.wast:{line}: {message}")


def _value(v: dict) -> int:
    return int(v["value"])


def _is_integer(values: list[dict]) -> bool:
    return all(v["type"] in INTEGER_TYPES for v in values)


class _FileRunner:
    def __init__(self, folder: Path, traced: bool) -> None:
        self.folder = folder
        self.traced = traced
        self.report = FileReport(folder.name)
        self.current: Machine | None = None
        self.current_skip: str | None = "no module yet"
        self.named: dict[str, Machine | None] = {}

    def load(self, filename: str) -> Program | None:
        """Decode and flatten one module; None (and the module listed as skipped) if unsupported."""
        data = (self.folder / filename).read_bytes()
        try:
            return flatten(decode_module(data, lenient=True))
        except UnsupportedFeature as exc:
            self.report.skipped_modules.append(f"{filename}: {exc}")
            self.current_skip = f"module unsupported ({exc.message})"
            return None

    def command(self, cmd: dict) -> None:
        kind, line = cmd["type"], cmd["line"]
        r = self.report
        if kind == "module":
            self.current = None
            try:
                program = self.load(cmd["filename"])
                if program is not None:
                    self.current = Machine(program, host=spectest_host())
                    self.current_skip = None
            except (MalformedModule, Trap, UnsupportedAtRuntime) as exc:
                r.fail(line, f"module {cmd['filename']} did not load: {exc}")
                self.current_skip = "module failed to load"
            if "name" in cmd:
                self.named[cmd["name"]] = self.current
            return
        if kind in NOT_ATTEMPTED:
            r.not_attempted += 1
            return
        if kind == "register":
            return
        if kind == "assert_uninstantiable":
            try:
                program = self.load(cmd["filename"])
            except MalformedModule as exc:
                r.fail(line, f"module did not decode: {exc}")
                return
            if program is None:
                r.skip(self.current_skip or "module unsupported")
                return
            try:
                Machine(program, host=spectest_host())
            except Trap as exc:
                if exc.message == cmd["text"]:
                    r.passed += 1
                else:
                    r.fail(line, f"expected trap {cmd['text']!r}, got {exc.message!r}")
                return
            except UnsupportedAtRuntime as exc:
                r.skip(f"unsupported at runtime ({exc})")
                return
            r.fail(line, f"expected instantiation to trap with {cmd['text']!r}")
            return
        if kind not in RUN_KINDS:
            r.fail(line, f"unknown command type {kind}")
            return
        action = cmd["action"]
        machine = self.named.get(action["module"]) if "module" in action else self.current
        if machine is None:
            r.skip(self.current_skip or "module unsupported")
            return
        args = action.get("args", [])
        expected = cmd.get("expected", [])
        if not _is_integer(args) or not _is_integer(expected):
            r.skip("float or reference values")
            return
        try:
            if action["type"] == "get":
                index = next(i for n, k, i in machine.program.exports
                             if n == action["field"] and k == ExternKind.GLOBAL)
                results: tuple[int, ...] = (machine.globals[index],)  # type: ignore[assignment]
            elif self.traced:
                machine.begin(action["field"], [_value(a) for a in args])
                for _ in Stepper(machine).run(STEP_LIMIT):
                    pass
                results = machine.results
            else:
                results = machine.invoke(action["field"], [_value(a) for a in args],
                                         max_steps=STEP_LIMIT)
        except UnsupportedAtRuntime as exc:
            why = re.sub(r" at byte offset 0x[0-9a-f]+", "", str(exc).split(": ", 1)[-1])
            r.skip(f"function uses an unsupported feature ({why})")
            return
        except Trap as exc:
            if kind == "assert_trap" or kind == "assert_exhaustion":
                if exc.message == cmd["text"]:
                    r.passed += 1
                else:
                    r.fail(line, f"{action['field']}: expected trap {cmd['text']!r}, "
                                 f"got {exc.message!r}")
            else:
                r.fail(line, f"{action['field']}: unexpected trap {exc}")
            return
        except StepLimitExceeded:
            r.fail(line, f"{action['field']}: ran past {STEP_LIMIT} instructions")
            return
        if kind in ("assert_trap", "assert_exhaustion"):
            r.fail(line, f"{action['field']}: expected trap {cmd['text']!r}, returned {results}")
        elif kind == "action":
            r.passed += 1
        elif list(results) == [_value(v) for v in expected]:
            r.passed += 1
        else:
            r.fail(line, f"{action['field']}{tuple(_value(a) for a in args)}: expected "
                         f"{[_value(v) for v in expected]}, got {list(results)}")


def run_spec_file(folder: Path, *, traced: bool = False) -> FileReport:
    """Run one converted .wast folder (FOLDER/FOLDER.json plus its modules), through the fast
    loop or, with `traced`, through the stepper."""
    runner = _FileRunner(folder, traced)
    data = json.loads((folder / f"{folder.name}.json").read_text())
    for cmd in data["commands"]:
        runner.command(cmd)
    return runner.report


def spec_folders(spec_dir: Path = DEFAULT_SPEC_DIR) -> list[Path]:
    if not spec_dir.is_dir():
        return []
    return sorted(p for p in spec_dir.iterdir() if (p / f"{p.name}.json").is_file())


def format_table(reports: list[FileReport]) -> str:
    lines = [f"{'file':<20} {'pass':>6} {'fail':>6} {'skip':>6} {'not run*':>9}"]
    total = FileReport("TOTAL")
    for r in reports:
        lines.append(f"{r.name:<20} {r.passed:>6} {r.failed:>6} {r.skipped:>6} {r.not_attempted:>9}")
        total.passed += r.passed
        total.failed += r.failed
        total.skipped += r.skipped
        total.not_attempted += r.not_attempted
    lines.append(f"{'TOTAL':<20} {total.passed:>6} {total.failed:>6} {total.skipped:>6} "
                 f"{total.not_attempted:>9}")
    lines.append("* assert_invalid / assert_malformed / assert_unlinkable: out of scope")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_dir = Path(argv[0]) if argv else DEFAULT_SPEC_DIR
    folders = spec_folders(spec_dir)
    if not folders:
        print(f"no spec test suite found at {spec_dir} (see DESIGN.md section 6)", file=sys.stderr)
        return 2
    reports = [run_spec_file(f) for f in folders]
    print(format_table(reports))
    reasons: Counter = Counter()
    modules: list[str] = []
    for r in reports:
        reasons.update(r.skip_reasons)
        modules += r.skipped_modules
    print("\nskip reasons:")
    for reason, n in reasons.most_common():
        print(f"  {n:5d}  {reason}")
    print(f"\nmodules rejected as unsupported: {len(modules)}")
    for m in modules:
        print(f"  {m}")
    failures = [f for r in reports for f in r.failures]
    if failures:
        print(f"\nfailures: {len(failures)}")
        for f in failures:
            print(f"  {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
