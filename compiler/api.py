"""Compile a .rasp2d program: the pipeline, its timings and the source bundle.

parse -> elaborate (typed graph) -> lower (heads, ReGLU units) -> schedule (layers) ->
allocate (residual dimensions) -> weights (+ manifest).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from rasp2d.backends.model_file import CompiledModel, Generation
from rasp2d.compiler.allocate import Allocation, allocate
from rasp2d.compiler.elaborate import elaborate
from rasp2d.compiler.graph import Graph
from rasp2d.compiler.lower import lower
from rasp2d.compiler.primitives import Lowered
from rasp2d.compiler.schedule import Schedule, schedule
from rasp2d.compiler.weights import emit_weights
from rasp2d.lang.parser import parse, parse_file


@dataclass
class CompileResult:
    model: CompiledModel
    graph: Graph
    lowered: Lowered
    schedule: Schedule
    allocation: Allocation
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def _width(low: Lowered, sch: Schedule, alloc: Allocation) -> int:
    """d_model a placement leads to: residual dimensions, or twice the busiest layer's heads."""
    heads = max((len(sch.heads_in(l)) for l in range(sch.n_layers)), default=0)
    return max(alloc.n_dims, 2 * heads)


def _compile(module, search_path=(), files=None) -> CompileResult:
    t = {}
    t0 = time.perf_counter()
    graph, sources = elaborate(module, tuple(search_path), files)
    t["elaborate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    low = lower(graph)
    t["lower"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # both placements have the minimum depth; keep the one that needs the narrower stream
    candidates = [(s, allocate(low, s)) for s in (schedule(low), schedule(low, late=True))]
    t["schedule"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sch, alloc = min(candidates, key=lambda c: (_width(low, *c), c[0].n_layers))
    t["allocate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bundle = json.dumps({"main": module.path, "files": sources})
    gen = Generation(prompt_end=graph.prompt_end, stop=graph.stop, max_new_tokens=graph.max_new)
    model = emit_weights(low, sch, alloc, gen, bundle)
    t["weights"] = time.perf_counter() - t0
    return CompileResult(model, graph, low, sch, alloc, t)


def compile_source(source: str, path: str = "<string>", search_path=()) -> CompileResult:
    t0 = time.perf_counter()
    module = parse(source, path)
    parse_s = time.perf_counter() - t0
    res = _compile(module, search_path)
    res.seconds = {"parse": parse_s, **res.seconds}
    return res


def compile_file(path: str | Path, search_path=()) -> CompileResult:
    t0 = time.perf_counter()
    module = parse_file(path)
    parse_s = time.perf_counter() - t0
    res = _compile(module, search_path)
    res.seconds = {"parse": parse_s, **res.seconds}
    return res


def graph_from_bundle(bundle: dict) -> Graph:
    """Rebuild a program's graph from the sources a model carries (no files needed)."""
    files = bundle["files"]
    main = bundle["main"]
    return elaborate(parse(files[main], main), files=files)[0]
