"""Generate a WASM machine trace with a compiled model, in the hull runtime's numba loop.

`machine.run_in_model` (what `rasp2d exec` runs) decodes the trace and reports progress;
benchmarks, the spec suite and the specialisation checks want the bare loop
(`HullDecoder.generate`, inside numba) with the prompt's prefill timed apart from generation,
and the trace as tokens to compare with the reference's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .vocab import TOKEN_ID, VOCAB

END_TOKENS = frozenset({"HALT"} | {t for t in VOCAB if t.startswith("TRAP_")})
"""A run is over after any of these (TRACE_FORMAT.md, "Ends and traps")."""

_CHUNK = 1 << 16  # tokens per numba call: the loop stops only at HALT, so traps are found per chunk
_END_IDS = np.array(sorted(TOKEN_ID[t] for t in END_TOKENS))


@dataclass(frozen=True)
class GeneratedTrace:
    trace: tuple[str, ...]  # generated tokens, up to and including HALT / TRAP_<name>
    ended: bool  # it reached HALT or a trap within the budget
    prompt_tokens: int
    prefill_seconds: float  # feeding the prompt
    decode_seconds: float  # generating the trace
    cache_bytes: int = 0  # the decoder's KV caches at the end (HullDecoder.cache_bytes)

    @property
    def seconds(self) -> float:
        return self.prefill_seconds + self.decode_seconds


@lru_cache(maxsize=4)
def sparse_machine(model_file: Path):
    """The sparse form of a model file (cached on disk by the model's digest)."""
    from rasp2d.backends.sparse_program import sparse_program_of_file
    return sparse_program_of_file(model_file)


def generate_trace(machine, prompt: Sequence[str], max_new: int, *,
                   cache: str = "hull") -> GeneratedTrace:
    """Feed `prompt` to a fresh decoder of `machine` (a CompiledModel or SparseProgram) and
    generate until an end token or `max_new` tokens."""
    from rasp2d.backends.hull_runtime import HullDecoder
    if len(prompt) < 2:
        raise ValueError("a WASM machine prompt has at least PROG ... RUN J JH JL")
    dec = HullDecoder(machine, cache=cache)
    ids = [TOKEN_ID[t] for t in prompt]
    started = time.perf_counter()
    dec.generate(ids[:-1], 1)  # prefill; its prediction is the model's guess at the last prompt token
    prefilled = time.perf_counter()
    out: list[int] = []
    for got in generated_chunks(dec, ids[-1:], max_new):
        out.extend(got.tolist())
    ended = bool(out) and out[-1] in _END_IDS
    done = time.perf_counter()
    return GeneratedTrace(tuple(VOCAB[t] for t in out), ended, len(prompt),
                          prefilled - started, done - prefilled, dec.cache_bytes())


def generated_chunks(dec, feed: list[int], max_new: int, *, chunk: int = _CHUNK,
                     grow_below_s: float = 0.0) -> Iterator[np.ndarray]:
    """Token ids a HullDecoder generates after `feed`, chunk by chunk of its numba loop, until
    an end token (the last chunk ends with it) or `max_new` tokens.

    The loop stops by itself only at HALT: after a trap it runs on to the chunk's end, and
    those tokens are dropped.  A chunk that took under `grow_below_s` doubles the next (up to
    `_CHUNK`), so a small first chunk gives an early progress report without slowing long
    runs."""
    halt = TOKEN_ID["HALT"]
    n = 0
    while n < max_new:
        t0 = time.perf_counter()
        got = np.asarray(dec.generate(feed, min(chunk, max_new - n), halt).output)
        ends = np.flatnonzero(np.isin(got, _END_IDS))
        if ends.size:
            yield got[:ends[0] + 1]
            return
        yield got
        n += got.size
        feed = [int(got[-1])]
        if time.perf_counter() - t0 < grow_below_s:
            chunk = min(2 * chunk, _CHUNK)


def first_difference(a: Sequence[str], b: Sequence[str]) -> int | None:
    """Index of the first token where two traces differ (a length difference counts); None if
    they are equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


__all__ = ["GeneratedTrace", "generate_trace", "generated_chunks", "sparse_machine", "first_difference", "END_TOKENS"]
