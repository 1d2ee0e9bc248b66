"""Searches share this process's copy of the index from many threads at once, while ingests and
erasures change the gallery: the copy a search holds is never changed under it (a caught-up copy
replaces it), and no search that starts after an erasure returns the erased face."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from facetrace.core.config import Settings
from facetrace.gallery.gallery import Gallery
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.service import Governance
from facetrace.index.faiss_index import FaissIndex
from facetrace.store.engine import open_catalog
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest
from support.photos import encode

SEARCHERS = 4
#: How long the test waits for the searches: a guard against a hang, not a bound on any latency.
PATIENCE_S = 120.0


def test_a_copy_in_use_is_replaced_by_a_caught_up_one_never_changed(
    settings: Settings,
    tmp_path: Path,
    astronaut_rgb: np.ndarray,
    analyzer: FaceAnalyzer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(encode(astronaut_rgb, "JPEG", quality=95))
    ingest(settings, [str(photos)], source_name="nasa")
    sessions = open_catalog(settings.catalog_url)
    model, dim = analyzer.model_id, analyzer.embedder.dim
    held = Gallery.for_search(settings, model, dim, sessions).index  # a search is reading this one
    ids_held = held.ids().copy()

    # Faces committed to the catalog while the index file is left as it was (a crawl saves it now
    # and then; a process may die before it does): the copy in use lags the catalog.
    (photos / "b.jpg").write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95))
    with monkeypatch.context() as unsaved:
        unsaved.setattr(FaissIndex, "save", lambda _index: None)
        ingest(settings, [str(photos)], source_name="nasa")

    caught_up = Gallery.for_search(settings, model, dim, sessions).index
    assert len(caught_up) == 2
    assert caught_up is not held
    assert len(held) == 1 and np.array_equal(held.ids(), ids_held)  # untouched under its reader
    assert Gallery.for_search(settings, model, dim, sessions).index is caught_up  # shared from now on


def test_searches_from_many_threads_during_an_erasure_never_return_the_erased_face(
    settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray, analyzer: FaceAnalyzer
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for number in range(6):  # the astronaut and slightly different copies of her
        shifted = np.roll(astronaut_rgb, 4 * number, axis=1)
        (photos / f"{number}.jpg").write_bytes(encode(shifted, "JPEG", quality=90 - number))
    ingest(settings, [str(photos)], source_name="nasa")
    sessions = open_catalog(settings.catalog_url)
    model, dim = analyzer.model_id, analyzer.embedder.dim
    probe = analyzer.analyze(encode(astronaut_rgb, "JPEG", quality=85)).faces[0].embedding
    everyone = {hit.face.id for hit in Gallery.for_search(settings, model, dim, sessions).search(probe, 10)}
    assert len(everyone) == 6
    erased = sorted(everyone)[::2]

    done = threading.Event()
    erasure_done = threading.Event()
    after_erasure: list[set[int]] = []

    def search_until_done() -> None:
        while not done.is_set():
            started_after = erasure_done.is_set()
            gallery = Gallery.for_search(settings, model, dim, sessions)
            found = {hit.face.id for hit in gallery.search(probe, 10)}
            if started_after:
                after_erasure.append(found)

    with ThreadPoolExecutor(SEARCHERS) as threads:
        running = [threads.submit(search_until_done) for _ in range(SEARCHERS)]
        try:
            Governance.open(settings).erasure.erase(
                ErasureScope(face_ids=tuple(erased)), reason="test of erasure"
            )
            erasure_done.set()
            (photos / "new.jpg").write_bytes(encode(astronaut_rgb[::-1].copy(), "JPEG", quality=95))
            ingest(settings, [str(photos)], source_name="nasa")  # an ingest while they search, too
            deadline = time.monotonic() + PATIENCE_S
            while len(after_erasure) < 4 * SEARCHERS and not any(search.done() for search in running):
                assert time.monotonic() < deadline, "the searches stopped coming back"
                time.sleep(0.01)
        finally:
            done.set()
        for search in running:
            search.result()  # a search that failed raises here

    assert after_erasure and all(not found & set(erased) for found in after_erasure)
    assert all(found >= everyone - set(erased) for found in after_erasure)
