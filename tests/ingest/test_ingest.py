"""Ingest into a real SQLite catalog and FAISS index: provenance, dedupe, resumability, bad files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skimage_data
from sqlalchemy import func, select

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.gallery.gallery import Gallery
from facetrace.ingest.inputs import InputImage, InputProblem, expand_inputs
from facetrace.store.catalog_models import Face, Image, Sighting, Source
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest
from support.photos import encode


@pytest.fixture
def photo_folder(tmp_path: Path, astronaut_rgb: np.ndarray, astronaut_jpeg: bytes, coffee_png: bytes) -> Path:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    (folder / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (folder / "nested" / "astronaut_copy.jpg").write_bytes(astronaut_jpeg)  # same bytes, another place
    (folder / "astronaut_mirror.png").write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "PNG"))
    (folder / "cameraman.png").write_bytes(encode(skimage_data.camera(), "PNG"))
    (folder / "coffee.png").write_bytes(coffee_png)
    (folder / "broken.jpg").write_bytes(astronaut_jpeg[:3000])
    (folder / "notes.jpg").write_text("this is not a picture")
    (folder / "readme.md").write_text("not an image suffix: not picked up from a folder")
    return folder


def count(settings: Settings, model: type) -> int:
    gallery_sessions = Gallery.open(settings, *_sface()).sessions
    with gallery_sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def data_files(settings: Settings) -> list[Path]:
    """Files under the data dir, but SQLite's transient WAL/shared-memory files."""
    return sorted(
        p for p in settings.data_dir.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    )


def _sface() -> tuple[str, int]:
    return "sface-2021dec@0ba9fbfa01b5", 128


def test_ingest_records_faces_and_provenance(settings: Settings, photo_folder: Path) -> None:
    stats = ingest(settings, [str(photo_folder)], source_name="local", jurisdiction="FR", legal_basis="test")
    assert stats.total == 7
    assert stats.new_images == 4  # astronaut, mirror, cameraman, coffee
    assert stats.known_images == 1  # the nested copy: same bytes
    assert stats.faces == 3 and stats.images_without_faces == 1
    failed = dict(stats.failures)
    assert set(failed) == {str(photo_folder / "broken.jpg"), str(photo_folder / "notes.jpg")}
    assert "truncated" in failed[str(photo_folder / "broken.jpg")]
    assert "not an image" in failed[str(photo_folder / "notes.jpg")]

    gallery = Gallery.open(settings, *_sface())
    assert len(gallery.index) == 3
    with gallery.sessions() as session:
        astronaut = session.scalar(
            select(Image).join(Sighting).where(Sighting.location == str(photo_folder / "astronaut.jpg"))
        )
        assert astronaut is not None
        assert (astronaut.width, astronaut.height, astronaut.format, astronaut.face_count) == (
            512,
            512,
            "JPEG",
            1,
        )
        assert astronaut.size_bytes == (photo_folder / "astronaut.jpg").stat().st_size
        assert len(astronaut.sha256) == 64
        assert sorted(s.location for s in astronaut.sightings) == sorted(
            [str(photo_folder / "astronaut.jpg"), str(photo_folder / "nested" / "astronaut_copy.jpg")]
        )
        assert {s.source.name for s in astronaut.sightings} == {"local"}
        assert astronaut.first_seen <= astronaut.last_seen
        assert astronaut.first_seen.utcoffset() == timedelta(0)  # UTC, even though SQLite drops the zone
        face = astronaut.faces[0]
        assert face.model_id == "sface-2021dec@0ba9fbfa01b5"
        assert len(face.landmarks) == 10 and face.det_score > 0.8 and 0 < face.quality <= 1
        assert face.box_w > 50 and len(face.embedding) == 128 * 4
        source = session.scalar(select(Source).where(Source.name == "local"))
        assert source is not None and (source.jurisdiction, source.legal_basis) == ("FR", "test")


