"""The public rights portal is no face search, and nothing it is given is kept or enforced unverified.

Attacks on a real server over HTTP: the membership oracle (a face in the gallery and one not give
the same page), forged ``X-Forwarded-For`` against the rate limit, huge bodies, guessing a request's
status without its code; then the do-not-collect template's life (inactive until the objection is
executed, deleted on refusal or expiry, its bytes gone from the data dir), ingest counting what the
list stopped, and access reports (downloads, file modes, deletion). SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
import select
import socket
import stat
import time
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select as sql_select
from sqlalchemy import update

from facetrace.core.config import Settings
from facetrace.governance import audit
from facetrace.governance.service import Governance
from facetrace.server.common.client_address import address_behind
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import Face
from facetrace.store.engine import open_catalog
from facetrace.store.governance_models import AuditEntry, DoNotCollect, RightsRequest
from facetrace.vision.analyzer import FaceAnalyzer
from support.api import USER_PASSWORD, Api
from support.ingesting import ingest
from support.photos import encode
from support.portal import file_by_portal, portal_server, portal_visitor

REFERENCE = re.compile(r"RR-\d{4}-[A-Z2-7]{16}")


@pytest.fixture
def portrait(gov_settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray) -> Path:
    """The astronaut's portrait, collected into the gallery from a press source."""
    folder = tmp_path / "press"
    folder.mkdir()
    path = folder / "portrait.jpg"
    path.write_bytes(encode(astronaut_rgb, "JPEG", quality=95))
    ingest(gov_settings, [str(folder)], source_name="press", jurisdiction="FR", legal_basis="press archive")
    return path


def filed_reference_and_code(page: str) -> tuple[str, str]:
    reference = re.search(r'<strong id="reference">([^<]+)</strong>', page)
    code = re.search(r'<strong id="code">([^<]+)</strong>', page)
    assert reference is not None and code is not None
    return reference.group(1), code.group(1)


def test_a_face_in_the_gallery_and_a_face_not_in_it_get_the_same_page(
    gov_settings: Settings, portrait: Path
) -> None:
    photo = portrait.read_bytes()
    with portal_server(gov_settings) as api:
        dpo = api.as_role("dpo")
        visitor, action = portal_visitor(api)
        started = time.perf_counter()
        in_gallery = file_by_portal(visitor, action, photo)
        in_gallery_s = time.perf_counter() - started
        erased = dpo.post(
            "/api/v1/erasures", json={"urls": [str(portrait)], "dry_run": False, "reason": "test erasure"}
        )
        assert erased.status_code == 201, erased.text
        started = time.perf_counter()
        not_in_gallery = file_by_portal(visitor, action, photo)
        not_in_gallery_s = time.perf_counter() - started

        assert in_gallery.status_code == not_in_gallery.status_code == 200
        pages = []
        for response in (in_gallery, not_in_gallery):
            reference, code = filed_reference_and_code(response.text)
            assert REFERENCE.fullmatch(reference) and code not in reference
            pages.append(response.text.replace(reference, "REFERENCE").replace(code, "CODE"))
            matched = dpo.get(f"/api/v1/rights/{reference}").json()["photo_matches"]
            pages.append(matched)
        assert pages[0] == pages[2]  # byte for byte, but for the reference and its code
        assert pages[1] >= 1 and pages[3] == 0  # the DPO, and only the DPO, sees what matched
        print(
            f"portal answer: face in the gallery {in_gallery_s * 1000:.0f} ms, "
            f"not in it {not_in_gallery_s * 1000:.0f} ms"
        )


def test_the_portal_refuses_a_photo_only_for_what_it_shows(
    gov_settings: Settings, portrait: Path, coffee_png: bytes
) -> None:
    two_faces = np.hstack([_rgb(portrait.read_bytes())] * 2)
    with portal_server(gov_settings) as api:
        visitor, action = portal_visitor(api)
        no_face = file_by_portal(visitor, action, coffee_png)
        assert no_face.status_code == 400 and "no face" in no_face.text
        several = file_by_portal(visitor, action, encode(two_faces, "JPEG", quality=90))
        assert several.status_code == 400 and "2 faces" in several.text
        not_an_image = file_by_portal(visitor, action, b"%PDF-1.4 not an image")
        assert not_an_image.status_code == 400
        nothing = file_by_portal(visitor, action, None)
        assert nothing.status_code == 400 and "URLs" in nothing.text


