"""Decoding untrusted bytes: every supported format, EXIF orientation, and clear refusals."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facetrace.core.errors import ImageError
from facetrace.vision.decode import decode_image
from support.photos import encode

# Never opens a catalog (decoding bytes): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog

LIMITS = {"max_pixels": 50_000_000, "max_bytes": 32 * 1024 * 1024}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("JPEG", "JPEG"), ("PNG", "PNG"), ("WEBP", "WEBP"), ("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")],
)
def test_supported_formats_decode_to_bgr(astronaut_rgb: np.ndarray, fmt: str, expected: str) -> None:
    image = decode_image(encode(astronaut_rgb, fmt), **LIMITS)
    assert image.format == expected
    assert image.bgr.shape == (512, 512, 3) and image.bgr.dtype == np.uint8
    if fmt in ("PNG", "BMP", "TIFF"):  # lossless: exact pixels, channels swapped to BGR
        assert np.array_equal(image.bgr[:, :, ::-1], astronaut_rgb)


def test_animated_gif_gives_its_first_frame(astronaut_rgb: np.ndarray) -> None:
    frames = [Image.fromarray(astronaut_rgb), Image.new("RGB", (512, 512), "black")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    image = decode_image(buffer.getvalue(), **LIMITS)
    assert image.bgr.mean() > 50  # the astronaut, not the black second frame


def test_exif_orientation_is_applied(astronaut_rgb: np.ndarray) -> None:
    upright = astronaut_rgb[:, :400]  # 512 high, 400 wide
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # 400 high, 512 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    image = decode_image(buffer.getvalue(), **LIMITS)
    assert image.bgr.shape == (512, 400, 3)
    assert np.abs(image.bgr[:, :, ::-1].astype(int) - upright).mean() < 4


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "CMYK", "I;16", "1"])
def test_every_pixel_mode_becomes_8_bit_bgr(astronaut_rgb: np.ndarray, mode: str) -> None:
    source = Image.fromarray(astronaut_rgb)
    converted = source.convert("L").convert("I;16") if mode == "I;16" else source.convert(mode)
    buffer = io.BytesIO()
    converted.save(buffer, format="TIFF" if mode == "CMYK" else "PNG")
    image = decode_image(buffer.getvalue(), **LIMITS)
    assert image.bgr.shape == (512, 512, 3) and image.bgr.dtype == np.uint8
    assert image.bgr.std() > 10  # still a picture, not a flat colour


def test_transparent_pixels_become_white() -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent black
    image = decode_image(encode(rgba, "PNG"), **LIMITS)
    assert (image.bgr == 255).all()


def test_truncated_image_is_refused(astronaut_jpeg: bytes) -> None:
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(astronaut_jpeg[: len(astronaut_jpeg) // 2], **LIMITS)


@pytest.mark.parametrize("data", [b"hello, I am a text file\n" * 10, b"\x00" * 1000, b"%PDF-1.7\n"])
def test_non_image_is_refused(data: bytes) -> None:
    with pytest.raises(ImageError, match="not an image"):
        decode_image(data, **LIMITS)


def test_unsupported_format_is_refused(astronaut_rgb: np.ndarray) -> None:
    with pytest.raises(ImageError, match="not an image in a supported format"):
        decode_image(encode(astronaut_rgb, "PPM"), **LIMITS)


def test_empty_and_oversized_files_are_refused(astronaut_jpeg: bytes) -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"", **LIMITS)
    with pytest.raises(ImageError, match="above the limit"):
        decode_image(astronaut_jpeg, max_pixels=LIMITS["max_pixels"], max_bytes=1000)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_decompression_bomb_is_refused_before_decoding() -> None:
    """A 60-byte PNG that claims 100,000 × 100,000 pixels (30 GB of RGB) is refused from its header."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _png_chunk(b"IEND", b"")
    )
    with pytest.raises(ImageError, match=r"decompression bomb.*10000000000 pixels"):
        decode_image(bomb, **LIMITS)


def test_pixel_limit_applies_to_real_images(astronaut_jpeg: bytes) -> None:
    with pytest.raises(ImageError, match="262,144 pixels, above the limit of 100,000"):
        decode_image(astronaut_jpeg, max_pixels=100_000, max_bytes=LIMITS["max_bytes"])