def test_running_twice_adds_nothing_and_updates_last_seen(settings: Settings, photo_folder: Path) -> None:
    ingest(settings, [str(photo_folder)], source_name="local")
    gallery = Gallery.open(settings, *_sface())
    with gallery.sessions() as session:
        before = {i.sha256: (i.first_seen, i.last_seen) for i in session.scalars(select(Image))}
    again = ingest(settings, [str(photo_folder)], source_name="local")
    assert again.new_images == 0 and again.faces == 0
    assert again.known_images == 5 and len(again.failures) == 2
    with gallery.sessions() as session:
        after = {i.sha256: (i.first_seen, i.last_seen) for i in session.scalars(select(Image))}
        assert session.scalar(select(func.count(Face.id))) == 3
        assert session.scalar(select(func.count(Sighting.id))) == 5
    assert after.keys() == before.keys()
    assert all(after[k][0] == before[k][0] and after[k][1] >= before[k][1] for k in before)
    assert len(Gallery.open(settings, *_sface()).index) == 3


def test_the_same_bytes_from_another_source_are_one_image_seen_twice(
    settings: Settings, photo_folder: Path
) -> None:
    ingest(settings, [str(photo_folder / "astronaut.jpg")], source_name="first")
    stats = ingest(settings, [str(photo_folder / "astronaut.jpg")], source_name="second")
    assert stats.known_images == 1 and stats.new_images == 0
    gallery = Gallery.open(settings, *_sface())
    with gallery.sessions() as session:
        image = session.scalars(select(Image)).one()
        assert sorted(s.source.name for s in image.sightings) == ["first", "second"]


def test_list_files_file_urls_and_page_urls(settings: Settings, photo_folder: Path) -> None:
    listing = photo_folder / "list.txt"
    url = (photo_folder / "astronaut.jpg").as_uri()
    listing.write_text(
        f"# images found on the project's own site\n{url}\thttps://example.org/team\n"
        "cameraman.png\nmissing.jpg\nhttps://example.org/picture.jpg\n"
    )
    cap = settings.max_image_bytes
    items = list(expand_inputs([str(listing)], max_bytes=cap))
    astronaut = photo_folder / "astronaut.jpg"
    assert items[0] == InputImage(astronaut, url, "https://example.org/team", max_bytes=cap)
    cameraman = photo_folder / "cameraman.png"
    assert items[1] == InputImage(cameraman, str(cameraman), None, max_bytes=cap)
    assert isinstance(items[2], InputProblem) and "no such file" in items[2].message
    assert isinstance(items[3], InputProblem) and "https://" in items[3].message

    stats = ingest(settings, [str(listing)], source_name="site")
    assert stats.new_images == 2 and len(stats.failures) == 2
    gallery = Gallery.open(settings, *_sface())
    with gallery.sessions() as session:
        sighting = session.scalars(select(Sighting).where(Sighting.location == url)).one()
        assert sighting.page_url == "https://example.org/team"


def test_a_source_is_never_silently_redefined(settings: Settings, photo_folder: Path) -> None:
    ingest(settings, [str(photo_folder / "coffee.png")], source_name="archive", jurisdiction="FR")
    with pytest.raises(FacetraceError, match="registered with jurisdiction 'FR', not 'DE'"):
        ingest(settings, [str(photo_folder / "coffee.png")], source_name="archive", jurisdiction="DE")


def test_the_index_catches_up_with_the_catalog_after_a_crash(settings: Settings, photo_folder: Path) -> None:
    ingest(settings, [str(photo_folder)], source_name="local")
    gallery = Gallery.open(settings, *_sface())
    catalog_ids = sorted(gallery.index.ids().tolist())
    # A crash before the index file was written: the catalog has the faces, the file does not.
    gallery.index.path.unlink()
    gallery.index.meta_path.unlink()
    reopened = Gallery.open(settings, *_sface())
    assert sorted(reopened.index.ids().tolist()) == catalog_ids
    # A face deleted from the catalog (as an erasure does) is dropped from a stale index file.
    with reopened.sessions() as session:
        session.delete(session.get(Face, catalog_ids[0]))
        session.commit()
    assert sorted(Gallery.open(settings, *_sface()).index.ids().tolist()) == catalog_ids[1:]


