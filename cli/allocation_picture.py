"""A picture of the residual-stream allocation: which dimension holds which value when.

Columns are stages (embedding, attn0, ffn0, attn1, ...), rows are residual dimensions; each
`ResidualSlot` of the manifest is a coloured bar over the stages it lives through, labelled
with its source expression where the bar is wide enough.  Reuse of a dimension after its
value dies shows as several bars on one row.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from rasp2d.backends.model_file import Manifest
from rasp2d.cli.bitmap_font import LINE_H, draw_text, fit, text_width
from rasp2d.cli.stages import stage_name

BACKGROUND = (255, 255, 255)
SHADE = (244, 244, 246)  # every other row, to follow a dimension across the picture
GRID = (214, 214, 220)
LAYER_LINE = (120, 120, 135)
INK = (20, 20, 30)
PALETTE = (
    (166, 206, 227), (178, 223, 138), (251, 154, 153), (253, 191, 111), (202, 178, 214),
    (255, 255, 153), (141, 211, 199), (190, 186, 218), (252, 205, 229), (217, 217, 217),
    (204, 235, 197), (255, 237, 111),
)


def slot_color(label: str) -> tuple[int, int, int]:
    """A stable colour per label, so one value keeps its colour across pictures."""
    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


@dataclass(frozen=True)
class PictureLayout:
    col_w: int = 138  # 23 characters of label per stage
    row_h: int = LINE_H + 4
    left: int = 34
    top: int = 32
    margin: int = 6

    def size(self, n_stages: int, d_model: int) -> tuple[int, int]:
        """(width, height) in pixels."""
        return (self.left + n_stages * self.col_w + self.margin,
                self.top + d_model * self.row_h + self.margin)

    def cell(self, stage: int, dim: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of one stage x dimension cell, end-exclusive."""
        x0, y0 = self.left + stage * self.col_w, self.top + dim * self.row_h
        return x0, y0, x0 + self.col_w, y0 + self.row_h


def render_allocation(manifest: Manifest, d_model: int, n_layers: int, title: str = "",
                      layout: PictureLayout = PictureLayout()) -> np.ndarray:
    """The allocation as a ``uint8 [height, width, 3]`` image."""
    n_stages = 1 + 2 * n_layers
    width, height = layout.size(n_stages, d_model)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BACKGROUND
    right = layout.left + n_stages * layout.col_w
    bottom = layout.top + d_model * layout.row_h

    for dim in range(d_model):
        _, y0, _, y1 = layout.cell(0, dim)
        if dim % 2:
            img[y0:y1, layout.left:right] = SHADE
        text = str(dim)
        draw_text(img, layout.left - 4 - text_width(text), y0 + 2, text, INK)
    for stage in range(n_stages + 1):
        x = layout.left + stage * layout.col_w
        is_layer_edge = stage % 2 == 1 or stage == n_stages
        img[layout.top - 2:bottom, x] = LAYER_LINE if is_layer_edge else GRID
    for stage in range(n_stages):
        x0, _, x1, _ = layout.cell(stage, 0)
        name = stage_name(stage)
        draw_text(img, (x0 + x1 - text_width(name)) // 2, layout.top - 13, name, INK)
    if title:
        draw_text(img, layout.margin, layout.margin,
                  fit(title, width - 2 * layout.margin), INK)

    for slot in manifest.residual:
        if not (0 <= slot.dim < d_model and 0 <= slot.first_stage <= slot.last_stage):
            continue  # a manifest entry outside this model: nothing to draw it in
        last = min(slot.last_stage, n_stages - 1)
        x0, y0, _, y1 = layout.cell(slot.first_stage, slot.dim)
        _, _, x1, _ = layout.cell(last, slot.dim)
        img[y0 + 1:y1 - 1, x0 + 2:x1 - 1] = slot_color(slot.label)
        label = fit(slot.label, x1 - x0 - 8)
        draw_text(img, x0 + 5, y0 + 2, label, INK)
    return img
