"""Turn untrusted bytes into a BGR pixel array, or refuse with a clear reason.

Decoding is where hostile input meets native code, so every limit is checked
*before* pixels are decompressed: byte size, declared pixel count, format, and the
memory the decoding will take (pixels × bytes per pixel of every copy it holds at
once). Large images are brought down to :data:`DECODE_MAX_SIDE` as they are decoded:
JPEG by the decoder itself (``draft``), other formats right after (``reduce``).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from math import ceil

import cv2
import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from facetrace.core.errors import ImageError

#: Pillow format names Facetrace accepts (GIF: first frame only).
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
#: Memory one image's decoding may take by default (FACETRACE_MAX_DECODE_BYTES).
DEFAULT_MAX_DECODE_BYTES = 256 * 1024 * 1024
#: Images are decoded to at most about this many pixels on their longer side. The detector looks
#: at no more than FACETRACE_DETECT_MAX_SIDE (1,600 by default) and the embedder at 112 × 112
#: crops: a face the detector can find keeps at least 2.5 times its detected size here, so
#: nothing findable is lost, while a 10,000-pixel photo no longer takes 400 MB.
DECODE_MAX_SIDE = 4096
#: Modes holding 32-bit grey values (integer or float).
WIDE_MODES = ("I", "F")
#: Modes whose pixels cannot be averaged (palette indices, bits) or that ``reduce`` refuses.
NEAREST_ONLY_MODES = ("1", "P", "PA")
#: Modes with an alpha channel.
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
#: EXIF orientation → the transposition that shows the image upright.
_TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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


def decode_image(
    data: bytes,
    *,
    max_pixels: int,
    max_bytes: int,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
    max_side: int = DECODE_MAX_SIDE,
) -> DecodedImage:
    """Decode ``data`` (any supported format) with EXIF orientation applied, its longer side
    brought down to at most about ``max_side`` pixels (see :data:`DECODE_MAX_SIDE`).

    Raises :class:`ImageError` for anything that is not a complete, supported image within the
    limits, checked from the header before any pixel is decompressed: ``max_bytes`` of file,
    ``max_pixels`` declared, and ``max_decode_bytes`` of memory for the pixels in every form the
    decoding holds at once (:func:`decoding_bytes`). Never returns a partial image.
    """
    if len(data) > max_bytes:
        raise ImageError(f"file is {len(data):,} bytes, above the limit of {max_bytes:,}")
    if not data:
        raise ImageError("file is empty")
    try:
        with warnings.catch_warnings():
            # Our own pixel check below replaces Pillow's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
            fmt = image.format or "unknown"
            _check_pixels(image.size, max_pixels)
            image.seek(0)  # first frame of an animation
            held_by_decoder = _decoder_bytes(image)
            if fmt == "JPEG":
                # The decoder scales by 1/2, 1/4 or 1/8 as it goes: the full size is never held.
                image.draft(image.mode, _reduced_size(image.size, max_side, ceil))
            needed = decoding_bytes(image.size, image.mode, max_side, held_by_decoder)
            if needed > max_decode_bytes:
                raise ImageError(
                    f"image of {image.width}×{image.height} pixels in mode {image.mode} would take "
                    f"{needed:,} bytes of memory to decode, above the limit of {max_decode_bytes:,} "
                    "(FACETRACE_MAX_DECODE_BYTES)"
                )
            orientation = _orientation(image)
            image.load()
            image = _reduced(image, max_side)
            if orientation in _TRANSPOSITIONS:
                image = image.transpose(_TRANSPOSITIONS[orientation])
            bgr = _to_bgr(image)
    except UnidentifiedImageError as exc:
        raise ImageError(f"not an image in a supported format ({', '.join(SUPPORTED_FORMATS)})") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image refused as a decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}") from exc
    return DecodedImage(bgr=bgr, format=fmt)


def decoding_bytes(
    size: tuple[int, int], mode: str, max_side: int = DECODE_MAX_SIDE, held_by_decoder: int = 0
) -> int:
    """The most memory the pixels of an image of ``size`` and Pillow ``mode`` take at any one time
    while :func:`decode_image` turns it into BGR: the decoded image with what the decoder holds
    while it decodes (``held_by_decoder``) or with its reduction to ``max_side``, then the reduced
    image with the conversion's copies (:func:`_conversion_bytes`)."""
    width, height = size
    loaded = width * height * pixel_bytes(mode)
    small_width, small_height = _reduced_size(size, max_side, ceil)
    reduced = small_width * small_height * pixel_bytes(mode) if (small_width, small_height) != size else 0
    if reduced and mode in ("RGBA", "LA"):
        # Pillow averages these premultiplied: a full-size copy, and the reduction converted back.
        reduced = loaded + 2 * reduced
    converting = small_width * small_height * (pixel_bytes(mode) + _conversion_bytes(mode))
    return max(loaded + max(held_by_decoder, reduced), converting + reduced)


