"""Searches reuse this process's copy of the index, and never serve what the catalog dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from facetrace.core.config import Settings
from facetrace.gallery.gallery import Gallery
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.service import Governance
from facetrace.index.kinds import IndexKind
from facetrace.store.engine import open_catalog
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest
from support.photos import encode


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
    Governance.open(settings).erasure.erase(ErasureScope(face_ids=(mirrored,)), reason="test of erasure")
    after = Gallery.for_search(settings, model, dim, sessions)
    assert len(after.index) == 1 and mirrored not in {hit.face.id for hit in after.search(probe, 2)}


@pytest.mark.slow
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


def test_a_face_erased_while_a_search_loads_its_provenance_is_passed_over(
    settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray, analyzer: FaceAnalyzer
) -> None:
    """The faces of a search's results and their images are read by separate queries: an erasure
    committed between the two (seen under load, as a 500 on the portal) leaves a face without its
    image, which the search must pass over, not fail on."""
    photos = ingested(settings, tmp_path, astronaut_rgb, mirrored=True)
    sessions = open_catalog(settings.catalog_url)
    gallery = Gallery.for_search(settings, analyzer.model_id, analyzer.embedder.dim, sessions)
    probe = analyzer.analyze(encode(astronaut_rgb, "JPEG", quality=90)).faces[0].embedding
    best, mirrored = (hit.face.id for hit in gallery.search(probe, 2))

    erased = []
    faces_read = []

    def erase_before_the_images_are_read(_conn, _cursor, statement: str, *_args: object) -> None:
        """Erase once the results' faces are read (with their columns), just before their images are."""
        statement = " ".join(statement.split())
        if "faces.id, faces.image_id, faces.box_x" in statement:
            faces_read.append(statement)
        elif faces_read and not erased and statement.startswith("SELECT images.id"):
            erased.append(mirrored)
            scope = ErasureScope(locations=(str(photos / "b.jpg"),))  # the image goes with its face
            Governance.open(settings).erasure.erase(scope, reason="erased meanwhile")

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", erase_before_the_images_are_read)
    try:
        hits = gallery.search(probe, 2)
    finally:
        event.remove(engine, "before_cursor_execute", erase_before_the_images_are_read)
    assert erased == [mirrored]
    assert [hit.face.id for hit in hits] == [best]
