"""The catalog on a real PostgreSQL: migrations, the whole ingest → search → stats path, portable SQL.

The throwaway cluster comes from support/catalogs.py (``cluster``/``pg_url`` fixtures); every test
gets a fresh database.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from skimage import data as skimage_data
from sqlalchemy import BigInteger, delete, func, inspect, select, text
from sqlalchemy.dialects.postgresql import BYTEA
from sqlalchemy.orm import Session

from facetrace.catalog import repository
from facetrace.catalog.repository import Place
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.gallery.gallery import Gallery
from facetrace.gallery.results import SearchResult
from facetrace.gallery.search import search_photo
from facetrace.gallery.stats import gallery_stats
from facetrace.store.base import Base
from facetrace.store.catalog_models import Face, Image, Sighting, Source
from facetrace.store.engine import SCHEMA_HEAD, alembic_config, create_catalog_engine, open_catalog
from facetrace.vision.analyzer import ImageAnalysis
from facetrace.vision.factory import build_analyzer
from facetrace.vision.types import AnalyzedFace, Detection
from support.ingesting import ingest

pytestmark = pytest.mark.postgres

MODEL_ID = "test-model"
DIM = 8


def _encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


# --- (1) migrations -----------------------------------------------------------------------------


def test_open_catalog_migrates_an_empty_database_once(pg_url: str) -> None:
    engine = create_catalog_engine(pg_url)
    try:
        assert not inspect(engine).get_table_names()
        open_catalog(pg_url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
        assert set(Base.metadata.tables) | {"alembic_version"} == set(inspect(engine).get_table_names())

        open_catalog(pg_url)  # a no-op: still one revision row, same tables
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1

        for table in ("sources", "images", "sightings", "faces"):
            columns = {c["name"]: c for c in inspect(engine).get_columns(table)}
            assert isinstance(columns["id"]["type"], BigInteger), table
            assert "nextval" in str(columns["id"]["default"]), table  # BIGSERIAL: the server numbers rows
        faces = {c["name"]: c["type"] for c in inspect(engine).get_columns("faces")}
        assert isinstance(faces["image_id"], BigInteger)
        assert isinstance(faces["embedding"], BYTEA)
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back_on_postgres(pg_url: str) -> None:
    from alembic import command

    open_catalog(pg_url)
    engine = create_catalog_engine(pg_url)
    try:
        command.downgrade(alembic_config(engine), "base")
        assert not set(Base.metadata.tables) & set(inspect(engine).get_table_names())
        open_catalog(pg_url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- (2) the whole path -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    return _encode(skimage_data.astronaut(), "JPEG", quality=95)


@pytest.fixture
def astronaut_folder(tmp_path: Path, astronaut_jpeg: bytes) -> Path:
    """Eileen Collins (NASA, public domain) three ways, and a truncated JPEG."""
    rgb = skimage_data.astronaut()
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (folder / "astronaut_mirror.png").write_bytes(_encode(rgb[:, ::-1].copy(), "PNG"))
    small = np.asarray(PILImage.fromarray(rgb).resize((320, 320), PILImage.Resampling.LANCZOS))
    (folder / "astronaut_small.jpg").write_bytes(_encode(small, "JPEG", quality=90))
    (folder / "broken.jpg").write_bytes(astronaut_jpeg[:3000])
    return folder


def _totals(url: str) -> dict[str, int]:
    engine = create_catalog_engine(url)
    try:
        with Session(engine) as session:
            return repository.totals(session)
    finally:
        engine.dispose()


def test_ingest_search_and_stats_on_postgres(
    tmp_path: Path, pg_url: str, astronaut_folder: Path, astronaut_jpeg: bytes
) -> None:
    settings = Settings(data_dir=tmp_path / "var", database_url=pg_url)
    broken = str(astronaut_folder / "broken.jpg")

    stats = ingest(
        settings,
        [str(astronaut_folder)],
        source_name="pg-test",
        jurisdiction="FR",
        legal_basis="test",
        workers=1,
    )
    assert (stats.total, stats.new_images, stats.known_images, stats.faces) == (4, 3, 0, 3)
    assert [location for location, _ in stats.failures] == [broken]
    assert _totals(pg_url) == {"sources": 1, "images": 3, "sightings": 3, "faces": 3}

    again = ingest(settings, [str(astronaut_folder)], source_name="pg-test", workers=1)
    assert (again.new_images, again.known_images, again.faces) == (0, 3, 0)
    assert [location for location, _ in again.failures] == [broken]
    assert _totals(pg_url) == {"sources": 1, "images": 3, "sightings": 3, "faces": 3}

    outcome = search_photo(settings, build_analyzer(settings), astronaut_jpeg, k=3)
    # The small copy is a near-duplicate of the original: one result with it as a copy.
    assert outcome.gallery_size == 3 and len(outcome.hits) == 2
    best = outcome.hits[0]
    assert [copy.face.image.width for copy in best.copies] == [320]
    assert best.face.image.sha256 == hashlib.sha256(astronaut_jpeg).hexdigest()
    assert best.score > 0.9
    assert [(s.source.name, s.source.jurisdiction) for s in best.face.image.sightings] == [("pg-test", "FR")]
    shown = SearchResult.of(best)  # what the CLI prints: timestamps come back timezone-aware
    assert shown.sightings[0].location == str(astronaut_folder / "astronaut.jpg")
    assert datetime.fromisoformat(shown.image.first_seen).tzinfo is not None

    summary = gallery_stats(settings)
    assert summary["catalog_bytes"] is None
    assert summary["catalog"].startswith("postgresql+psycopg://")
    assert (summary["images"], summary["faces"], summary["sightings"]) == (3, 3, 3)
    assert list(summary["faces_per_model"].values()) == [3]
    assert [(s["name"], s["images"], s["faces"]) for s in summary["sources"]] == [("pg-test", 3, 3)]
    assert [index["vectors"] for index in summary["indexes"]] == [3]

    # The index is a derived copy: without its files, opening the gallery refills it from PostgreSQL
    # (iter_embeddings by ids), and a rebuild streams every template back (iter_embeddings, yield_per).
    shutil.rmtree(settings.index_dir)
    analyzer = build_analyzer(settings)
    refilled = search_photo(settings, analyzer, astronaut_jpeg, k=3)
    assert refilled.gallery_size == 3
    assert refilled.hits[0].face.id == best.face.id and refilled.hits[0].score == pytest.approx(best.score)
    assert Gallery.open(settings, analyzer.model_id, analyzer.embedder.dim).rebuild() == 3


# --- (3) the repository's queries, one by one ---------------------------------------------------


def _analysis(faces: int, seed: int) -> ImageAnalysis:
    rng = np.random.default_rng(seed)
    analysed = []
    for _ in range(faces):
        vector = rng.normal(size=DIM).astype(np.float32)
        analysed.append(
            AnalyzedFace(
                detection=Detection(
                    box=(10.0, 20.0, 30.0, 40.0),
                    landmarks=rng.uniform(0, 50, size=(5, 2)).astype(np.float32),
                    score=0.99,
                ),
                embedding=vector / np.linalg.norm(vector),
                quality=0.5,
            )
        )
    return ImageAnalysis(width=64, height=64, format="PNG", model_id=MODEL_ID, faces=analysed, phash="0" * 16)


def _add(session: Session, sha: str, faces: int, source: Source, location: str) -> list[Face]:
    return repository.add_analyzed_image(
        session,
        sha256=sha,
        size_bytes=100,
        analysis=_analysis(faces, seed=len(sha) + faces),
        model_id=MODEL_ID,
        source=source,
        place=Place(location),
    )


@pytest.fixture
def pg_session(pg_url: str) -> Iterator[Session]:
    sessions = open_catalog(pg_url)
    with sessions() as session:
        yield session
    sessions.kw["bind"].dispose()


def test_sources_sightings_and_source_stats(pg_session: Session) -> None:
    session = pg_session
    web = repository.get_or_create_source(session, "web", jurisdiction="DE", legal_basis="consent")
    local = repository.get_or_create_source(session, "local")
    repository.get_or_create_source(session, "empty", kind="crawl")
    assert repository.get_or_create_source(session, "web").id == web.id
    with pytest.raises(FacetraceError, match="jurisdiction"):
        repository.get_or_create_source(session, "web", jurisdiction="FR")
    _add(session, "a" * 64, 2, web, "https://example.org/a.jpg")
    _add(session, "b" * 64, 0, web, "https://example.org/b.jpg")
    shared = _add(session, "c" * 64, 1, local, "/photos/c.jpg")[0].image
    session.commit()

    now = shared.last_seen
    assert repository.record_sighting(
        session, shared, web, Place("https://example.org/c.jpg", "https://p"), now
    )
    assert not repository.record_sighting(session, shared, web, Place("https://example.org/c.jpg"), now)
    session.commit()
    assert repository.image_by_sha256(session, "c" * 64).id == shared.id
    assert repository.image_by_sha256(session, "d" * 64) is None
    revisited = session.scalar(select(Sighting).where(Sighting.location == "https://example.org/c.jpg"))
    assert revisited.page_url == "https://p"  # a revisit without a page keeps the one known

    per_source = repository.source_stats(session)
    assert [(s.name, s.images, s.faces) for s in per_source] == [
        ("empty", 0, 0),
        ("local", 1, 1),
        ("web", 3, 3),
    ]
    stats = {s.name: s for s in per_source}
    assert (stats["web"].jurisdiction, stats["web"].legal_basis) == ("DE", "consent")
    assert stats["empty"].kind == "crawl"
    assert repository.totals(session) == {"sources": 3, "images": 3, "sightings": 4, "faces": 3}
    assert repository.faces_per_model(session) == {MODEL_ID: 3}


def test_embeddings_stream_in_batches_and_ids_are_never_reused(pg_session: Session) -> None:
    session = pg_session
    source = repository.get_or_create_source(session, "s")
    stored = [face for n in range(5) for face in _add(session, f"{n:064d}", 2, source, f"/p/{n}.png")]
    session.commit()
    all_ids = [face.id for face in stored]

    # The yield_per path: on PostgreSQL a server-side cursor, read in partitions of ``batch`` rows.
    chunks = list(repository.iter_embeddings(session, MODEL_ID, batch=3))
    assert [len(ids) for ids, _ in chunks] == [3, 3, 3, 1]
    streamed_ids = np.concatenate([ids for ids, _ in chunks])
    assert streamed_ids.tolist() == sorted(all_ids)
    vectors = np.vstack([v for _, v in chunks])
    assert vectors.dtype == np.float32 and vectors.shape == (10, DIM)
    by_id = {face.id: np.frombuffer(face.embedding, dtype=np.float32) for face in stored}
    for face_id, vector in zip(streamed_ids, vectors, strict=True):
        np.testing.assert_array_equal(vector, by_id[int(face_id)])
    # The by-ids path (np.int64 ids, as reconcile passes them), in batches too.
    some = np.array(all_ids[1::3], dtype=np.int64)
    picked = list(repository.iter_embeddings(session, MODEL_ID, some, batch=2))
    assert np.concatenate([ids for ids, _ in picked]).tolist() == sorted(some.tolist())
    assert list(repository.iter_embeddings(session, "another-model")) == []

    assert repository.face_ids(session, MODEL_ID).tolist() == sorted(all_ids)
    assert repository.face_count_and_max_id(session, MODEL_ID) == (10, max(all_ids))
    assert repository.face_count_and_max_id(session, "another-model") == (0, None)

    found = repository.faces_with_provenance(session, [all_ids[0], all_ids[-1], 10**12])
    assert set(found) == {all_ids[0], all_ids[-1]}
    assert found[all_ids[-1]].image.sightings[0].source.name == "s"
    assert found[all_ids[0]].landmarks == [round(float(v), 2) for v in found[all_ids[0]].landmarks]

    # Deleting the newest image cascades to its faces and sightings; the ids are not handed out again.
    newest = session.get(Image, stored[-1].image_id)
    session.execute(delete(Image).where(Image.id == newest.id))
    session.commit()
    assert session.scalar(select(func.count(Face.id))) == 8
    assert session.scalar(select(func.count(Sighting.id))) == 4
    later = _add(session, "f" * 64, 1, source, "/p/later.png")
    session.commit()
    assert later[0].id > max(all_ids) and later[0].image_id > newest.id


def test_timestamps_and_big_ids_round_trip(pg_session: Session) -> None:
    """64-bit ids beyond 2**31 and timezone-aware timestamps survive PostgreSQL."""
    session = pg_session
    source = repository.get_or_create_source(session, "big")
    session.execute(text("SELECT setval(pg_get_serial_sequence('faces', 'id'), 5000000000)"))
    face = _add(session, "e" * 64, 1, source, "/big.png")[0]
    session.commit()
    assert face.id == 5_000_000_001
    assert repository.face_ids(session, MODEL_ID).tolist() == [5_000_000_001]
    session.expire_all()
    loaded = session.get(Face, face.id)
    assert loaded.created_at.tzinfo is not None
