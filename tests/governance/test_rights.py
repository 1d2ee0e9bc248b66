"""Data-subject requests: access, erasure and objection, with deadlines, history and the do-not-collect
list honoured by ingest. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select, update

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError, PermissionDeniedError
from facetrace.governance.do_not_collect import CollectionBlocks
from facetrace.governance.service import Governance
from facetrace.store.catalog_models import Face
from facetrace.store.governance_models import DoNotCollect, RightsRequest
from facetrace.vision.analyzer import FaceAnalyzer
from support.api import staff_token
from support.ingesting import ingest
from support.photos import encode


@pytest.fixture
def gallery(gov_settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray) -> dict[str, Path]:
    photos = tmp_path / "press"
    photos.mkdir()
    paths = {"portrait": photos / "portrait.jpg", "page": photos / "page.jpg"}
    paths["portrait"].write_bytes(encode(astronaut_rgb, "JPEG", quality=95))
    paths["page"].write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95))
    ingest(gov_settings, [str(photos)], source_name="press", jurisdiction="FR", legal_basis="press archive")
    return paths


def faces(gov: Governance) -> int:
    with gov.sessions() as session:
        return len(session.scalars(select(Face.id)).all())


def test_access_request_by_photo(
    gov_settings: Settings, operator: Governance, gallery: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    reference = operator.rights.file(
        "access", urls=[], photo=gallery["portrait"].read_bytes(), analyzer=analyzer, contact="by post"
    ).reference
    with pytest.raises(FacetraceError, match="verify it first"):
        operator.rights.execute(reference)
    operator.rights.move(reference, "verified", "identity checked at the desk")
    produced = operator.rights.execute(reference)
    assert produced.access_report is not None
    report = json.loads(Path(produced.access_report).read_text())
    assert report["faces_held"] == 2  # the portrait and its mirror image: the same person
    seen = {s["location"]: s for image in report["images"] for s in image["seen_at"]}
    assert seen[str(gallery["portrait"])]["legal_basis"] == "press archive"
    (closed,) = operator.rights.queue(include_closed=True)
    assert closed.status == "done" and [e.status for e in closed.history] == [
        "received",
        "verified",
        "in_progress",
        "done",
    ]
    assert faces(operator) == 2  # access deletes nothing


def test_the_public_portal_files_a_request_and_learns_only_its_status(
    gov_settings: Settings, operator: Governance, gallery: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    portal = Governance.public_portal(gov_settings, operator.sessions)
    filed = portal.rights.file(
        "erasure", urls=[], photo=gallery["portrait"].read_bytes(), analyzer=analyzer, contact="a@b.example"
    )
    reference = filed.reference
    status = portal.rights.status(reference, filed.code)
    assert status.status == "received" and set(status.model_dump()) == {
        "reference",
        "kind",
        "status",
        "received_at",
        "due_at",
        "report",
    }  # not what the photo matched
    with pytest.raises(PermissionDeniedError):
        portal.rights.queue()
    with pytest.raises(PermissionDeniedError):
        portal.rights.move(reference, "verified", None)
    (filed,) = operator.rights.queue()
    assert filed.reference == reference and filed.history[0].by == "public-portal"
    operator.rights.move(reference, "verified", "identity checked by e-mail")
    operator.rights.execute(reference)
    assert faces(operator) == 0  # the portrait and its mirror image: both the person


def test_erasure_request_by_url(operator: Governance, gallery: dict[str, Path]) -> None:
    reference = operator.rights.file("erasure", urls=[str(gallery["page"])]).reference
    operator.rights.move(reference, "verified", None)
    produced = operator.rights.execute(reference)
    assert isinstance(produced.counts, dict) and produced.counts["faces"] == 1
    assert produced.certificate is not None and produced.certificate.startswith("ERASURE-")
    assert faces(operator) == 1


def test_objection_with_consent_blocks_future_collection(
    gov_settings: Settings,
    operator: Governance,
    gallery: dict[str, Path],
    analyzer: FaceAnalyzer,
    tmp_path: Path,
) -> None:
    reference = operator.rights.file(
        "objection",
        urls=[str(gallery["page"])],
        photo=gallery["portrait"].read_bytes(),
        analyzer=analyzer,
        consent_to_keep_template=True,
    ).reference
    operator.rights.move(reference, "verified", None)
    produced = operator.rights.execute(reference)
    assert isinstance(produced.counts, dict) and produced.counts["faces"] == 2
    assert produced.do_not_collect_entries == 1
    assert faces(operator) == 0

    # The same page again: not even read. A new copy of her face elsewhere: analysed, face dropped.
    copy = tmp_path / "elsewhere" / "reposted.png"
    copy.parent.mkdir()
    copy.write_bytes(
        encode(np.asarray(Image.open(gallery["portrait"]).convert("RGB").resize((400, 400))), "PNG")
    )
    stats = ingest(gov_settings, [str(gallery["page"]), str(copy)], source_name="press")
    assert stats.skipped_do_not_collect == 1 and stats.faces_dropped_do_not_collect == 1 and stats.faces == 0
    assert faces(operator) == 0


def test_objection_without_consent_keeps_no_template(
    operator: Governance, gallery: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    operator.rights.file("objection", urls=[], photo=gallery["portrait"].read_bytes(), analyzer=analyzer)
    with operator.sessions() as session:
        assert session.scalars(select(DoNotCollect)).all() == []


def test_domain_and_prefix_blocks() -> None:
    blocks = CollectionBlocks(
        url_prefixes=("https://news.example/people/jane/",),
        domains=frozenset({"private.example"}),
        jurisdictions=frozenset(),
        templates=np.empty((0, 128), np.float32),
        threshold=0.5,
    )
    assert blocks.blocks_place("https://news.example/people/jane/1.jpg", None) == "url"
    assert blocks.blocks_place("https://news.example/people/john/1.jpg", None) is None
    assert blocks.blocks_place("https://cdn.example/1.jpg", "https://www.private.example/about") == "domain"
    assert blocks.blocks_place("/srv/photos/1.jpg", None) is None


def test_queue_puts_overdue_first_and_refusals_need_a_reason(
    gov_settings: Settings, operator: Governance
) -> None:
    first = operator.rights.file("erasure", urls=["https://a.example/1.jpg"]).reference
    second = operator.rights.file("access", urls=["https://a.example/2.jpg"]).reference
    operator.rights.move(second, "verified", "identity checked")  # unverified, it would expire
    with operator.sessions.begin() as session:
        request = session.scalar(select(RightsRequest).where(RightsRequest.reference == second))
        assert request is not None
        session.execute(
            update(RightsRequest)
            .where(RightsRequest.reference == second)
            .values(due_at=request.received_at - timedelta(days=1))
        )
    queue = operator.rights.queue()
    assert [r.reference for r in queue] == [second, first] and queue[0].overdue and not queue[1].overdue
    with pytest.raises(FacetraceError, match="reason"):
        operator.rights.move(first, "refused", "")
    operator.rights.move(first, "refused", "not about a person in the gallery")
    assert [r.reference for r in operator.rights.queue()] == [second]
    investigator = Governance.open(gov_settings, staff_token(gov_settings, operator, "ivy", ["investigator"]))
    with pytest.raises(PermissionDeniedError):
        investigator.rights.queue()
