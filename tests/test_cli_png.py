"""The hand-written PNG encoder and bitmap font: files a PNG reader accepts, glyphs that differ."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp2d.cli.bitmap_font import ADVANCE, GLYPHS, draw_text, fit, text_width
from rasp2d.cli.png import SIGNATURE, encode_png


def decode_png(data: bytes) -> tuple[dict, np.ndarray]:
    """Just enough of a PNG reader to check ours: chunk CRCs, IHDR, unfiltered RGB scan lines."""
    assert data[:8] == SIGNATURE
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    header = dict(width=w, height=h, depth=depth, color_type=ctype, compression=comp,
                  filter=filt, interlace=interlace)
    raw = zlib.decompress(b"".join(body for k, body in chunks if k == b"IDAT"))
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all()  # filter type "none" on every line
    return header, rows[:, 1:].reshape(h, w, 3)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_png_round_trips_through_a_reader(height, width, seed):
    img = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    header, pixels = decode_png(encode_png(img))
    assert header == dict(width=width, height=height, depth=8, color_type=2, compression=0,
                          filter=0, interlace=0)
    assert np.array_equal(pixels, img)


def test_png_rejects_what_it_cannot_encode():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((2, 2, 3), np.float64))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="at least one pixel"):
        encode_png(np.zeros((0, 3, 3), np.uint8))


def test_font_covers_printable_ascii_with_distinct_glyphs():
    printable = [chr(c) for c in range(32, 127)]
    assert sorted(GLYPHS) == printable
    assert all(GLYPHS[c].shape == (7, 5) for c in printable)
    shapes = {GLYPHS[c].tobytes(): c for c in printable}
    assert len(shapes) == len(printable), "two characters share a glyph"
    assert not GLYPHS[" "].any() and all(GLYPHS[c].any() for c in printable if c != " ")


def test_text_is_drawn_where_asked_and_clipped():
    img = np.zeros((12, 20, 3), np.uint8)
    draw_text(img, 1, 2, "Hi", (255, 0, 0))
    ink = np.argwhere(img[:, :, 0] == 255)
    assert ink[:, 0].min() >= 2 and ink[:, 0].max() <= 8
    assert ink[:, 1].min() == 1 and ink[:, 1].max() <= 1 + text_width("Hi")
    assert np.array_equal(img[2:9, 1:6, 0] == 255, GLYPHS["H"])
    draw_text(img, 15, -3, "WWW", (0, 255, 0))  # partly outside: clipped, no error
    assert (img[:, :, 1] == 255).any()


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
       st.integers(0, 200))
def test_fit_never_overflows(text, width):
    shown = fit(text, width)
    assert text_width(shown) <= width
    assert shown == text or shown.endswith("..") or shown == ""
    if text_width(text) <= width:
        assert shown == text
    assert text_width("ab") == 2 * ADVANCE - 1
