"""Near-duplicates: resized or re-encoded copies of one photo, linked so a search shows one face.

Exact copies (same bytes) are already one image with many sightings. A copy that was resized
or re-encoded has other bytes, so it is stored as its own image; :func:`link` notes which
earlier image it copies, and :func:`collapse` folds the copies' faces into the original's
search result, so the result lists every place the photo was seen.

Candidates come from the face index, not from a scan of all hashes: a copy's faces score
high against the original's, so the few gallery faces closest to the new image's faces
name every image it could copy, at any gallery size. The perceptual hash then decides.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facetrace.gallery.gallery import Gallery, Hit
from facetrace.store.catalog_models import Face, Image
from facetrace.vision.perceptual_hash import hash_distance

#: The faces of 600 copies of dev photos (0.4-2x, JPEG 30-90) scored 0.73 to 1.0 against the
#: original's (SFace; ``bench/near_duplicate_threshold.py``), 11% of the 0.4x copies below 0.8.
#: A lower bar only widens the candidate list that the perceptual hash then checks.
CANDIDATE_SCORE = 0.6
CANDIDATES_PER_FACE = 5
#: Two faces in linked images are the same face when their box centres are this close
#: (as a share of the image's width and height).
SAME_PLACE = 0.05


def group_of(image: Image) -> int:
    """The id every copy of this photo shares: that of the first stored one."""
    return image.near_duplicate_of or image.id


def copies_of(session: Session, image_ids: set[int]) -> set[int]:
    """``image_ids`` and every image linked with one of them as a near-duplicate."""
    if not image_ids:
        return set()
    group = func.coalesce(Image.near_duplicate_of, Image.id)
    groups = select(group).where(Image.id.in_(sorted(image_ids))).scalar_subquery()
    return image_ids | {int(i) for i in session.scalars(select(Image.id).where(group.in_(groups)))}


def link(session: Session, gallery: Gallery, faces: list[Face], max_distance: int) -> None:
    """Link the image of ``faces`` (stored, not yet indexed) to an earlier image it is a copy of.

    Only images with faces are linked: the link exists so that a face search shows one
    result per photo, and a faceless image never appears in one.
    """
    if not faces or len(gallery.index) == 0:
        return
    image = faces[0].image
    own_hash = image.phash
    if own_hash is None:
        return
    vectors = np.vstack([np.frombuffer(face.embedding, dtype=np.float32) for face in faces])
    scores, ids = gallery.index.search(vectors, CANDIDATES_PER_FACE)
    candidates = {
        int(i) for s, i in zip(scores.flat, ids.flat, strict=True) if i >= 0 and s >= CANDIDATE_SCORE
    }
    if not candidates:
        return
    rows = session.execute(
        select(Image.id, Image.phash, Image.near_duplicate_of)
        .join(Face, Face.image_id == Image.id)
        .where(Face.id.in_(candidates), Image.id != image.id, Image.phash.is_not(None))
        .distinct()
    ).all()
    distances = sorted(
        (hash_distance(own_hash, phash), near_duplicate_of or image_id)
        for image_id, phash, near_duplicate_of in rows
        if phash is not None  # the query's own condition, stated for the type checker
    )
    if distances and distances[0][0] <= max_distance:
        image.near_duplicate_of = distances[0][1]


def collapse(hits: list[Hit]) -> list[Hit]:
    """One result per face of a photo: a copy's hit joins the best hit of the same face.

    Ranks are renumbered; each kept hit lists the hits it absorbed in ``copies``.
    """
    kept: list[Hit] = []
    for hit in hits:
        original = next((k for k in kept if _same_face(k.face, hit.face)), None)
        if original is None:
            kept.append(hit)
        else:
            kept[kept.index(original)] = replace(original, copies=(*original.copies, hit))
    return [replace(hit, rank=rank) for rank, hit in enumerate(kept, start=1)]


def _same_face(a: Face, b: Face) -> bool:
    if group_of(a.image) != group_of(b.image):
        return False
    (ax, ay), (bx, by) = a.relative_centre, b.relative_centre
    return abs(ax - bx) <= SAME_PLACE and abs(ay - by) <= SAME_PLACE
