"""Where rasp2d keeps what it can rebuild: compiled models, their sparse runtime form.

One folder for every cache, so one environment variable moves or clears them all; entries are
keyed by content hashes of their inputs and of the code that made them, so a stale entry is
never read, only left behind (delete the folder at any time)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """``$RASP2D_CACHE_DIR``, else ``<tmp>/rasp2d-cache``; created when missing."""
    d = Path(os.environ.get("RASP2D_CACHE_DIR", Path(tempfile.gettempdir()) / "rasp2d-cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d