def _rgb(photo: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))


def test_references_are_random_and_the_status_needs_the_code(gov_settings: Settings) -> None:
    with portal_server(gov_settings) as api:
        visitor, action = portal_visitor(api)
        filed = [
            filed_reference_and_code(
                file_by_portal(visitor, action, None, urls=f"https://a.example/{n}.jpg").text
            )
            for n in range(2)
        ]
        (first, code), (second, _) = filed
        assert REFERENCE.fullmatch(first) and REFERENCE.fullmatch(second) and first != second
        with open_catalog(gov_settings.catalog_url)() as session:
            stored = session.scalars(sql_select(RightsRequest.code_sha256)).all()
        assert len(stored) == 2 and code not in stored  # only its digest is kept

        assert first not in visitor.get("/portal/status", params={"reference": first}).text
        wrong_code = visitor.post("/portal/status", data={"reference": first, "code": "A" * 16})
        no_such = visitor.post("/portal/status", data={"reference": "RR-2026-" + "B" * 16, "code": code})
        assert wrong_code.status_code == no_such.status_code == 200
        assert wrong_code.text == no_such.text and first not in wrong_code.text
        shown = visitor.post("/portal/status", data={"reference": first, "code": code.lower()})
        assert (
            f"<strong>{first}</strong>" in shown.text
            and '<strong id="status">received</strong>' in shown.text
        )
        assert "a.example" not in shown.text and "me@example.org" not in shown.text  # status and dates only


def _file_as(api: Api, forwarded_for_hosts: list[int]) -> list[int]:
    """The statuses of portal requests from one visitor, each claiming to be 203.0.113.N."""
    visitor, action = portal_visitor(api)
    return [
        visitor.post(
            action,
            data={"kind": "access", "urls": "https://a.example/1.jpg"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in forwarded_for_hosts
    ]


def test_a_forged_forwarded_for_does_not_lift_the_rate_limit(settings: Settings) -> None:
    with portal_server(settings, portal_requests_per_hour=2) as api:
        assert _file_as(api, [0, 1, 2, 3]) == [200, 200, 429, 429]
    with portal_server(settings, portal_requests_per_hour=2, trusted_proxies=["127.0.0.1"]) as api:
        # The proxy tells its clients apart.
        assert _file_as(api, [1, 1, 1, 2]) == [200, 200, 429, 200]


def test_the_client_address_is_read_from_the_right_through_trusted_proxies_only() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert address_behind("198.51.100.7", ["1.2.3.4"], proxies) == "198.51.100.7"  # not a proxy: ignored
    assert address_behind("10.0.0.2", ["1.2.3.4, 198.51.100.7"], proxies) == "198.51.100.7"  # 1.2.3.4 forged
    assert address_behind("10.0.0.2", ["198.51.100.7, 10.0.0.3"], proxies) == "198.51.100.7"  # two proxies
    assert address_behind("10.0.0.2", ["not-an-address"], proxies) == "10.0.0.2"
    assert address_behind("127.0.0.1", ["1.2.3.4"], []) == "127.0.0.1"  # none trusted by default


def send_huge_body(
    url: str, path: str, total: int, cookies: httpx.Cookies | None = None, *, chunked: bool = False
) -> tuple[int, int, str]:
    """POST a multipart body of ``total`` bytes (declared, or ``chunked`` without a length), streaming
    it until the server answers: (the answer's status, how many body bytes had been sent by then, the
    answer)."""
    host, port = url.removeprefix("http://").split(":")
    cookie = "; ".join(f"{name}={value}" for name, value in (cookies or {}).items())
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"{framing}\r\n" + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n"
    ).encode()
    chunk = b"10000\r\n" + b"\0" * 65536 + b"\r\n" if chunked else b"\0" * 65536
    sent = 0
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head)
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 60)
            if readable:
                break
            assert writable, "the server neither read nor answered for a minute"
            sent += sock.send(chunk[: total - sent])
        sock.settimeout(60)
        answer = sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        assert length is not None
        while len(body) < int(length.group(1)):
            body += sock.recv(65536)
    return int(answer.split(b" ", 2)[1]), sent, (head + b"\r\n\r\n" + body).decode("utf-8", "replace")


