"""Compile a .rasp2d program: the pipeline, its timings and the source bundle.

parse -> elaborate (typed graph) -> lower (heads, ReGLU units) -> fuse sums (blocks only
read as one sum share a dimension) -> schedule (layers) -> allocate (residual dimensions) ->
weights (+ manifest).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from rasp2d.backends.model_file import CompiledModel, Generation
from rasp2d.compiler.allocate import Allocation, allocate
from rasp2d.compiler.elaborate import elaborate
from rasp2d.compiler.fuse_sums import fuse_sums
from rasp2d.compiler.graph import Graph
from rasp2d.compiler.lower import check_sums_exact, lower
from rasp2d.compiler.primitives import Lowered
from rasp2d.compiler.schedule import Schedule, narrow_schedule, schedule
from rasp2d.compiler.weights import emit_weights, model_shape
from rasp2d.lang.parser import parse, parse_file


@dataclass(frozen=True)
class Placement:
    """How ops are placed.  The default is the minimum depth with the smallest dense model the
    placement search finds; `extra_layers` trades depth for width (each extra layer lets big
    blocks and long-lived values spread out); `CLASSIC` is the earlier placement (no fused
    sums, the narrower of as-early and as-late), kept for side-by-side measurements."""

    fuse_sums: bool = True
    search: bool = True
    extra_layers: int = 0


CLASSIC = Placement(fuse_sums=False, search=False)


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


def dense_size(low: Lowered, sch: Schedule, alloc: Allocation) -> int:
    """Floats of the dense standard-shape model this layout gives (what emit_weights builds)."""
    d, ffn = model_shape(low, sch, alloc)
    return sch.n_layers * d * (4 * d + 3 * ffn)


def _classic(low: Lowered) -> list[tuple[Lowered, Schedule, Allocation]]:
    return [(low, s, allocate(low, s)) for s in (schedule(low), schedule(low, late=True))]


def place(low: Lowered, placement: Placement = Placement()) -> tuple[Lowered, Schedule, Allocation]:
    """Fuse, schedule and allocate: the program as it will be laid out, its layers and dimensions."""
    if placement.extra_layers < 0:
        raise ValueError(f"extra_layers must be >= 0, got {placement.extra_layers}")
    if not placement.search and placement.extra_layers:
        raise ValueError("extra_layers needs the placement search (search=True)")
    original = low
    if placement.fuse_sums:
        low = fuse_sums(low).lowered
    if not placement.search:
        # both placements have the minimum depth; keep the one that needs the narrower stream
        return min(_classic(low), key=lambda c: (_width(*c), c[1].n_layers))
    sch = narrow_schedule(low, placement.extra_layers)
    searched = (low, sch, allocate(low, sch))
    if placement.extra_layers:
        return searched
    # the search is a local one: the classic layouts (cheap) are candidates too, so the default
    # placement is never larger than the classic one
    return min([searched, *_classic(original)], key=lambda c: dense_size(*c))


def _compile(module, search_path=(), files=None, placement: Placement = Placement()) -> CompileResult:
    t = {}
    t0 = time.perf_counter()
    graph, sources = elaborate(module, tuple(search_path), files)
    t["elaborate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    low = lower(graph)
    t["lower"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    low, sch, alloc = place(low, placement)
    check_sums_exact(low)
    t["place"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bundle = json.dumps({"main": module.path, "files": sources})
    gen = Generation(prompt_end=graph.prompt_end, stop=graph.stop, max_new_tokens=graph.max_new)
    model = emit_weights(low, sch, alloc, gen, bundle)
    t["weights"] = time.perf_counter() - t0
    return CompileResult(model, graph, low, sch, alloc, t)


def compile_source(source: str, path: str = "<string>", search_path=(),
                   placement: Placement = Placement()) -> CompileResult:
    t0 = time.perf_counter()
    module = parse(source, path)
    parse_s = time.perf_counter() - t0
    res = _compile(module, search_path, placement=placement)
    res.seconds = {"parse": parse_s, **res.seconds}
    return res


def compile_file(path: str | Path, search_path=(), placement: Placement = Placement()) -> CompileResult:
    t0 = time.perf_counter()
    module = parse_file(path)
    parse_s = time.perf_counter() - t0
    res = _compile(module, search_path, placement=placement)
    res.seconds = {"parse": parse_s, **res.seconds}
    return res


def graph_from_bundle(bundle: dict) -> Graph:
    """Rebuild a program's graph from the sources a model carries (no files needed)."""
    files = bundle["files"]
    main = bundle["main"]
    return elaborate(parse(files[main], main), files=files)[0]
