"""Shared fixtures: real images (scikit-image's public-domain samples, and ../shared data when present)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from facetrace.config import Settings
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.factory import build_analyzer

SHARED_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"


@pytest.fixture(autouse=True)
def _no_environment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their own settings; FACETRACE_* variables of the shell must not leak in."""
    import os

    for name in list(os.environ):
        if name.startswith("FACETRACE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def shared_faces() -> Path:
    if not SHARED_FACES.is_dir():
        pytest.skip(f"needs the shared face data at {SHARED_FACES} (present in CI, absent in a fresh clone)")
    return SHARED_FACES


def encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


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
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", workers=1)


@pytest.fixture(scope="session")
def analyzer() -> Iterator[FaceAnalyzer]:
    """The packaged YuNet + SFace pipeline, loaded once per test session."""
    yield build_analyzer(Settings())
