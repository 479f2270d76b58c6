"""`rasp2d run MODEL.npz --input "..."`: generate with a compiled model on a chosen backend.

Generated tokens go to stdout, space-separated, as they are produced; the summary (token
count, speed, why generation ended) and the optional logit table go to stderr, so stdout
stays exactly the model's output.  Backends are imported only when chosen: `run` with the
hull backend never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rasp2d.backends.generate import Decoder, generate
from rasp2d.backends.model_file import CompiledModel, prompt_tokens


class BackendUnavailable(Exception):
    """The chosen backend's module cannot be imported (not written yet, or a missing dependency)."""


@dataclass(frozen=True)
class Backend:
    name: str
    module: str
    description: str
    build: Callable[[object, CompiledModel], Decoder]  # (imported module, model) -> decoder


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("reference", "rasp2d.backends.reference",
            "re-elaborates the source program and evaluates it on Python ints (the semantics)",
            lambda mod, model: mod.ReferenceDecoder.from_model(model)),
    Backend("torch", "rasp2d.backends.torch_backend",
            "PyTorch module, exact hard-max attention, K/V cache per layer",
            lambda mod, model: mod.TorchDecoder(model)),
    Backend("hull", "rasp2d.backends.hull_runtime",
            "NumPy runtime, convex-hull K/V cache per head (O(log t) attention)",
            lambda mod, model: mod.HullDecoder(model, cache="hull")),
    Backend("brute", "rasp2d.backends.hull_runtime",
            "NumPy runtime, brute-force O(t) K/V cache (for comparison with hull)",
            lambda mod, model: mod.HullDecoder(model, cache="brute")),
)}


def default_backend() -> str:
    """The hull runtime when it is installed (fastest), else torch."""
    module = BACKENDS["hull"].module
    if module in sys.modules:  # already imported (or marked unimportable with None)
        found = sys.modules[module] is not None
    else:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
    return "hull" if found else "torch"


def make_decoder(name: str, model: CompiledModel) -> Decoder:
    """A fresh incremental decoder of backend ``name`` for ``model``."""
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    try:
        module = importlib.import_module(backend.module)
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        what = ("is not part of this build" if missing in (backend.module, None)
                else f"needs the Python module {missing!r}, which is not installed")
        raise BackendUnavailable(
            f"backend {name!r} ({backend.module}) {what}; try --backend "
            f"{'torch' if name != 'torch' else 'hull'}") from exc
    try:
        return backend.build(module, model)
    except AttributeError as exc:
        raise BackendUnavailable(f"backend {name!r}: {backend.module} is incomplete ({exc})") from exc
    except ValueError as exc:  # e.g. the reference needs the source bundle a hand-made model lacks
        raise BackendUnavailable(f"backend {name!r} cannot run this model: {exc}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="compiled model (.npz written by `rasp2d compile`)")
    parser.add_argument("--input", required=True,
                        help="the prompt: whitespace-separated tokens of the model's vocabulary")
    parser.add_argument("--backend", choices=tuple(BACKENDS), default=None,
                        help="runtime (default: hull if available, else torch)")
    parser.add_argument("--max-new", type=int, default=None, metavar="N",
                        help="generate at most N tokens (default: the model's own budget)")
    parser.add_argument("--show-logits", action="store_true",
                        help="print each generated token's logit, runner-up and margin to stderr")


def _fail(message: str) -> int:
    print(f"rasp2d run: {message}", file=sys.stderr)
    return 2


def _logit_row(step: int, position: int, token: int, logits: np.ndarray,
               vocab: tuple[str, ...]) -> str:
    order = np.argsort(-logits, kind="stable")
    best = f"{vocab[token]!r:>10} {logits[token]:>14.6g}"
    if len(order) < 2:
        return f"{step:>6} {position:>8} {best}"
    runner = int(order[1]) if int(order[0]) == token else int(order[0])
    margin = logits[token] - logits[runner]
    return f"{step:>6} {position:>8} {best} {vocab[runner]!r:>10} {logits[runner]:>14.6g} {margin:>10.6g}"


def run(args: argparse.Namespace) -> int:
    try:
        model = CompiledModel.load(args.model)
    except FileNotFoundError:
        return _fail(f"model file {args.model!r} not found (make one with `rasp2d compile`)")
    except (OSError, ValueError, KeyError) as exc:
        return _fail(f"cannot read model {args.model!r}: {exc}")
    try:
        prompt = prompt_tokens(model, args.input)
    except KeyError as exc:
        shown = " ".join(model.vocab[:40]) + (" ..." if len(model.vocab) > 40 else "")
        return _fail(f"{exc.args[0]}; the vocabulary is: {shown}")
    if not prompt:
        return _fail("the input is empty and the model has no prompt-end token; give --input tokens")
    budget = model.generation.max_new_tokens if args.max_new is None else args.max_new
    if budget < 0:
        return _fail(f"--max-new must be >= 0, got {budget}")
    stop = model.generation.stop
    stop_id = model.token_id(stop) if stop is not None else None

    name = args.backend or default_backend()
    try:
        decoder = make_decoder(name, model)
    except BackendUnavailable as exc:
        return _fail(str(exc))

    logit_rows: list[str] = []
    if args.show_logits and not hasattr(decoder, "last_logits"):
        return _fail(f"--show-logits needs a backend that exposes logits; {name!r} does not "
                     f"(the torch backend does)")
    out = sys.stdout
    interactive = out.isatty()
    count = 0

    def on_token(tok: int) -> None:
        nonlocal count
        out.write((" " if count else "") + model.vocab[tok])
        if interactive:
            out.flush()
        if args.show_logits:
            logits = np.asarray(decoder.last_logits, dtype=np.float64).reshape(-1)
            logit_rows.append(_logit_row(count, len(prompt) + count, tok, logits, model.vocab))
        count += 1

    start = time.perf_counter()
    result = generate(decoder, prompt, budget, stop_id, on_token)
    elapsed = time.perf_counter() - start
    out.write("\n")
    out.flush()

    if logit_rows:
        print(f"{'step':>6} {'position':>8} {'token':>10} {'logit':>14} {'runner-up':>10} "
              f"{'logit':>14} {'margin':>10}", file=sys.stderr)
        print("\n".join(logit_rows), file=sys.stderr)
    steps = len(prompt) + max(count - 1, 0)  # positions the model actually processed
    rate = steps / elapsed if elapsed > 0 else float("inf")
    ended = f"stopped at {stop!r}" if result.stopped else f"token budget of {budget} reached"
    print(f"rasp2d run: {count} tokens generated after a {len(prompt)}-token prompt in "
          f"{elapsed:.3f} s, {rate:,.0f} tok/s over {steps} positions "
          f"(backend {name}; {ended})", file=sys.stderr)
    return 0
