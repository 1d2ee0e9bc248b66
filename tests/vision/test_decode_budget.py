"""Decoding budgets memory, not only pixels: a small file that would need more than
FACETRACE_MAX_DECODE_BYTES is refused from its header, large images are brought down to
DECODE_MAX_SIDE as they are decoded, and what decoding really takes stays within what it counted.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facetrace.core.config import Settings
from facetrace.core.errors import ImageError
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.decode import DECODE_MAX_SIDE, decode_image, decoding_bytes
from support.photos import encode

pytestmark = pytest.mark.no_catalog

DEFAULTS = Settings()
LIMITS = {"max_pixels": DEFAULTS.max_image_pixels, "max_bytes": DEFAULTS.max_image_bytes}
MIB = 1024 * 1024


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """A PNG that declares its size and pixel format, with hardly any pixel data after it: decoding
    it would fail as truncated, so a refusal that names the memory was made before decoding."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("what", "width", "height", "bit_depth", "colour_type", "budget"),
    [
        ("RGBA just under the pixel limit", 8943, 8943, 8, 6, DEFAULTS.max_decode_bytes),
        ("16-bit RGBA", 8000, 8000, 16, 6, DEFAULTS.max_decode_bytes),
        ("8-bit RGB", 8900, 8900, 8, 2, DEFAULTS.max_decode_bytes),
        ("16-bit grey", 9000, 8800, 16, 0, 128 * MIB),
        ("palette", 8900, 8900, 8, 3, 64 * MIB),
    ],
)
def test_an_image_that_would_exceed_the_memory_budget_is_refused_from_its_header(
    what: str, width: int, height: int, bit_depth: int, colour_type: int, budget: int
) -> None:
    assert width * height <= DEFAULTS.max_image_pixels  # the pixel limit alone lets it through
    with pytest.raises(ImageError, match=r"would take [\d,]+ bytes of memory .*FACETRACE_MAX_DECODE_BYTES"):
        decode_image(
            png_header_only(width, height, bit_depth, colour_type), **LIMITS, max_decode_bytes=budget
        )


def test_a_tiff_of_floats_and_a_gif_screen_are_budgeted_too() -> None:
    floats = io.BytesIO()
    Image.new("F", (8000, 8000), 0.5).save(floats, "TIFF", compression="tiff_deflate")
    with pytest.raises(ImageError, match="in mode F would take"):
        decode_image(floats.getvalue(), **LIMITS)
    gif = io.BytesIO()
    Image.new("P", (4000, 3000)).save(gif, "GIF")
    assert decode_image(gif.getvalue(), **LIMITS).bgr.shape == (3000, 4000, 3)
    with pytest.raises(ImageError, match="in mode P would take"):
        decode_image(gif.getvalue(), **LIMITS, max_decode_bytes=64 * MIB)


def test_the_budget_is_a_setting_passed_to_the_analyzer() -> None:
    assert DEFAULTS.max_decode_bytes == 256 * MIB
    assert Settings(max_decode_bytes=32 * MIB).max_decode_bytes == 32 * MIB


