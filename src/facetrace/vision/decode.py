"""Turn untrusted bytes into a BGR pixel array, or refuse with a clear reason.

Decoding is where hostile input meets native code, so every limit is checked
*before* pixels are decompressed: byte size, declared pixel count, format.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facetrace.errors import ImageError

#: Pillow format names Facetrace accepts (GIF: first frame only).
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Pixels after EXIF orientation, as OpenCV wants them (H×W×3 uint8, BGR)."""

    bgr: np.ndarray
    format: str

    @property
    def width(self) -> int:
        return int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self.bgr.shape[0])


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int) -> DecodedImage:
    """Decode ``data`` (any supported format) with EXIF orientation applied.

    Raises :class:`ImageError` for anything that is not a complete, supported
    image within the limits; never returns a partial image.
    """
    if len(data) > max_bytes:
        raise ImageError(f"file is {len(data):,} bytes, above the limit of {max_bytes:,}")
    if not data:
        raise ImageError("file is empty")
    try:
        with warnings.catch_warnings():
            # Our own pixel check below replaces Pillow's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as im:
                _check_pixels(im.size, max_pixels)
                im.seek(0)  # first frame of an animation
                im.load()
                oriented = ImageOps.exif_transpose(im)
                fmt = im.format or "unknown"
                rgb = _to_rgb(oriented)
    except UnidentifiedImageError as exc:
        raise ImageError(f"not an image in a supported format ({', '.join(SUPPORTED_FORMATS)})") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image refused as a decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}") from exc
    bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
    return DecodedImage(bgr=bgr, format=fmt)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}×{height} = {width * height:,} pixels, above the limit of {max_pixels:,}"
        )


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited onto white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        span = float(arr.max() - arr.min()) or 1.0
        im = Image.fromarray(((arr - arr.min()) * (255.0 / span)).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")
