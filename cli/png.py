"""A minimal PNG encoder (8-bit RGB, no filtering), so pictures need no plotting library.

PNG is a signature followed by chunks ``length | type | data | crc32(type + data)``; the
pixels are zlib-compressed scan lines, each prefixed by a filter byte (0 = none here).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(rgb: np.ndarray) -> bytes:
    """``rgb``: ``uint8`` array ``[height, width, 3]`` -> PNG file bytes."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 [height, width, 3] image, got {rgb.dtype} {rgb.shape}")
    height, width, _ = rgb.shape
    if height == 0 or width == 0:
        raise ValueError("a PNG image needs at least one pixel")
    # colour type 2 = truecolour, bit depth 8, deflate, filter method 0, no interlace
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)
    return (SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(np.ascontiguousarray(rows).tobytes(), 9))
            + _chunk(b"IEND", b""))


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    Path(path).write_bytes(encode_png(rgb))
