"""What decoding hostile images costs: peak memory and seconds per file, each in a fresh process.

The files are small on disk and large in pixels: an RGBA PNG just under the pixel limit, a 16-bit
grey PNG, a 32-bit float TIFF, a GIF and a TIFF of many frames, a progressive JPEG of 8000 × 8000.
Each is decoded with the default limits (FACETRACE_MAX_IMAGE_PIXELS, FACETRACE_MAX_IMAGE_BYTES,
FACETRACE_MAX_DECODE_BYTES) in a process of its own, so that its peak resident memory (``VmHWM``,
less the process's resident memory before decoding) is that file's alone.

Run: ``.venv/bin/python bench/decode_memory.py``
"""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facetrace.core.config import Settings
from facetrace.core.errors import ImageError
from facetrace.vision.decode import decode_image

MIB = 1024 * 1024


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def _frames(fmt: str, count: int, size: int) -> bytes:
    frames = [Image.new("L", (size, size), 16 * (n % 16)) for n in range(count)]
    buffer = io.BytesIO()
    options = {"compression": "tiff_deflate"} if fmt == "TIFF" else {}
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], **options)
    return buffer.getvalue()


def hostile_files(max_pixels: int) -> dict[str, bytes]:
    """Name → bytes of each file the benchmark decodes."""
    side = int(max_pixels**0.5) - 1
    rgba = Image.new("RGBA", (side, side), (200, 120, 40, 128))
    ramp = np.linspace(0, 65535, 6000, dtype=np.uint16)
    grey16 = Image.fromarray(np.tile(ramp, (6000, 1)))
    float_tiff = io.BytesIO()
    Image.new("F", (6000, 6000), 0.5).save(float_tiff, "TIFF", compression="tiff_deflate")
    jpeg = io.BytesIO()
    Image.new("RGB", (8000, 8000), (90, 140, 200)).save(jpeg, "JPEG", quality=80, progressive=True)
    return {
        f"RGBA PNG {side}×{side}": _png(rgba),
        "16-bit grey PNG 6000×6000": _png(grey16),
        "32-bit float TIFF 6000×6000": float_tiff.getvalue(),
        "GIF of 200 frames 2000×2000": _frames("GIF", 200, 2000),
        "TIFF of 50 frames 3000×3000": _frames("TIFF", 50, 3000),
        "progressive JPEG 8000×8000": jpeg.getvalue(),
    }


def _memory(line: str) -> int:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), in bytes (Linux)."""
    status = Path("/proc/self/status").read_text()
    return int(next(row.split()[1] for row in status.splitlines() if row.startswith(line + ":"))) * 1024


def measure_one(path: str) -> None:
    """Child process: decode the file at ``path`` and print its cost as JSON."""
    settings = Settings()
    data = Path(path).read_bytes()
    limits = {"max_pixels": settings.max_image_pixels, "max_bytes": settings.max_image_bytes}
    if "max_decode_bytes" in inspect.signature(decode_image).parameters:
        limits["max_decode_bytes"] = settings.max_decode_bytes
    before = _memory("VmRSS")
    started = time.perf_counter()
    try:
        image = decode_image(data, **limits)
        outcome = f"decoded {image.width}×{image.height}"
    except ImageError as exc:
        outcome = f"refused: {exc}"
    seconds = time.perf_counter() - started
    peak = _memory("VmHWM") - before
    print(json.dumps({"peak": peak, "seconds": seconds, "outcome": outcome}))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        measure_one(sys.argv[2])
        return
    print(f"{'file':34} {'bytes':>10} {'peak MiB':>9} {'seconds':>8}  outcome")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in hostile_files(Settings().max_image_pixels).items():
            path = Path(folder) / "image"
            path.write_bytes(data)
            run = subprocess.run(
                [sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, check=True
            )
            cost = json.loads(run.stdout)
            print(
                f"{name:34} {len(data):>10,} {cost['peak'] / MIB:>9.0f} {cost['seconds']:>8.2f}  "
                f"{cost['outcome'][:90]}"
            )


if __name__ == "__main__":
    main()