def test_huge_bodies_are_refused_while_read_and_limits_apply_before_reading(settings: Settings) -> None:
    total = 256 * 1024 * 1024
    with portal_server(settings, portal_requests_per_hour=1, portal_max_upload_bytes=1024 * 1024) as api:
        visitor, action = portal_visitor(api)
        status, sent, answer = send_huge_body(api.url, action, total, visitor.cookies)
        assert status == 413 and sent < total and "larger than the limit of 1,048,576 bytes" in answer
        print(f"oversized: 413 after {sent / 2**20:.1f} MiB sent of {total / 2**20:.0f} MiB")
        # Sent without a length, so that only the portal's own checks can stop it before it is read.
        status, sent, answer = send_huge_body(api.url, action, total, chunked=True)  # no session: no CSRF
        assert status == 403 and sent < total and "came from another site" in answer
        print(f"no CSRF token: 403 after {sent / 2**20:.1f} MiB sent")
        status, sent, answer = send_huge_body(api.url, action, total, visitor.cookies, chunked=True)
        assert status == 429 and sent < total and "retry-after:" in answer.lower()
        print(f"over the rate limit: 429 after {sent / 2**20:.1f} MiB sent")


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def templates_of(gov: Governance) -> list[DoNotCollect]:
    with gov.sessions() as session:
        return list(session.scalars(sql_select(DoNotCollect).where(DoNotCollect.kind == "template")))


def faces(gov: Governance) -> int:
    with gov.sessions() as session:
        return len(session.scalars(sql_select(Face.id)).all())


def repost(photo: bytes, folder: Path) -> Path:
    """Another copy of the same face, as collection may meet it elsewhere."""
    folder.mkdir()
    path = folder / "reposted.png"
    path.write_bytes(encode(_rgb(photo)[::2, ::2].copy(), "PNG"))
    return path


def test_an_unverified_objection_blocks_nothing_and_its_refusal_deletes_the_template(
    gov_settings: Settings,
    operator: Governance,
    astronaut_jpeg: bytes,
    analyzer: FaceAnalyzer,
    tmp_path: Path,
) -> None:
    portal = Governance.public_portal(gov_settings, operator.sessions)
    filed = portal.rights.file(
        "objection", urls=[], photo=astronaut_jpeg, analyzer=analyzer, consent_to_keep_template=True
    )
    (template,) = templates_of(operator)
    assert not template.active and template.template is not None
    kept = template.template
    if gov_settings.database_url is None:
        assert files_holding(gov_settings.data_dir, kept)  # the check can see it where it is

    reposted = repost(astronaut_jpeg, tmp_path / "elsewhere")
    stats = ingest(gov_settings, [str(reposted)], source_name="press", jurisdiction="FR", legal_basis="press")
    assert stats.faces == 1 and stats.faces_dropped_do_not_collect == 0  # anyone's objection is not law

    operator.rights.move(filed.reference, "refused", "could not confirm who sent it")
    assert templates_of(operator) == []
    assert files_holding(gov_settings.data_dir, kept) == []
    with operator.sessions() as session:
        entry = session.scalars(sql_select(AuditEntry).where(AuditEntry.action == "rights.refused")).one()
        assert entry.details == {"templates_deleted": 1} and audit.verify(session).ok


def test_an_objection_left_unverified_past_its_deadline_expires_with_its_template(
    gov_settings: Settings, operator: Governance, astronaut_jpeg: bytes, analyzer: FaceAnalyzer
) -> None:
    portal = Governance.public_portal(gov_settings, operator.sessions)
    filed = portal.rights.file(
        "objection", urls=[], photo=astronaut_jpeg, analyzer=analyzer, consent_to_keep_template=True
    )
    (template,) = templates_of(operator)
    with operator.sessions.begin() as session:
        session.execute(
            update(RightsRequest)
            .where(RightsRequest.reference == filed.reference)
            .values(due_at=utcnow() - timedelta(minutes=1))
        )
    assert operator.rights.queue() == []  # opening the queue expires it
    assert portal.rights.status(filed.reference, filed.code).status == "expired"
    assert (
        templates_of(operator) == [] and files_holding(gov_settings.data_dir, template.template or b"") == []
    )
    with operator.sessions() as session:
        entry = session.scalars(sql_select(AuditEntry).where(AuditEntry.action == "rights.expire")).one()
        assert entry.case_ref == filed.reference and entry.details == {"templates_deleted": 1}