def test_an_unchanged_gallery_skips_the_full_check(settings: Settings, photo_folder: Path) -> None:
    ingest(settings, [str(photo_folder)], source_name="local")
    gallery = Gallery.open(settings, *_sface())
    assert gallery.reconcile().checked_fully is False


def test_search_finds_the_person_and_where_they_were_seen(
    settings: Settings, photo_folder: Path, analyzer: FaceAnalyzer, astronaut_rgb: np.ndarray
) -> None:
    from facetrace.gallery.results import SearchResponse
    from facetrace.gallery.search import search_photo

    ingest(settings, [str(photo_folder)], source_name="local")
    probe = encode(np.ascontiguousarray(astronaut_rgb[20:480, 40:470]), "JPEG", quality=80)  # a new crop
    files_before = data_files(settings)
    outcome = search_photo(settings, analyzer, probe, k=3)
    result = SearchResponse.of(outcome).with_has_crop()
    assert result["gallery_size"] == 3
    first, second, third = result["results"]
    assert {s["location"] for s in first["sightings"]} | {s["location"] for s in second["sightings"]} >= {
        str(photo_folder / "astronaut.jpg"),
        str(photo_folder / "astronaut_mirror.png"),
    }
    assert first["score"] > 0.8 and second["score"] > 0.8 and third["score"] < 0.4
    assert first["sightings"][0]["source"] == "local" and len(first["box"]) == 4
    # The probe is never stored: no new image, face or file.
    assert count(settings, Image) == 4 and count(settings, Face) == 3
    assert data_files(settings) == files_before


def test_the_probe_face_can_be_chosen(
    settings: Settings, photo_folder: Path, analyzer: FaceAnalyzer, astronaut_rgb: np.ndarray
) -> None:
    from facetrace.core.errors import NoFaceError
    from facetrace.gallery.search import search_photo

    ingest(settings, [str(photo_folder)], source_name="local")
    cameraman = np.stack([skimage_data.camera()[::2, ::2]] * 3, axis=-1)  # 256×256, smaller face
    group = np.zeros((512, 768, 3), np.uint8)
    group[:, :512] = astronaut_rgb
    group[128:384, 512:] = cameraman
    probe = encode(group, "PNG")

    largest = search_photo(settings, analyzer, probe, k=1)
    assert len(largest.probe_faces) == 2 and largest.face_used == 1
    assert "astronaut" in largest.hits[0].face.image.sightings[0].location
    second = search_photo(settings, analyzer, probe, k=1, face=2)
    assert second.hits[0].face.image.sightings[0].location.endswith("cameraman.png")
    with pytest.raises(NoFaceError, match="holds 2 face"):
        search_photo(settings, analyzer, probe, k=1, face=3)
    unfiltered = search_photo(settings, analyzer, probe, k=3)
    filtered = search_photo(settings, analyzer, probe, k=3, min_score=0.5)
    assert len(unfiltered.hits) == 3 and unfiltered.hits[2].score < 0.5
    assert [h.face.id for h in filtered.hits] == [h.face.id for h in unfiltered.hits[:2]]


@pytest.mark.slow
def test_an_ingest_that_reaches_the_threshold_compresses_the_index(
    settings: Settings, photo_folder: Path, analyzer: FaceAnalyzer, astronaut_jpeg: bytes
) -> None:
    small = settings.model_copy(update={"index_compress_at": 3})
    (photo_folder / "broken.jpg").unlink()
    first = ingest(small, [str(photo_folder / "astronaut.jpg")], source_name="local")
    assert first.index_rebuilt_as is None  # 1 face: still exact
    stats = ingest(small, [str(photo_folder)], source_name="local")
    assert stats.index_rebuilt_as == "ivf-pq"
    gallery = Gallery.open(small, analyzer.model_id, analyzer.embedder.dim)
    assert gallery.index.kind == "ivf-pq" and len(gallery.index) == 3
    hits = gallery.search(analyzer.analyze(astronaut_jpeg).faces[0].embedding, 3)
    assert hits[0].face.image.sightings[0].location.endswith("astronaut.jpg")
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)  # the exact score, re-ranked from the catalog
    assert ingest(small, [str(photo_folder)], source_name="local").index_rebuilt_as is None  # once
