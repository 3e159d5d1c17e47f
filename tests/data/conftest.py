"""Tiny on-disk fixtures for the loader tests: real PNG/JPEG files written with PIL in tmp_path.

Helpers are handed out as a fixture, not imported, so the tests work under any pytest import mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class FileWriter:
    def image(self, path: Path, height: int, width: int, seed: int = 0) -> Path:
        """A random RGB image; the format follows the suffix (.jpg or .png)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        return path

    def mask(self, path: Path, values, palette: bool = False) -> Path:
        """A single-channel label PNG (mode L, or P with a palette as VOC's are) holding `values`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(np.asarray(values, dtype=np.uint8))
        if palette:
            image.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])  # L -> P
            assert image.mode == "P"
        image.save(path)
        return path


@pytest.fixture
def write() -> FileWriter:
    return FileWriter()


@pytest.fixture
def shared_data() -> Path:
    return SHARED_DATA
