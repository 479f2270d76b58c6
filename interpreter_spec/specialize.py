"""Program specialisation (the first Futamura projection): one program baked into the weights.

The general machine (`wasm.rasp2d`) fetches an instruction by attention: `op` and the field
bytes `f0..f8` are look-ups into the prompt's `PROG` section at position `2 + 11 * pc`. For a
fixed program those look-ups are a finite function of `pc`, so the specialised machine computes
them with `table(pc, {...})` (ReGLU units of an FFN layer; keyed by pc before its clamp, so
the tables take the clamp's layer) instead, and its prompt's `PROG` section is empty. Everything else in the interpreter is kept as written, so the trace it
generates is the general machine's, token for token; only the prompt shrinks (by 11 tokens per
instruction), and so does every attention cache.

The fetch block is found in `wasm.rasp2d` between the lines `# ---- fetch begin` and
`# ---- fetch end`, or (older sources) as the section whose header line mentions `fetch`, up to
the next `# ----` header. Inside it each `let op = ...` and `let f<i> = ...` is replaced; the
other lines (S, X, Y derived from the fields) stay. A source in which anything outside the block
still reads the `PROG` layout (the name `at`) is refused, since its answers would be wrong.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .layout import Layout, as_layout, entry_function
from .machine import SPEC, check_supported
from .module import Module
from .prompt import build_prompt
from .vocab import OPCODES

FETCH_BEGIN = "# ---- fetch begin"
FETCH_END = "# ---- fetch end"
SECTION = "# ----"
_FETCHED = re.compile(r"^let\s+(op|f(\d+))\s*(?::[^=]*)?=")
_AT_USE = re.compile(r"\bat\b")
_PC_DEF = re.compile(r"^let\s+pc\s*=\s*clamp\((?P<e>.+),\s*-?\d+\s*,\s*-?\d+\s*\)\s*(#.*)?$")
FETCH_KEY = "fetch_pc"


class SpecialisationError(ValueError):
    """wasm.rasp2d no longer has the shape specialisation relies on (the message says what)."""


@dataclass(frozen=True)
class FetchBlock:
    begin: int  # first line of the block (0-based), the header / begin marker excluded
    end: int  # one past its last line
    defined: tuple[str, ...]  # fetched names the block defines (op, f0, ...)


def find_fetch_block(lines: Sequence[str]) -> FetchBlock:
    """Where the fetch definitions are, by the marker lines or the `fetch` section header."""
    starts = [i for i, line in enumerate(lines) if line.strip().startswith(FETCH_BEGIN)]
    if starts:
        ends = [i for i, line in enumerate(lines) if line.strip().startswith(FETCH_END)
                and i > starts[0]]
        if len(starts) != 1 or not ends:
            raise SpecialisationError(f"expected one '{FETCH_BEGIN}' line followed by "
                                      f"'{FETCH_END}' in the machine source")
        begin, end = starts[0] + 1, ends[0]
    else:
        headers = [i for i, line in enumerate(lines)
                   if line.startswith(SECTION) and "fetch" in line]
        if len(headers) != 1:
            raise SpecialisationError(f"the machine source has no '{FETCH_BEGIN}' / "
                                      f"'{FETCH_END}' lines and {len(headers)} section headers "
                                      "mentioning 'fetch' (need exactly one)")
        begin = headers[0] + 1
        end = next((i for i in range(begin, len(lines)) if lines[i].startswith(SECTION)),
                   len(lines))
    defined = tuple(m.group(1) for line in lines[begin:end] if (m := _FETCHED.match(line)))
    if "op" not in defined:
        raise SpecialisationError("the fetch block does not define `op`; specialisation does "
                                  "not know what to replace")
    return FetchBlock(begin, end, defined)


def _unclamped_pc(lines: Sequence[str]) -> str:
    """The expression the tables are keyed by: `pc` without its clamp when the source clamps it.

    The clamp only bounds pc for the look-ups' exactness; a table needs no bound (keys outside
    the program give the default), and skipping it lets the tables sit in the FFN layer the
    clamp takes, so the fetched fields arrive in the same attention layer as the general
    machine's fetch heads."""
    for line in lines:
        m = _PC_DEF.match(line.strip())
        if m is not None:
            return m.group("e").strip()
    return "pc"


def _table(name: str, values: Sequence[int | str]) -> str:
    """`let name = table(pc, {...}, default=d)`: entries equal to the most common value are
    left to the default, so the table costs units only where the program varies.

    A field byte is read back through a head at its own position (`lookup(indices, indices,
    ...)`): the compiler bounds a table's ReLU sum over all of pc's range (huge), and sums of
    such bounds (`fb + S`, an address `A + X`) would break its exactness limits, whereas a
    head's output carries the value's own range (0..255). `op` is only compared, so it needs
    no such step."""
    default = Counter(values).most_common(1)[0][0] if values else 0

    def lit(v: int | str) -> str:
        return f'"{v}"' if isinstance(v, str) else str(v)

    entries = ", ".join(f"{pc}: {lit(v)}" for pc, v in enumerate(values) if v != default)
    table = f"table({FETCH_KEY}, {{{entries}}}, default={lit(default)})"
    if name == "op":
        return f"let {name} = {table}"
    return f"let {name} = lookup(indices, indices, {table})"


