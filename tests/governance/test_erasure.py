"""Erasure and jurisdiction purges: physical deletion, blocked sources, certificates, audit entries.

Runs on SQLite and PostgreSQL (``gov_settings`` in support/catalogs.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.gallery.gallery import Gallery
from facetrace.governance import audit
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.index.faiss_files import open_faiss_index
from facetrace.index.kinds import IndexKind
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import Face, FaceCrop, Image, Sighting, Source
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest
from support.photos import encode

PURPOSE = Purpose("CASE-1", "missing-person", "check that the erased face is gone")


def face_of(gov: Governance, location: Path) -> tuple[int, bytes]:
    with gov.sessions() as session:
        seen_there = select(Sighting.image_id).where(Sighting.location == str(location))
        face = session.execute(select(Face).where(Face.image_id.in_(seen_there))).scalar_one()
        return face.id, face.embedding


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def crop_pieces(gov: Governance, face_id: int) -> list[bytes]:
    """Pieces of a face's crop JPEG to look for on disk: a crop spans database pages, so the
    whole of it is not in one run of bytes, but most 64-byte pieces of it are."""
    with gov.sessions() as session:
        jpeg = session.scalars(select(FaceCrop.jpeg).where(FaceCrop.face_id == face_id)).one()
    return [jpeg[start : start + 64] for start in range(1024, len(jpeg) - 64, 512)]


def files_holding_any(root: Path, pieces: list[bytes]) -> list[str]:
    return sorted({name for piece in pieces for name in files_holding(root, piece)})


def test_erasure_by_url_leaves_no_template_bytes_and_search_finds_nothing(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    erased_id, erased_bytes = face_of(operator, two_people["fr"])
    kept_id, kept_bytes = face_of(operator, two_people["us"])
    erased_crop, kept_crop = crop_pieces(operator, erased_id), crop_pieces(operator, kept_id)
    if gov_settings.database_url is None:  # the check can see template and crop bytes where they are
        assert files_holding(gov_settings.data_dir, kept_bytes)
        assert files_holding_any(gov_settings.data_dir, erased_crop)

    dry_run = operator.erasure.plan(ErasureScope(locations=(str(two_people["fr"]),)))
    assert dry_run.face_ids == [erased_id] and dry_run.counts()["images"] == 1
    assert dry_run.counts()["sightings"] == 2  # both places the same bytes were seen
    assert face_of(operator, two_people["fr"])[0] == erased_id  # a dry run deletes nothing

    certificate = operator.erasure.erase(
        ErasureScope(locations=(str(two_people["fr"]),)), reason="request RR-7"
    )
    assert certificate["counts"] == {"faces": 1, "images": 1, "sightings": 2, "sources_blocked": 0}

    assert files_holding(gov_settings.data_dir, erased_bytes) == []
    assert files_holding_any(gov_settings.data_dir, erased_crop) == []
    if gov_settings.database_url is None:
        assert files_holding(gov_settings.data_dir, kept_bytes)
        assert files_holding_any(gov_settings.data_dir, kept_crop)
    outcome = operator.searches.search(analyzer, two_people["fr"].read_bytes(), PURPOSE, k=10)
    assert [hit.face.id for hit in outcome.hits] == [kept_id]

    stored = json.loads(Path(certificate["file"]).read_text())
    assert stored["reason"] == "request RR-7" and stored["executed_and_approved_by"]["user"] == "operator"
    with operator.sessions() as session:
        entry = session.get(audit.AuditEntry, stored["audit_entry"]["seq"])
        assert (
            entry is not None and entry.action == "data.erase" and entry.hash == stored["audit_entry"]["hash"]
        )
        assert audit.verify(session).ok


def test_erasure_on_the_compressed_index_deletes_the_vector_from_it(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    with Gallery.write_lock(gov_settings):
        gallery = Gallery.open(gov_settings, analyzer.model_id, analyzer.embedder.dim)
        gallery.rebuild(IndexKind.IVF_PQ)
        gallery.index.save()
    erased_id, _ = face_of(operator, two_people["fr"])
    kept_id, _ = face_of(operator, two_people["us"])

    operator.erasure.erase(ErasureScope(face_ids=(erased_id,)), reason="request RR-8")

    index = open_faiss_index(gov_settings.index_dir, analyzer.model_id, analyzer.embedder.dim)
    assert index.kind == "ivf-pq" and index.ids().tolist() == [kept_id]  # rewritten without it
    outcome = operator.searches.search(analyzer, two_people["fr"].read_bytes(), PURPOSE, k=10)
    assert [hit.face.id for hit in outcome.hits] == [kept_id]


def test_erasure_by_photo_finds_the_person_in_memory(
    operator: Governance, two_people: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    matches = operator.erasure.faces_of_person(analyzer, two_people["fr"].read_bytes())
    assert face_of(operator, two_people["fr"])[0] in matches


def test_jurisdiction_purge_deletes_blocks_and_keeps_what_others_saw(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path]
) -> None:
    plan = operator.erasure.plan(ErasureScope(jurisdiction="fr"))
    # The French photo was also seen by the US source: only the French sighting goes.
    assert plan.counts() == {"faces": 0, "images": 0, "sightings": 1, "sources_blocked": 1}
    operator.erasure.erase(ErasureScope(jurisdiction="FR"), reason="CNIL decision SAN-2026-001")
    with operator.sessions() as session:
        sources = {s.name: s for s in session.scalars(select(Source))}
        assert (
            sources["press-fr"].blocked_at is not None
            and "SAN-2026-001" in sources["press-fr"].blocked_reason
        )
        assert sources["press-us"].blocked_at is None
        left = session.scalars(select(Sighting.location).join(Source).where(Source.name == "press-fr")).all()
        assert left == []
        assert session.scalar(select(Image).where(Image.sha256.is_not(None)).limit(1)) is not None
    with pytest.raises(FacetraceError, match="blocked"):
        ingest(gov_settings, [str(two_people["fr"])], source_name="press-fr")
    with pytest.raises(FacetraceError, match="in FR, whose collection was purged"):
        ingest(gov_settings, [str(two_people["fr"])], source_name="new-fr-source", jurisdiction="FR")
    with operator.sessions() as session:  # and the refused source was not even registered
        assert session.scalar(select(Source).where(Source.name == "new-fr-source")) is None


def test_purging_a_source_deletes_images_nobody_else_saw(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path]
) -> None:
    kept_id = face_of(operator, two_people["fr"])[0]
    certificate = operator.erasure.erase(ErasureScope(sources=("press-us",)), reason="source withdrawn")
    assert certificate["counts"] == {"faces": 1, "images": 1, "sightings": 2, "sources_blocked": 1}
    assert face_of(operator, two_people["fr"])[0] == kept_id  # still seen by press-fr
    with operator.sessions() as session:
        assert session.scalar(select(Face).where(Face.id != kept_id)) is None


def test_erasure_needs_a_scope_and_a_reason(operator: Governance, two_people: dict[str, Path]) -> None:
    with pytest.raises(FacetraceError, match="say what to erase"):
        operator.erasure.plan(ErasureScope())
    with pytest.raises(FacetraceError, match="reason"):
        operator.erasure.erase(ErasureScope(face_ids=(1,)), reason="")
    with pytest.raises(FacetraceError, match="no face with id 999"):
        operator.erasure.plan(ErasureScope(face_ids=(999,)))
    with pytest.raises(FacetraceError, match="no source named nowhere"):
        operator.erasure.plan(ErasureScope(sources=("nowhere",)))


def test_searches_show_no_sighting_past_retention_or_of_a_blocked_source_before_it_is_deleted(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    """Between the end of a retention period and the next retention run, the data is still held
    but no longer shown; a face with another, live sighting is shown with that one only."""
    gallery = Gallery.open(gov_settings, analyzer.model_id, analyzer.embedder.dim)
    probe = analyzer.analyze(two_people["fr"].read_bytes()).faces[0].embedding
    fr_face, _ = face_of(operator, two_people["fr"])
    before = {hit.face.id: hit for hit in gallery.search(probe, 5)}
    assert len(before) == 2 and len(before[fr_face].face.image.sightings) == 2  # press-fr and press-us

    with operator.sessions.begin() as session:
        press_fr = session.scalars(select(Source).where(Source.name == "press-fr")).one()
        press_fr.retention_days = 30
        for sighting in session.scalars(select(Sighting).where(Sighting.source_id == press_fr.id)):
            sighting.first_seen -= timedelta(days=31)
    hits = {hit.face.id: hit for hit in gallery.search(probe, 5)}
    assert len(hits) == 2  # still found, through its other sighting
    assert [s.source.name for s in hits[fr_face].face.image.sightings] == ["press-us"]

    with operator.sessions.begin() as session:
        press_us = session.scalars(select(Source).where(Source.name == "press-us")).one()
        press_us.blocked_at = utcnow()
    assert gallery.search(probe, 5) == []  # nothing left that may be shown
    with operator.sessions() as session:  # and nothing was deleted by searching
        assert session.scalar(select(func.count(Sighting.id))) == 3


def test_retention_deletes_what_outlived_its_source_period(
    gov_settings: Settings,
    operator: Governance,
    two_people: dict[str, Path],
    tmp_path: Path,
    astronaut_rgb: np.ndarray,
) -> None:
    old = tmp_path / "archive" / "small.jpg"
    old.parent.mkdir()
    old.write_bytes(encode(astronaut_rgb[::2, ::2].copy(), "JPEG", quality=90))
    ingest(gov_settings, [str(old.parent)], source_name="archive", retention_days=30)
    with pytest.raises(FacetraceError, match="retention_days 30"):
        ingest(gov_settings, [str(old)], source_name="archive", retention_days=60)
    assert operator.erasure.plan(ErasureScope(expired=True)).counts()["sightings"] == 0  # nothing old yet

    with operator.sessions.begin() as session:
        archive = session.scalar(select(Source).where(Source.name == "archive"))
        assert archive is not None
        for sighting in session.scalars(select(Sighting).where(Sighting.source_id == archive.id)):
            sighting.first_seen -= timedelta(days=31)
    certificate = operator.erasure.erase(ErasureScope(expired=True), reason="retention period over")
    assert certificate["counts"] == {"faces": 1, "images": 1, "sightings": 1, "sources_blocked": 0}
    with operator.sessions() as session:
        assert set(session.scalars(select(Sighting.location))) == {
            str(two_people["fr"]),
            str(two_people["us"]),
        }