@pytest.mark.parametrize(
    ("fmt", "progressive"), [("JPEG", False), ("JPEG", True), ("PNG", False), ("WEBP", False)]
)
def test_large_images_are_brought_down_while_decoding(fmt: str, progressive: bool) -> None:
    wide = np.zeros((2500, 10000, 3), np.uint8)
    wide[:, :5000] = (200, 60, 30)
    data = encode(wide, fmt, **({"progressive": True} if progressive else {}))
    image = decode_image(data, **LIMITS)
    assert max(image.width, image.height) <= DECODE_MAX_SIDE
    assert image.width / image.height == pytest.approx(4, rel=0.01)
    left, right = image.bgr[:, : image.width // 2 - 8], image.bgr[:, image.width // 2 + 8 :]
    assert np.abs(left.astype(int) - (30, 60, 200)).max() <= 6  # BGR, the colours kept
    assert right.max() <= 6


def test_a_face_in_a_large_photo_is_found_as_in_the_small_one(
    analyzer: FaceAnalyzer, astronaut_rgb: np.ndarray
) -> None:
    """A 6,144-pixel photo decoded to 3,072: the same face, the same template."""
    reference = analyzer.analyze(encode(astronaut_rgb, "JPEG", quality=95)).faces
    big = cv2.resize(astronaut_rgb, (6144, 6144), interpolation=cv2.INTER_CUBIC)
    analysis = analyzer.analyze(encode(big, "JPEG", quality=95))
    assert (analysis.width, analysis.height) == (3072, 3072)
    assert len(analysis.faces) == len(reference) == 1
    assert np.allclose(
        np.array(analysis.faces[0].detection.box) / 6, reference[0].detection.box, rtol=0.05, atol=4
    )
    assert float(analysis.faces[0].embedding @ reference[0].embedding) > 0.9


MEASURE = """
import json, sys
from pathlib import Path
from facetrace.vision.decode import decode_image

def memory(line):
    status = Path("/proc/self/status").read_text()
    return int(next(row.split()[1] for row in status.splitlines() if row.startswith(line + ":"))) * 1024

data = Path(sys.argv[1]).read_bytes()
before = memory("VmRSS")
image = decode_image(data, max_pixels=10**9, max_bytes=10**9, max_decode_bytes=10**10)
print(json.dumps({"peak": memory("VmHWM") - before, "size": [image.width, image.height]}))
"""


def _file(kind: str) -> tuple[bytes, tuple[int, int], str]:
    """Bytes of a test image of ``kind``, its size and its mode as Pillow opens it."""
    ramp = np.tile(np.linspace(0, 255, 6000, dtype=np.uint8), (4000, 1))
    buffer = io.BytesIO()
    if kind == "RGBA PNG":
        Image.fromarray(np.dstack([ramp, ramp, ramp, ramp])).save(buffer, "PNG")
    elif kind == "RGB PNG":
        Image.fromarray(np.dstack([ramp, ramp[::-1], ramp])).save(buffer, "PNG")
    elif kind == "16-bit grey PNG":
        Image.fromarray(ramp.astype(np.uint16) * 257).save(buffer, "PNG")
    elif kind == "float TIFF":
        Image.fromarray(ramp.astype(np.float32)).save(buffer, "TIFF", compression="tiff_deflate")
    elif kind == "palette GIF with transparency":
        Image.fromarray(ramp).convert("P").save(buffer, "GIF", transparency=0)
    elif kind == "progressive JPEG":
        Image.fromarray(np.dstack([ramp, ramp, ramp])).save(buffer, "JPEG", progressive=True, quality=90)
    else:
        raise AssertionError(kind)
    data = buffer.getvalue()
    opened = Image.open(io.BytesIO(data))
    return data, opened.size, opened.mode


@pytest.mark.parametrize(
    "kind",
    [
        "RGBA PNG",
        "RGB PNG",
        "16-bit grey PNG",
        "float TIFF",
        "palette GIF with transparency",
        "progressive JPEG",
    ],
)
def test_decoding_takes_no_more_memory_than_it_counted(kind: str, tmp_path: Path) -> None:
    """Each file decoded in a process of its own: its peak resident memory over what the process held
    before is within the count the budget is checked against (and a few MiB of the libraries' own)."""
    data, size, mode = _file(kind)
    path = tmp_path / "image"
    path.write_bytes(data)
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    measured = json.loads(run.stdout)
    counted = decoding_bytes(size, mode) if kind != "progressive JPEG" else None
    if counted is None:  # draft scales it as it decodes: counted from the drafted size and the coefficients
        counted = decoding_bytes((3000, 2000), "RGB") + 6000 * 4000 * 3 * 2
    assert measured["peak"] <= counted + 16 * MIB, (kind, measured["peak"] / MIB, counted / MIB)