def test_an_executed_objection_drops_faces_at_ingest_and_the_ingest_says_so(
    gov_settings: Settings, operator: Governance, portrait: Path, analyzer: FaceAnalyzer, tmp_path: Path
) -> None:
    reference = operator.rights.file(
        "objection",
        urls=[str(portrait)],
        photo=portrait.read_bytes(),
        analyzer=analyzer,
        consent_to_keep_template=True,
    ).reference
    operator.rights.move(reference, "verified", "identity checked")
    produced = operator.rights.execute(reference)
    assert produced.templates_activated == 1 and faces(operator) == 0
    (template,) = templates_of(operator)
    assert template.active

    copy = repost(portrait.read_bytes(), tmp_path / "elsewhere")
    stats = ingest(gov_settings, [str(portrait), str(copy)], source_name="press")
    assert stats.do_not_collect_summary() == {
        "places_skipped_by_url": 1,
        "places_skipped_by_domain": 0,
        "faces_dropped_by_template": 1,
        "images_not_stored": 1,
    }
    assert stats.new_images == 0 and stats.known_images == 0 and faces(operator) == 0
    again = ingest(gov_settings, [str(copy)], source_name="press")
    assert again.withheld_do_not_collect == 1 and again.known_images == 0  # analysed again, not skipped


def test_access_reports_download_and_expire(
    gov_settings: Settings, portrait: Path, analyzer: FaceAnalyzer
) -> None:
    with portal_server(gov_settings) as api:
        dpo_name, dpo = api.new_user("dpo")
        visitor, action = portal_visitor(api)
        reference, code = filed_reference_and_code(
            file_by_portal(visitor, action, portrait.read_bytes()).text
        )
        assert dpo.get(f"/api/v1/rights/{reference}/report").status_code == 404  # not executed yet
        assert dpo.post(f"/api/v1/rights/{reference}/status", json={"status": "verified"}).status_code == 204
        assert dpo.post(f"/api/v1/rights/{reference}/execute").status_code == 200

        for_dpo = dpo.get(f"/api/v1/rights/{reference}/report")
        assert for_dpo.status_code == 200 and for_dpo.json()["faces_held"] == 1
        shown = visitor.post("/portal/status", data={"reference": reference, "code": code})
        assert 'action="/portal/report"' in shown.text
        for_person = visitor.post("/portal/report", data={"reference": reference, "code": code})
        assert for_person.status_code == 200 and for_person.content == for_dpo.content
        dpo_pages = api.client()
        csrf = re.search(r'name="csrf" value="([^"]+)"', dpo_pages.get("/login").text)
        assert csrf is not None
        dpo_pages.post(
            "/login", data={"username": dpo_name, "password": USER_PASSWORD, "csrf": csrf.group(1)}
        )
        assert f'href="/dpo/requests/{reference}/report"' in dpo_pages.get(f"/dpo/requests/{reference}").text
        assert dpo_pages.get(f"/dpo/requests/{reference}/report").content == for_dpo.content
        guessed = visitor.post("/portal/report", data={"reference": reference, "code": "A" * 16})
        assert guessed.status_code == 404 and str(portrait) not in guessed.text

        path = gov_settings.data_dir / "rights" / f"{reference}-access.json"
        assert (
            stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        )
        sessions = open_catalog(gov_settings.catalog_url)
        with sessions.begin() as session:
            session.execute(
                update(RightsRequest)
                .where(RightsRequest.reference == reference)
                .values(report_until=utcnow() - timedelta(minutes=1))
            )
        assert dpo.get("/api/v1/rights").status_code == 200  # the DPO's queue: old reports go
        assert not path.exists()
        assert dpo.get(f"/api/v1/rights/{reference}/report").status_code == 404
        assert visitor.post("/portal/report", data={"reference": reference, "code": code}).status_code == 404
        with sessions() as session:
            actions = session.scalars(
                sql_select(AuditEntry.action).where(AuditEntry.case_ref == reference)
            ).all()
        assert actions.count("rights.report.download") == 3 and "rights.report.delete" in actions
        assert json.loads(for_person.content)["request"] == reference
