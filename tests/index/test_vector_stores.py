"""The gallery behaves the same on every vector store: FAISS files and a Milvus collection (on
Milvus Lite here; the same client talks to a Milvus cluster). Ingest, search with provenance,
erasure, the catch-up after a crash, and a rebuild from the catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrace.core.config import Settings
from facetrace.gallery.gallery import Gallery
from facetrace.gallery.stats import gallery_stats
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.index.stores import open_index
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest
from support.photos import encode

PURPOSE = Purpose("CASE-9", "missing-person", "a store must answer like any other")


@pytest.fixture(params=["faiss", "milvus-lite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "milvus-lite":
        pytest.importorskip("milvus_lite", reason="Milvus Lite needs pip install 'pymilvus[milvus-lite]'")
    store = "milvus" if request.param == "milvus-lite" else "faiss"
    return Settings(data_dir=tmp_path / "var", workers=1, vector_store=store)


@pytest.fixture
def photos(tmp_path: Path, astronaut_rgb: np.ndarray) -> dict[str, Path]:
    folder = tmp_path / "photos"
    folder.mkdir()
    found = {"original": folder / "astronaut.jpg", "mirrored": folder / "mirrored.jpg"}
    found["original"].write_bytes(encode(astronaut_rgb, "JPEG", quality=95))
    found["mirrored"].write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95))
    return found


def test_ingest_search_erase_on_every_store(
    store_settings: Settings, photos: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    stats = ingest(store_settings, [str(photos["original"].parent)], source_name="nasa", jurisdiction="US")
    assert stats.faces == 2
    operator = Governance.open(store_settings)
    outcome = operator.searches.search(analyzer, photos["original"].read_bytes(), PURPOSE, k=5)
    assert [hit.face.image.sightings[0].location for hit in outcome.hits] == [
        str(photos["original"]),
        str(photos["mirrored"]),
    ]
    assert outcome.hits[0].score == pytest.approx(1.0, abs=1e-4)

    operator.erasure.erase(ErasureScope(locations=(str(photos["original"]),)), reason="request RR-9")
    index = open_index(store_settings, analyzer.model_id, analyzer.embedder.dim)
    assert outcome.hits[0].face.id not in index.ids().tolist() and len(index) == 1
    [listed] = gallery_stats(store_settings)["indexes"]  # `facetrace stats` names the store it uses
    assert (listed["model"], listed["vectors"], listed["kind"]) == (analyzer.model_id, 1, index.kind)
    assert listed["file"] == index.location
    again = operator.searches.search(analyzer, photos["original"].read_bytes(), PURPOSE, k=5)
    assert [hit.face.id for hit in again.hits] == [outcome.hits[1].face.id]


def test_the_store_catches_up_with_the_catalog_and_rebuilds_from_it(
    store_settings: Settings, photos: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    ingest(store_settings, [str(photos["original"].parent)], source_name="nasa")
    model, dim = analyzer.model_id, analyzer.embedder.dim
    index = open_index(store_settings, model, dim)
    lost = int(index.ids()[0])
    index.remove(np.array([lost]))  # as if a crash came between the catalog and the store
    index.save()
    gallery = Gallery.open(store_settings, model, dim)  # opening reconciles with the catalog
    assert sorted(gallery.index.ids().tolist()).count(lost) == 1 and len(gallery.index) == 2
    assert gallery.rebuild() == 2
