"""`rasp2d inspect MODEL.npz`: which expression lives in which layer, head, FFN unit and dimension.

Everything comes from the model file: the weights say what is *used* (a head with non-zero
output weights, a unit with a non-zero output column) and the manifest says what it *is*.
Used parts the manifest does not name are listed as ``(unlabelled)`` rather than hidden.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rasp2d.backends.model_file import TIE_NAMES, CompiledModel, ResidualSlot
from rasp2d.cli.stages import parse_stage, stage_name

UNLABELLED = "(unlabelled)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="compiled model (.npz written by `rasp2d compile`)")
    parser.add_argument("--png", metavar="FILE",
                        help="also draw the residual-stream allocation per stage into FILE")
    parser.add_argument("--png-scale", type=int, default=2, metavar="N",
                        help="pixel size of the picture (default 2)")
    parser.add_argument("--stage", metavar="S",
                        help="show only stage S (a number, or embedding / attnL / ffnL): its "
                             "heads or units and the values the stream holds there")


# ----------------------------------------------------------------------------- facts
def used_heads(model: CompiledModel, layer: int) -> list[int]:
    return [int(h) for h in np.nonzero(np.abs(model.W_o[layer]).sum(axis=(0, 2)))[0]]


def used_units(model: CompiledModel, layer: int) -> list[int]:
    return [int(u) for u in np.nonzero(np.abs(model.W_out[layer]).sum(axis=0))[0]]


def _ranges(units: list[int]) -> list[tuple[int, int]]:
    """Sorted unit indices -> maximal runs (first, last)."""
    runs: list[tuple[int, int]] = []
    for u in units:
        if runs and runs[-1][1] == u - 1:
            runs[-1] = (runs[-1][0], u)
        else:
            runs.append((u, u))
    return runs


def _span(slot: ResidualSlot) -> str:
    first, last = stage_name(slot.first_stage), stage_name(slot.last_stage)
    return first if first == last else f"{first} .. {last}"


def _table(rows: list[tuple[str, ...]], indent: str) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


# ----------------------------------------------------------------------------- sections
def summary_lines(model: CompiledModel, path: str) -> list[str]:
    total_units = sum(len(used_units(model, l)) for l in range(model.n_layers))
    g = model.generation
    lines = [
        f"model {path}",
        f"  layers {model.n_layers}   d_model {model.d_model}   heads used {model.used_heads()} / "
        f"{model.n_layers * model.n_heads} ({model.n_heads} per layer, dimension 2)",
        f"  ffn width {model.d_ffn} per layer ({total_units} units used in all)   vocab "
        f"{len(model.vocab)}   non-zero weights {model.nonzero_weights():,}",
        f"  generation: prompt_end={g.prompt_end!r} stop={g.stop!r} max_new_tokens={g.max_new_tokens}",
    ]
    if model.manifest.output_label:
        lines.append(f"  output: {model.manifest.output_label}")
    return lines


def heads_lines(model: CompiledModel, layer: int) -> list[str]:
    labels = {h.head: h for h in model.manifest.heads if h.layer == layer}
    heads = sorted(set(used_heads(model, layer)) | set(labels))
    if not heads:
        return ["    (no heads)"]
    rows = [("head", "tie", "label", "outputs")]
    for h in heads:
        tie = TIE_NAMES.get(int(model.tie[layer, h]), f"?{int(model.tie[layer, h])}")
        info = labels.get(h)
        rows.append((str(h), tie, info.label if info else UNLABELLED,
                     ", ".join(info.outputs) if info else ""))
    return _table(rows, "    ")


def units_lines(model: CompiledModel, layer: int) -> list[str]:
    groups = sorted((u for u in model.manifest.units if u.layer == layer), key=lambda u: u.first_unit)
    labelled = {i for g in groups for i in range(g.first_unit, g.first_unit + g.n_units)}
    entries = [(g.first_unit, g.first_unit + g.n_units - 1, g.label) for g in groups]
    entries += [(a, b, UNLABELLED) for a, b in
                _ranges([u for u in used_units(model, layer) if u not in labelled])]
    if not entries:
        return ["    (no units)"]
    rows = [("units", "n", "label")]
    for a, b, label in sorted(entries):
        rows.append((str(a) if a == b else f"{a}-{b}", str(b - a + 1), label))
    return _table(rows, "    ")


def slots_lines(slots: list[ResidualSlot], indent: str = "    ") -> list[str]:
    if not slots:
        return [f"{indent}(none)"]
    rows = [("dim", "value", "stages")]
    rows += [(str(s.dim), s.label, _span(s)) for s in sorted(slots, key=lambda s: (s.dim, s.first_stage))]
    return _table(rows, indent)


def report_lines(model: CompiledModel, path: str) -> list[str]:
    """Summary, then per layer its heads, its FFN units and the residual values it writes."""
    residual = model.manifest.residual
    lines = summary_lines(model, path)
    lines += ["", "embedding (stage 0)", "  residual values written:"]
    lines += slots_lines([s for s in residual if s.first_stage == 0])
    for l in range(model.n_layers):
        attn, ffn = 2 * l + 1, 2 * l + 2
        lines += ["", f"layer {l}", f"  attention ({stage_name(attn)}, stage {attn}):"]
        lines += heads_lines(model, l)
        lines += [f"  ffn ({stage_name(ffn)}, stage {ffn}):"]
        lines += units_lines(model, l)
        lines += ["  residual values written:"]
        lines += slots_lines([s for s in residual if s.first_stage in (attn, ffn)])
    return lines


def stage_lines(model: CompiledModel, path: str, stage: int) -> list[str]:
    """One stage: the sub-layer producing it and every value the stream holds there."""
    lines = summary_lines(model, path) + ["", f"stage {stage} ({stage_name(stage)})"]
    if stage > 0:
        layer, sub = divmod(stage - 1, 2)
        lines += [f"  {'attention' if sub == 0 else 'ffn'} of layer {layer}:"]
        lines += heads_lines(model, layer) if sub == 0 else units_lines(model, layer)
    live = [s for s in model.manifest.residual if s.first_stage <= stage <= s.last_stage]
    used = len({s.dim for s in live})
    lines += [f"  residual stream at this stage ({used} of {model.d_model} dimensions hold a value):"]
    return lines + slots_lines(live)


# ----------------------------------------------------------------------------- command
def run(args: argparse.Namespace) -> int:
    try:
        model = CompiledModel.load(args.model)
    except FileNotFoundError:
        print(f"rasp2d inspect: model file {args.model!r} not found", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"rasp2d inspect: cannot read model {args.model!r}: {exc}", file=sys.stderr)
        return 2
    if args.stage is not None:
        try:
            stage = parse_stage(args.stage, model.n_layers)
        except ValueError as exc:
            print(f"rasp2d inspect: {exc}", file=sys.stderr)
            return 2
        lines = stage_lines(model, args.model, stage)
    else:
        lines = report_lines(model, args.model)
    print("\n".join(lines))

    if args.png:
        if args.png_scale < 1:
            print(f"rasp2d inspect: --png-scale must be >= 1, got {args.png_scale}", file=sys.stderr)
            return 2
        from rasp2d.cli.allocation_picture import render_allocation
        from rasp2d.cli.png import write_png

        title = f"{Path(args.model).name}: residual stream allocation"
        if model.manifest.output_label:
            title += f" (output {model.manifest.output_label})"
        img = render_allocation(model.manifest, model.d_model, model.n_layers, title)
        s = args.png_scale
        write_png(args.png, img.repeat(s, axis=0).repeat(s, axis=1) if s > 1 else img)
        print(f"wrote {args.png} ({img.shape[1] * s} x {img.shape[0] * s} pixels)", file=sys.stderr)
    return 0
