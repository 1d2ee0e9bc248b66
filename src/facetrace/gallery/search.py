"""Probe photo → the most similar faces in the gallery, with where each was found.

The probe exists only in memory here: it is decoded, embedded and dropped. It
is never written to disk and never added to the gallery.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from typing import Any

from facetrace.catalog.scope import EVERYWHERE, SearchScope
from facetrace.core.config import Settings
from facetrace.core.errors import NoFaceError
from facetrace.gallery import calibration, near_duplicates
from facetrace.gallery.gallery import Gallery, Hit
from facetrace.store.catalog_models import Sighting
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


def probe_faces_to_dicts(faces: list[AnalyzedFace]) -> list[dict[str, Any]]:
    return [
        {
            "face": number,
            "box": [round(v, 1) for v in f.detection.box],
            "det_score": round(f.detection.score, 3),
            "quality": round(f.quality, 3),
        }
        for number, f in enumerate(faces, start=1)
    ]


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    face = hit.face
    image = face.image
    return {
        "rank": hit.rank,
        "score": round(hit.score, 4),
        "expected_false_matches": None
        if hit.expected_false_matches is None
        else float(f"{hit.expected_false_matches:.3g}"),
        "face_id": face.id,
        "has_crop": face.has_crop,
        "box": [round(v, 1) for v in face.box],
        "det_score": round(face.det_score, 3),
        "quality": round(face.quality, 3),
        "image": {
            "sha256": image.sha256,
            "width": image.width,
            "height": image.height,
            "first_seen": image.first_seen.isoformat(),
            "last_seen": image.last_seen.isoformat(),
        },
        "sightings": [sighting_to_dict(s) for s in image.sightings],
        "near_duplicates": [
            {
                "face_id": copy.face.id,
                "has_crop": copy.face.has_crop,
                "score": round(copy.score, 4),
                "image": {
                    "sha256": copy.face.image.sha256,
                    "width": copy.face.image.width,
                    "height": copy.face.image.height,
                },
                "sightings": [sighting_to_dict(s) for s in copy.face.image.sightings],
            }
            for copy in hit.copies
        ],
    }


def sighting_to_dict(sighting: Sighting) -> dict[str, Any]:
    """Where and when an image was seen, and under which source: for results and access reports."""
    source = sighting.source
    return {
        "location": sighting.location,
        "page_url": sighting.page_url,
        "page_title": sighting.page_title,
        "alt_text": sighting.alt_text,
        "http_last_modified": sighting.http_last_modified,
        "source": source.name,
        "legal_basis": source.legal_basis,
        "jurisdiction": source.jurisdiction,
        "first_seen": sighting.first_seen.isoformat(),
        "last_seen": sighting.last_seen.isoformat(),
        "gone_at": sighting.gone_at.isoformat() if sighting.gone_at else None,
    }


def outcome_to_dict(outcome: SearchOutcome) -> dict[str, Any]:
    return {
        "model": outcome.model_id,
        "gallery_size": outcome.gallery_size,
        "probe": {
            "sha256": outcome.probe_sha256,
            "face_used": outcome.face_used,
            "faces": probe_faces_to_dicts(outcome.probe_faces),
        },
        "calibrated": outcome.calibrated,
        "hidden_as_too_weak": outcome.hidden,
        "scope": outcome.scope.to_dict(),
        "results": [hit_to_dict(hit) for hit in outcome.hits],
        "timings_ms": outcome.timings_ms,
    }