def fetched_values(layout: Layout) -> dict[str, list[int | str]]:
    """Per fetched name, its value at every pc: `op` the OP_ token, `f<i>` field byte i."""
    fields = [f.bytes() for f in layout.fields]
    out: dict[str, list[int | str]] = {"op": [OPCODES[ins.op] for ins in layout.program.code]}
    for i in range(len(fields[0]) if fields else 10):
        out[f"f{i}"] = [b[i] for b in fields]
    return out


def specialised_source(program: Module | Layout, source: str | None = None) -> str:
    """The machine's source with the fetch look-ups replaced by tables of this program."""
    layout = as_layout(program)
    src = SPEC.read_text() if source is None else source
    lines = src.splitlines()
    block = find_fetch_block(lines)
    for i, line in enumerate(lines):
        if not block.begin <= i < block.end and _AT_USE.search(line.split("#", 1)[0]):
            raise SpecialisationError(f"line {i + 1} reads `at` (the PROG layout) outside the "
                                      "fetch block; the specialised machine has no PROG section")
    values = fetched_values(layout)
    if not layout.program.code:
        raise SpecialisationError("the program has no instructions")
    body = [f"let {FETCH_KEY} = {_unclamped_pc(lines)}"]
    for line in lines[block.begin:block.end]:
        m = _FETCHED.match(line)
        if m is None:
            body.append(line)
            continue
        name = m.group(1)
        if name not in values:
            raise SpecialisationError(f"the fetch block defines {name}, which is not an "
                                      "instruction field")
        body.append(_table(name, values[name]))
    rest = lines[:block.begin] + lines[block.end:]
    body = [line for line in body if not _unused(line, rest + body)]
    note = [f"# specialised: {len(layout.program.code)} instructions baked into tables of pc"]
    return "\n".join(lines[:block.begin] + note + body + lines[block.end:]) + "\n"


def _unused(line: str, lines: Sequence[str]) -> bool:
    """A `let` whose name nothing else reads any more (the PROG position `at`)."""
    m = re.match(r"^let\s+(\w+)\s*(?::[^=]*)?=", line)
    if m is None:
        return False
    use = re.compile(rf"\b{m.group(1)}\b")
    return not any(use.search(other.split("#", 1)[0]) for other in lines if other is not line)


@dataclass(frozen=True)
class SpecialisedMachine:
    layout: Layout
    source: str
    result: object  # rasp2d.compiler.api.CompileResult

    @property
    def model(self):
        return self.result.model

    def prompt(self, entry: int | str, args: Sequence[int] = (), input_bytes: bytes = b"",
               **kw) -> list[str]:
        """The prompt without instructions (the `PROG` marker alone)."""
        fn = entry_function(self.layout, entry)
        return build_prompt(self.layout, fn.index, args, input_bytes, with_program=False, **kw)


def specialise(program: Module | Layout) -> SpecialisedMachine:
    """Compile the machine specialised to `program` (refused like the general machine when it
    uses an opcode the machine does not implement)."""
    from rasp2d.compiler.api import compile_source
    layout = as_layout(program)
    check_supported(layout)
    source = specialised_source(layout)
    return SpecialisedMachine(layout, source, compile_source(source, str(SPEC)))


def specialised_model_path(program: Module | Layout) -> Path:
    """The specialised machine as a model file, cached by its source (with the stdlib and the
    compiler, as the general machine)."""
    from rasp2d.cache import cache_dir

    from .machine import cache_key
    layout = as_layout(program)
    check_supported(layout)
    source = specialised_source(layout)
    path = cache_dir() / f"wasm-special-{cache_key(source.encode())}.npz"
    if not path.exists():
        from rasp2d.compiler.api import compile_source
        compile_source(source, str(SPEC)).model.save(path)
    return path




def run_specialised(module, entry: str, input_bytes: bytes = b"", *, backend: str = "hull",
                    max_tokens: int = 50_000_000, progress=None):
    """`machine.run_in_model` with the machine specialised to this program (and its prompt
    without PROG): the same trace, fewer prompt tokens."""
    from .machine import decode_run, startable_entry

    layout = as_layout(module)
    check_supported(layout)
    prompt = build_prompt(layout, startable_entry(layout, entry), (), input_bytes, with_program=False)
    return decode_run(specialised_model_path(layout), prompt, backend=backend, max_tokens=max_tokens,
                      progress=progress)


__all__ = ["SpecialisationError", "SpecialisedMachine", "specialise", "specialised_source",
           "specialised_model_path", "run_specialised", "find_fetch_block", "fetched_values",
           "FETCH_BEGIN", "FETCH_END"]
