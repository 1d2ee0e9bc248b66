"""A perceptual hash of an image: resized or re-encoded copies of a photo get (nearly) the same one.

The DCT hash of ``imagehash`` (64 bits), computed on a grayscale copy first shrunk with area
averaging: cheap on big photos, and what makes a 1600-pixel original and its 400-pixel
thumbnail land within a few bits of each other. The Hamming distance between two hashes is
the number of differing bits; see ``Settings.near_duplicate_max_distance`` for the cut-off
and how it was chosen.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

#: imagehash's phash reduces the image to 32×32 before its DCT; shrinking to that size here
#: with area averaging avoids Pillow resampling a full-size photo.
_SIDE = 32


def perceptual_hash(bgr: np.ndarray) -> str:
    """The 64-bit DCT hash of a BGR image, as 16 hex digits."""
    import imagehash  # SciPy with it: only the processes that hash images for the gallery load them

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (_SIDE, _SIDE), interpolation=cv2.INTER_AREA)
    return str(imagehash.phash(Image.fromarray(small)))


def hash_distance(a: str, b: str) -> int:
    """The number of bits in which two hex hashes differ."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
