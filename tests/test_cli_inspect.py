"""`rasp2d inspect` on a hand-built model: the table, --stage, and the --png picture."""

from __future__ import annotations

import dataclasses

import pytest

from handbuilt_models import D_MODEL, PREV, difference_model
from rasp2d.backends.model_file import Manifest
from rasp2d.cli.allocation_picture import BACKGROUND, SHADE, PictureLayout, slot_color
from rasp2d.cli.main import main
from rasp2d.cli.stages import parse_stage, stage_name
from test_cli_png import decode_png


@pytest.fixture()
def model_path(tmp_path):
    path = tmp_path / "diff.npz"
    difference_model().save(path)
    return str(path)


def inspect(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["inspect", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_summary_and_per_layer_tables(model_path, capsys):
    rc, out, _ = inspect(capsys, model_path)
    assert rc == 0
    assert "layers 2   d_model 14   heads used 4 / 14" in out
    assert "ffn width 3 per layer (6 units used in all)" in out
    assert f"non-zero weights {difference_model().nonzero_weights():,}" in out
    lines = out.splitlines()
    layer1 = lines[lines.index("layer 1"):]
    head_rows = [l.split() for l in layer1 if l.startswith("    0 ") or l.startswith("    1 ")]
    assert head_rows[0][:3] == ["0", "latest", "lookup(tokens,"]
    assert head_rows[1][:3] == ["1", "average", "lookup(tokens,"]
    assert any(l.split()[:3] == ["1-2", "2", "max(tokens,"] for l in layer1)
    assert any(l.split()[0] == "11" and l.rstrip().endswith("ffn1") for l in layer1 if l.strip())
    # every residual slot is listed exactly once, under the sub-layer that writes it
    listed = []
    for i, line in enumerate(lines):
        if line == "  residual values written:":
            for row in lines[i + 2:]:  # skip the column header
                if not row.startswith("    "):
                    break
                listed.append(int(row.split()[0]))
    assert listed == [s.dim for s in difference_model().manifest.residual]


def test_unlabelled_parts_are_shown_not_hidden(tmp_path, capsys):
    bare = dataclasses.replace(difference_model(), manifest=Manifest())
    path = tmp_path / "bare.npz"
    bare.save(path)
    rc, out, _ = inspect(capsys, str(path))
    assert rc == 0
    assert out.count("(unlabelled)") == 2 * 2 + 2  # 2 heads per layer + one unit run per layer
    assert "0-2    3  (unlabelled)" in out


def test_stage_lists_what_the_stream_holds(model_path, capsys):
    rc, out, _ = inspect(capsys, model_path, "--stage", "attn1")
    assert rc == 0 and "stage 3 (attn1)" in out and "attention of layer 1:" in out
    assert "9 of 14 dimensions hold a value" in out
    dims = [l.split()[0] for l in out.split("residual stream at this stage")[1].splitlines()[2:]]
    assert dims == ["0", "1", "2", "5", "6", "7", "8", "9", "10"]
    rc, out, _ = inspect(capsys, model_path, "--stage", "0")
    assert rc == 0 and "stage 0 (embedding)" in out and "5 of 14" in out
    rc, _, err = inspect(capsys, model_path, "--stage", "ffn2")
    assert rc == 2 and "stages 0..4" in err and "attn1" in err


def test_stage_names_round_trip():
    for stage in range(9):
        assert parse_stage(stage_name(stage), 4) == stage == parse_stage(str(stage), 4)
    assert [stage_name(s) for s in range(5)] == ["embedding", "attn0", "ffn0", "attn1", "ffn1"]


@pytest.mark.parametrize("scale", [1, 2])
def test_png_is_valid_and_shows_the_allocation(model_path, tmp_path, capsys, scale):
    png = tmp_path / "alloc.png"
    rc, _, err = inspect(capsys, model_path, "--png", str(png), "--png-scale", str(scale))
    assert rc == 0 and str(png) in err
    header, pixels = decode_png(png.read_bytes())
    layout = PictureLayout()
    width, height = layout.size(n_stages=5, d_model=D_MODEL)
    assert (header["width"], header["height"]) == (width * scale, height * scale)
    image = pixels[::scale, ::scale]

    def corner_color(stage, dim):  # a pixel inside the bar, left of any label text
        x0, y0, _, _ = layout.cell(stage, dim)
        return tuple(int(c) for c in image[y0 + 1, x0 + 3])

    manifest = difference_model().manifest
    prev = next(s for s in manifest.residual if s.dim == PREV)
    for stage in range(5):
        expected = slot_color(prev.label) if prev.first_stage <= stage <= prev.last_stage else \
            SHADE if PREV % 2 else BACKGROUND
        assert corner_color(stage, PREV) == tuple(expected)
    # dimension 13 holds nothing: background only, no ink
    x0, y0, _, y1 = layout.cell(0, 13)
    row = image[y0:y1, layout.left + 2:layout.left + 5 * layout.col_w - 2]
    assert set(map(tuple, row.reshape(-1, 3))) <= {tuple(SHADE), tuple(BACKGROUND), (214, 214, 220),
                                                   (120, 120, 135)}
    # the label of a bar is drawn inside it (ink pixels exist in the prev-token bar)
    x0, y0, _, y1 = layout.cell(1, PREV)
    assert (image[y0:y1, x0:x0 + 60].sum(axis=2) < 150).any()
