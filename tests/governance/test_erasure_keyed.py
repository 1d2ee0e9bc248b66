"""Erasure leaves nothing that re-identifies the person: certificates and audit entries name what went
by keyed hash only, and an image left with no face loses where it was seen, its page title and alt text.

Runs on SQLite and PostgreSQL (``gov_settings`` in support/catalogs.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.governance import erasure
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.keyed_hashes import ErasureKey
from facetrace.governance.service import Governance
from facetrace.store.catalog_models import CrawlItem, Face, Image, Sighting
from facetrace.store.governance_models import AuditEntry, RightsRequest
from support.ingesting import ingest
from support.photos import encode

PAGE_TITLE = "Eileen Collins waves at the Kennedy Space Center"
ALT_TEXT = "Commander Eileen Collins and a colleague, portrait"


def recorded(gov: Governance, certificate: dict) -> str:
    """The certificate file and its audit entry, as one JSON text to search."""
    with gov.sessions() as session:
        entry = session.get(AuditEntry, certificate["audit_entry"]["seq"])
        assert entry is not None and entry.action == "data.erase"
        details = json.dumps(entry.details)
    return Path(certificate["file"]).read_text() + details


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_erasure_records_hold_no_url_path_or_digest_in_clear_yet_a_url_can_be_checked(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path]
) -> None:
    erased, kept = two_people["fr"], two_people["us"]
    erased_sha256 = hashlib.sha256(erased.read_bytes()).hexdigest()
    dry_run = operator.erasure.plan(ErasureScope(locations=(str(erased),)))
    assert str(erased) in dry_run.locations  # the DPO reviews the places before executing
    [face_id] = dry_run.face_ids

    certificate = operator.erasure.erase(
        ErasureScope(locations=(str(erased),)), reason="rights request RR-2026-X"
    )

    text = recorded(operator, certificate)
    for secret in (str(erased), erased.name, erased_sha256, str(gov_settings.data_dir)):
        assert secret not in text
    key = ErasureKey.of(gov_settings)
    assert certificate["erased"]["face_ids"] == [key.hash(face_id)]
    assert certificate["erased"]["image_sha256"] == [key.hash(erased_sha256)]
    assert certificate["scope"]["locations"] == 1 and certificate["reason"] == "rights request RR-2026-X"
    assert certificate["counts"] == {"faces": 1, "images": 1, "sightings": 2, "sources_blocked": 0}
    assert certificate["certificate"] in certificate["how_to_check"]

    reference = certificate["certificate"]
    assert operator.erasure.check(reference, str(erased)) == "erased"
    assert operator.erasure.check(reference, str(kept)) is None
    with operator.sessions() as session:
        checks = session.scalars(select(AuditEntry).where(AuditEntry.action == "data.erase.check")).all()
        assert [(c.case_ref, c.details) for c in checks] == [
            (reference, {"covered": "erased"}),
            (reference, {"covered": "no"}),
        ]
        assert not [c for c in checks if str(erased) in json.dumps(c.details)]


def test_the_erasure_key_is_private_and_a_check_with_another_key_is_refused(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path], tmp_path: Path
) -> None:
    certificate = operator.erasure.erase(
        ErasureScope(locations=(str(two_people["us"]),)), reason="order 12/2026"
    )
    key_file = gov_settings.data_dir / "erasure.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    other_key = tmp_path / "other.key"
    other_key.write_text("another deployment's erasure secret")
    elsewhere = Governance(
        gov_settings.model_copy(update={"erasure_hmac_key_file": other_key}),
        operator.sessions,
        operator.actor,
    )
    with pytest.raises(FacetraceError, match="another erasure key"):
        elsewhere.erasure.check(certificate["certificate"], str(two_people["us"]))


@pytest.fixture
def group_photo(gov_settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray) -> Path:
    """One image with two faces (the astronaut and her mirror image), seen on a page with a title
    and alt text that name her."""
    photo = tmp_path / "press" / "group.jpg"
    photo.parent.mkdir()
    photo.write_bytes(encode(np.hstack([astronaut_rgb, astronaut_rgb[:, ::-1]]), "JPEG", quality=95))
    ingest(gov_settings, [str(photo.parent)], source_name="press", jurisdiction="FR")
    sessions = Governance.open(gov_settings).sessions
    with sessions.begin() as session:
        session.execute(update(Sighting).values(page_title=PAGE_TITLE, alt_text=ALT_TEXT))
    return photo


def test_an_image_left_with_no_face_loses_its_sightings_page_title_and_alt_text(
    gov_settings: Settings, operator: Governance, group_photo: Path
) -> None:
    with operator.sessions() as session:
        first, second = session.scalars(select(Face.id).order_by(Face.id)).all()

    one = operator.erasure.erase(ErasureScope(face_ids=(first,)), reason="rights request RR-1")
    assert one["counts"] == {"faces": 1, "images": 0, "sightings": 0, "sources_blocked": 0}
    assert operator.erasure.check(one["certificate"], str(group_photo)) == "face removed"
    with operator.sessions() as session:  # another face is still in it: where it was seen stays
        assert session.scalars(select(Sighting.page_title)).all() == [PAGE_TITLE]

    other = operator.erasure.erase(ErasureScope(face_ids=(second,)), reason="rights request RR-2")
    assert other["counts"] == {"faces": 1, "images": 0, "sightings": 1, "sources_blocked": 0}
    assert operator.erasure.check(other["certificate"], str(group_photo)) == "erased"
    for secret in (str(group_photo), PAGE_TITLE, ALT_TEXT):
        assert secret not in recorded(operator, other)
    with operator.sessions() as session:
        assert session.scalars(select(Sighting)).all() == []
        # The record of the bytes stays (no place, no face): the same file is not analysed again.
        assert len(session.scalars(select(Image)).all()) == 1
    for needle in (PAGE_TITLE, ALT_TEXT, str(group_photo)):
        assert files_holding(gov_settings.data_dir, needle.encode()) == []


def test_an_executed_erasure_request_keeps_the_places_it_named_by_keyed_hash_only(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path]
) -> None:
    named = str(two_people["us"])
    filed = operator.rights.file("erasure", urls=[named], contact="by post")
    operator.rights.move(filed.reference, "verified", "identity checked at the desk")
    produced = operator.rights.execute(filed.reference)
    assert isinstance(produced.counts, dict) and produced.counts["images"] == 1

    key = ErasureKey.of(gov_settings)
    with operator.sessions() as session:
        query = select(RightsRequest).where(RightsRequest.reference == filed.reference)
        request = session.scalars(query).one()
        assert (request.urls, request.matched_face_ids) == ([f"HMAC-SHA256:{key.hash(named)}"], [])
    assert operator.erasure.check(str(produced.certificate), named) == "erased"
    assert files_holding(gov_settings.data_dir, named.encode()) == []


@pytest.mark.no_catalog
def test_a_very_large_erasure_keeps_the_digest_of_its_hashes_in_the_audit_entry() -> None:
    """A jurisdiction's purge may delete millions of images: the audit entry then holds the digest of
    the certificate's keyed hashes (its 'sha256_of_erased'), not the hashes themselves."""
    key = ErasureKey(b"a test deployment's erasure key")
    small = {"keyed_hash": "HMAC-SHA256", "key_id": key.id, "locations": key.hashes(["a", "b"])}
    assert erasure.audited_hashes(small) == small
    large = small | {"image_sha256": key.hashes(range(erasure.AUDIT_LISTED_HASHES))}
    assert erasure.audited_hashes(large) == {
        "keyed_hash": "HMAC-SHA256",
        "key_id": key.id,
        "hashes": erasure.AUDIT_LISTED_HASHES + 2,
    }


def test_an_interrupted_crawls_frontier_forgets_the_erased_images(
    gov_settings: Settings, operator: Governance, two_people: dict[str, Path]
) -> None:
    """A crawl cut short keeps its frontier (each image URL with its page's title and alt text) to
    resume from; an erasure deletes the rows that name what it erased."""
    erased, kept = str(two_people["fr"]), str(two_people["us"])
    with operator.sessions.begin() as session:
        source_id = session.scalars(select(Sighting.source_id).where(Sighting.location == erased)).first()
        for url in (erased, kept):
            session.add(
                CrawlItem(
                    source_id=source_id,
                    url=url,
                    depth=1,
                    page_url="https://press.example/launch",
                    page_title=f"{PAGE_TITLE} ({url})",
                    alt=ALT_TEXT,
                    status="done",
                )
            )
    operator.erasure.erase(ErasureScope(locations=(erased,)), reason="rights request RR-3")
    with operator.sessions() as session:
        assert session.scalars(select(CrawlItem.url)).all() == [kept]
    assert files_holding(gov_settings.data_dir, f"{PAGE_TITLE} ({erased})".encode()) == []
