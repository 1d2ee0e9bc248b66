"""Real images: scikit-image's public-domain samples, the shared face data beside the checkout when
present, distinct face photos made from the astronaut sample, and the analyzer that reads them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from facetrace.core.config import Settings
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.factory import build_analyzer

SHARED_FACES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "faces"


def encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def shared_faces() -> Path:
    if not SHARED_FACES.is_dir():
        pytest.skip(f"needs the shared face data at {SHARED_FACES} (present in CI, absent in a fresh clone)")
    return SHARED_FACES


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """Eileen Collins, NASA portrait (public domain), 512×512 RGB: one face."""
    return skimage_data.astronaut()


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut_rgb: np.ndarray) -> bytes:
    return encode(astronaut_rgb, "JPEG", quality=95)


@pytest.fixture(scope="session")
def coffee_png() -> bytes:
    """A cup of coffee: no face."""
    return encode(skimage_data.coffee(), "PNG")


@pytest.fixture
def photo_folder(tmp_path: Path, astronaut_jpeg: bytes, coffee_png: bytes) -> Path:
    """A folder of two photos to ingest: the astronaut (one face) and coffee (none)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (folder / "coffee.png").write_bytes(coffee_png)
    return folder


@pytest.fixture(scope="session")
def analyzer() -> Iterator[FaceAnalyzer]:
    """The packaged YuNet + SFace pipeline, loaded once per test session."""
    yield build_analyzer(Settings())


#: How many photos ``distinct_photos`` makes.
IMAGES = 120


def distinct_photos(folder: Path, astronaut_rgb: np.ndarray) -> None:
    """``IMAGES`` different crops of one portrait: different bytes, one face each."""
    folder.mkdir()
    for i in range(IMAGES):
        top, left = divmod(i, 12)
        crop = astronaut_rgb[top * 4 : 400 + top * 4, left * 4 : 400 + left * 4]
        (folder / f"crop_{i:03d}.jpg").write_bytes(encode(np.ascontiguousarray(crop), "JPEG", quality=90))
