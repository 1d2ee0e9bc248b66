"""Searches reuse this process's copy of the index, and never serve what the catalog dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import encode
from facetrace.catalog.db import open_catalog
from facetrace.config import Settings
from facetrace.gallery import Gallery
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.service import Governance
from facetrace.index.kinds import IndexKind
from facetrace.ingest.pipeline import ingest
from facetrace.vision.analyzer import FaceAnalyzer


def ingested(settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray, *, mirrored: bool) -> Path:
    """The astronaut (and her mirror image) ingested from a folder; returns the folder."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(encode(astronaut_rgb, "JPEG", quality=95))
    if mirrored:
        (photos / "b.jpg").write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95))
    ingest(settings, [str(photos)], source_name="nasa")
    return photos


def test_the_search_index_is_read_once_and_follows_ingest_and_erasure(
    settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray, analyzer: FaceAnalyzer
) -> None:
    photos = ingested(settings, tmp_path, astronaut_rgb, mirrored=False)
    sessions = open_catalog(settings.catalog_url)
    model, dim = analyzer.model_id, analyzer.embedder.dim

    first = Gallery.for_search(settings, model, dim, sessions)
    assert len(first.index) == 1
    assert Gallery.for_search(settings, model, dim, sessions).index is first.index  # not read again

    (photos / "b.jpg").write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95))
    ingest(settings, [str(photos)], source_name="nasa")
    grown = Gallery.for_search(settings, model, dim, sessions)
    assert len(grown.index) == 2 and grown.index is not first.index  # the file changed: read again

    probe = analyzer.analyze(encode(astronaut_rgb, "JPEG", quality=90)).faces[0].embedding
    mirrored = grown.search(probe, 2)[1].face.id  # the weaker match: the mirrored photo
    Governance.open(settings).erase(ErasureScope(face_ids=(mirrored,)), reason="test of erasure")
    after = Gallery.for_search(settings, model, dim, sessions)
    assert len(after.index) == 1 and mirrored not in {hit.face.id for hit in after.search(probe, 2)}


def test_searches_keep_the_old_index_until_a_rebuild_is_written(
    settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray, analyzer: FaceAnalyzer
) -> None:
    ingested(settings, tmp_path, astronaut_rgb, mirrored=True)
    sessions = open_catalog(settings.catalog_url)
    model, dim = analyzer.model_id, analyzer.embedder.dim
    probe = analyzer.analyze(encode(astronaut_rgb, "JPEG", quality=90)).faces[0].embedding
    exact = [
        (hit.face.id, hit.score)
        for hit in Gallery.for_search(settings, model, dim, sessions).search(probe, 2)
    ]

    with Gallery.write_lock(settings):
        rebuilding = Gallery.open(settings, model, dim, sessions)
        rebuilding.rebuild(IndexKind.IVF_PQ)
        meanwhile = Gallery.for_search(settings, model, dim, sessions)
        assert meanwhile.index.kind == "flat"  # nothing written yet: searches go on as before
        rebuilding.index.save()
    compressed = Gallery.for_search(settings, model, dim, sessions)
    assert compressed.index.kind == "ivf-pq"
    # Re-ranked with the catalog's templates: the same faces, the same exact scores.
    found = [(hit.face.id, hit.score) for hit in compressed.search(probe, 2)]
    assert [face_id for face_id, _ in found] == [face_id for face_id, _ in exact]
    assert np.allclose([score for _, score in found], [score for _, score in exact], atol=1e-5)