def _decoder_bytes(image: Image.Image) -> int:
    """What the decoder holds besides the image: a progressive JPEG keeps every DCT coefficient of
    the full-size image (2 bytes each, for each component at its sampling) until its last scan,
    however small it is drafted to."""
    layers = getattr(image, "layer", None)
    if image.format != "JPEG" or not image.info.get("progressive") or not layers:
        return 0
    width, height = image.size
    most_across = max(layer[1] for layer in layers)
    most_down = max(layer[2] for layer in layers)
    blocks = (
        ceil(width * across / most_across / 8) * ceil(height * down / most_down / 8)
        for _, across, down, _ in layers
    )
    return int(sum(blocks)) * 64 * 2


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel Pillow allocates for ``mode``: 1 for 1, L and P, 2 for 16-bit grey, 4 for the
    rest (RGB is stored as 4 bytes, like RGBA; LA and PA too)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _conversion_bytes(mode: str) -> int:
    """Bytes per pixel the conversion to BGR allocates on top of the image itself: the final BGR
    array (3) and the raw copy it is made from (3, read twice over by Pillow's ``tobytes``: 6), plus
    an RGB image (4) unless the image is one, plus a white background and an RGBA copy for
    transparency (8), or, for 16-bit and 32-bit grey, two raw copies, a float32 and an 8-bit copy."""
    if mode in WIDE_MODES or mode.startswith("I;16"):
        return 2 * pixel_bytes(mode) + 4 + 1 + 3
    if mode == "RGB":
        return 9
    if mode in ALPHA_MODES:
        return 4 + 8 + 9
    return 4 + 9


def _reduced_size(size: tuple[int, int], max_side: int, rounding: Callable[[float], int]) -> tuple[int, int]:
    factor = _reduction(size, max_side)
    return (rounding(size[0] / factor), rounding(size[1] / factor)) if factor > 1 else size


def _reduction(size: tuple[int, int], max_side: int) -> int:
    """The whole factor that brings the longer side of ``size`` to at most ``max_side``."""
    return max(1, ceil(max(size) / max_side))


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` with its longer side at most ``max_side``: each pixel the mean of a block (Pillow's
    ``reduce``), or for palette, bilevel and 16-bit images, which it cannot average, the block's
    first pixel. Neither holds more than the two images."""
    if _reduction(image.size, max_side) == 1:
        return image
    if image.mode in NEAREST_ONLY_MODES or image.mode.startswith("I;16"):
        return image.resize(_reduced_size(image.size, max_side, ceil), Image.Resampling.NEAREST)
    return image.reduce(_reduction(image.size, max_side))


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1: as stored), read before any reduction drops the file's tags."""
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (TypeError, ValueError):
        return 1


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}×{height} = {width * height:,} pixels, above the limit of {max_pixels:,}"
        )


def _to_bgr(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to 8-bit BGR (H×W×3); transparency is composited onto white, 16-bit and
    32-bit grey stretched to the 8-bit range."""
    if image.mode in WIDE_MODES or image.mode.startswith("I;16"):
        grey = np.asarray(image).astype(np.float32)
        np.nan_to_num(grey, copy=False, nan=0.0, posinf=0.0, neginf=0.0)  # a float TIFF may hold them
        np.clip(grey, -1e30, 1e30, out=grey)  # no difference below can overflow
        low, high = float(grey.min()), float(grey.max())
        grey -= low
        grey *= 255.0 / ((high - low) or 1.0)
        return cv2.cvtColor(grey.astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba)
        image = white
    elif image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
