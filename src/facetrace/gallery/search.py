"""Probe photo → the most similar faces in the gallery, with where each was found.

What a search shows of its outcome (API, CLI, web page) is declared in :mod:`facetrace.gallery.results`.

The probe exists only in memory here: it is decoded, embedded and dropped. It
is never written to disk and never added to the gallery.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace

from facetrace.catalog.scope import EVERYWHERE, SearchScope
from facetrace.core.config import Settings
from facetrace.core.errors import NoFaceError
from facetrace.gallery import calibration, near_duplicates
from facetrace.gallery.gallery import Gallery, Hit
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.types import AnalyzedFace

#: How many more index results a search asks for than it shows, to merge copies of a photo.
COPIES_HEADROOM = 2


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    probe_sha256: str
    probe_faces: list[AnalyzedFace]  # largest first; ``face`` numbers count from 1 in this order
    face_used: int
    hits: list[Hit]
    gallery_size: int
    model_id: str
    timings_ms: dict[str, float]
    calibrated: bool = False
    hidden: int = 0  # results hidden as too weak (more expected false matches than allowed)
    scope: SearchScope = EVERYWHERE  # what the search was narrowed to


def search_photo(
    settings: Settings,
    analyzer: FaceAnalyzer,
    data: bytes,
    *,
    k: int,
    face: int = 1,
    min_score: float | None = None,
    gallery: Gallery | None = None,
    merge_copies: bool = True,
    scope: SearchScope = EVERYWHERE,
) -> SearchOutcome:
    """Search the gallery for face number ``face`` (1 = largest) of the probe image ``data``,
    among the faces seen in ``scope`` (default: the whole gallery).

    ``merge_copies``: show a face and its copies in near-duplicate images as one result (a
    caller that needs every matching face id, such as an erasure, turns it off).
    """
    started = time.perf_counter()
    faces = faces_largest_first(analyzer, data)
    if not faces:
        raise NoFaceError("no face found in the probe image")
    if not 1 <= face <= len(faces):
        raise NoFaceError(f"the probe holds {len(faces)} face(s); --face must be between 1 and {len(faces)}")
    analysed = time.perf_counter()

    gallery = gallery or Gallery.open(settings, analyzer.model_id, analyzer.embedder.dim)
    opened = time.perf_counter()
    # Copies take up index slots: ask for more, so that k distinct photos remain after merging.
    hits = gallery.search(faces[face - 1].embedding, k * COPIES_HEADROOM if merge_copies else k, scope)
    if min_score is not None:
        hits = [hit for hit in hits if hit.score >= min_score]
    if merge_copies:
        hits = near_duplicates.collapse(hits)[:k]
    with gallery.sessions() as session:
        curve = calibration.latest(session, gallery.model_id)
    hidden = 0
    if curve is not None:
        size = len(gallery.index)
        hits = [replace(h, expected_false_matches=curve.expected_false_matches(h.score, size)) for h in hits]
        ceiling = settings.max_expected_false_matches
        if ceiling is not None:
            strong = [h for h in hits if (h.expected_false_matches or 0.0) <= ceiling]
            hidden, hits = len(hits) - len(strong), strong
    finished = time.perf_counter()
    return SearchOutcome(
        probe_sha256=hashlib.sha256(data).hexdigest(),
        probe_faces=faces,
        face_used=face,
        hits=hits,
        gallery_size=len(gallery.index),
        model_id=gallery.model_id,
        timings_ms={
            "analyse_probe": round((analysed - started) * 1000, 2),
            "open_gallery": round((opened - analysed) * 1000, 2),
            "search_and_join": round((finished - opened) * 1000, 2),
        },
        calibrated=curve is not None,
        hidden=hidden,
        scope=scope,
    )


def faces_largest_first(analyzer: FaceAnalyzer, data: bytes) -> list[AnalyzedFace]:
    """The faces of a probe photo, largest first: the order in which ``face`` numbers count."""
    return sorted(analyzer.analyze(data).faces, key=lambda f: f.detection.area, reverse=True)
