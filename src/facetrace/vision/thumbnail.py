"""The small picture of a face a result card shows: a square JPEG around the detected box.

Cut at ingest from the decoded image, while its pixels are in memory: Facetrace keeps no
image bytes, and a result card that loaded the photo from where it was found would tell
that site which investigator looked at it (and go blank once the photo moved).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Room around the detected box, as a share of its longer side, so hair and chin show.
MARGIN = 0.25
JPEG_QUALITY = 85


def face_thumbnail(bgr: np.ndarray, box: tuple[float, float, float, float], size: int) -> bytes:
    """A ``size``×``size`` JPEG of the face in ``box`` (x, y, w, h), padded grey past the image's edges."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * MARGIN)
    left = round(x + w / 2 - side / 2)
    top = round(y + h / 2 - side / 2)
    side_px = max(round(side), 1)
    height, width = bgr.shape[:2]
    crop = np.full((side_px, side_px, 3), 128, dtype=np.uint8)
    src_x0, src_y0 = max(left, 0), max(top, 0)
    src_x1, src_y1 = min(left + side_px, width), min(top + side_px, height)
    if src_x1 > src_x0 and src_y1 > src_y0:
        crop[src_y0 - top : src_y1 - top, src_x0 - left : src_x1 - left] = bgr[src_y0:src_y1, src_x0:src_x1]
    interpolation = cv2.INTER_AREA if side_px > size else cv2.INTER_LINEAR
    small = cv2.resize(crop, (size, size), interpolation=interpolation)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR array
        raise ValueError("OpenCV could not encode the face thumbnail")
    return encoded.tobytes()
