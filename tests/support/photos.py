"""Distinct face photos made from the astronaut sample, for galleries whose every image is new."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import encode

IMAGES = 120


def distinct_photos(folder: Path, astronaut_rgb: np.ndarray) -> None:
    """``IMAGES`` different crops of one portrait: different bytes, one face each."""
    folder.mkdir()
    for i in range(IMAGES):
        top, left = divmod(i, 12)
        crop = astronaut_rgb[top * 4 : 400 + top * 4, left * 4 : 400 + left * 4]
        (folder / f"crop_{i:03d}.jpg").write_bytes(encode(np.ascontiguousarray(crop), "JPEG", quality=90))
