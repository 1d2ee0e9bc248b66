"""Data-subject requests (GDPR art. 15 access, 17 erasure, 21 objection): records, deadlines, history.

A request names what it is about by the URLs of images or pages, by a photo of the
person (matched in memory when the request is filed; only the matching face ids are
kept), or both. Its status goes received → verified → in_progress → done, or refused,
each step in its history; the answer is due one month after receipt by default
(GDPR art. 12(3)). A request still unverified at its deadline expires.

Its reference is random and comes with a secret code (:mod:`facetrace.governance.references`):
following the request needs both. An objection's template, kept with the person's consent, is
inactive until the request is verified and executed; refusal and expiry delete it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from facetrace.catalog import repository
from facetrace.core.errors import FacetraceError, NotFoundError
from facetrace.gallery.results import Sighting
from facetrace.governance.access_reports import AccessReport, HeldImage
from facetrace.governance.audit import Actor
from facetrace.governance.keyed_hashes import ALGORITHM, ErasureKey
from facetrace.governance.references import code_digest, code_matches, random_reference, secret_code
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import Face
from facetrace.store.governance_models import DoNotCollect, RightsEvent, RightsRequest

KINDS = ("access", "erasure", "objection")
OPEN = ("received", "verified", "in_progress")
CLOSED = ("done", "refused", "expired")
#: The answer to a reference and code that do not name a request, whichever of the two is wrong.
NOT_FOUND = "no request matches this reference and code"


def file(
    session: Session,
    actor: Actor,
    kind: str,
    *,
    urls: list[str],
    with_photo: bool,
    matched_face_ids: list[int],
    contact: str | None,
    deadline_days: int,
) -> tuple[RightsRequest, str]:
    """Record a request; returns it and its secret code (only the code's digest is stored).

    Whether the photo matched anything never decides whether a request is accepted."""
    if kind not in KINDS:
        raise FacetraceError(f"a request is one of {', '.join(KINDS)}, not {kind!r}")
    if not urls and not with_photo:
        raise FacetraceError("a request needs the URLs of images or pages, or a photo of you")
    now = utcnow()
    code = secret_code()
    request = RightsRequest(
        reference=random_reference("RR", now),
        code_sha256=code_digest(code),
        kind=kind,
        status="received",
        received_at=now,
        due_at=now + timedelta(days=deadline_days),
        contact=contact,
        urls=urls,
        matched_face_ids=matched_face_ids,
        events=[RightsEvent(actor=actor.name, status="received", note=f"{kind} request filed")],
    )
    session.add(request)
    session.flush()
    return request, code


def by_reference(session: Session, reference: str) -> RightsRequest:
    request = session.scalar(select(RightsRequest).where(RightsRequest.reference == reference))
    if request is None:
        raise NotFoundError(f"no rights request {reference!r}")
    return request


def by_reference_and_code(session: Session, reference: str, code: str) -> RightsRequest:
    """The request, for whoever holds its reference and code; the same refusal whichever is wrong."""
    request = session.scalar(select(RightsRequest).where(RightsRequest.reference == reference.strip()))
    if not code_matches(code, request.code_sha256 if request is not None else None) or request is None:
        raise NotFoundError(NOT_FOUND)
    return request


def move(request: RightsRequest, actor: Actor, status: str, note: str | None) -> None:
    """Record a step; only open requests move."""
    if request.status not in OPEN:
        raise FacetraceError(f"{request.reference} is already {request.status}")
    request.status = status
    request.events.append(RightsEvent(actor=actor.name, status=status, note=note))
    if status in CLOSED:
        request.closed_at = utcnow()
        request.outcome = note


def queue(session: Session, include_closed: bool = False) -> list[RightsRequest]:
    """Open requests, overdue first then by deadline."""
    query = select(RightsRequest)
    if not include_closed:
        query = query.where(RightsRequest.status.in_(OPEN))
    return list(session.scalars(query.order_by(RightsRequest.due_at, RightsRequest.id)))


def access_report(session: Session, request: RightsRequest) -> AccessReport:
    """What the gallery holds about the request's subject: images, where and when they were seen."""
    face_ids = set(request.matched_face_ids)
    if request.urls:
        seen = repository.images_seen_at(request.urls)
        face_ids |= set(session.scalars(select(Face.id).where(Face.image_id.in_(seen))))
    faces = repository.faces_with_provenance(session, sorted(face_ids))
    return AccessReport(
        request=request.reference,
        generated_at=utcnow().isoformat(timespec="seconds"),
        faces_held=len(faces),
        images=[
            HeldImage(
                face_id=face.id,
                image_sha256=face.image.sha256,
                first_seen=face.image.first_seen.isoformat(),
                last_seen=face.image.last_seen.isoformat(),
                seen_at=Sighting.all_of(face.image),
            )
            for face in faces.values()
        ],
    )


def keep_template(session: Session, request: RightsRequest, template: bytes, model_id: str | None) -> None:
    """With the person's explicit consent only: keep the template to drop faces matching it at every
    ingest, once the request is verified and executed (:func:`activate_templates`); until then it
    blocks nothing."""
    session.add(
        DoNotCollect(
            request_id=request.id, kind="template", model_id=model_id, template=template, active=False
        )
    )


def activate_templates(session: Session, request: RightsRequest) -> int:
    """The objection is executed: its template now drops matching faces at ingest."""
    activated = session.execute(
        update(DoNotCollect)
        .where(DoNotCollect.request_id == request.id, DoNotCollect.kind == "template")
        .values(active=True)
    )
    return cast("CursorResult[Any]", activated).rowcount  # an UPDATE's result is a cursor's


def delete_templates(session: Session, request: RightsRequest) -> int:
    """The request is refused or expired: its template, never used, is deleted."""
    deleted = session.execute(
        delete(DoNotCollect).where(DoNotCollect.request_id == request.id, DoNotCollect.kind == "template")
    )
    return cast("CursorResult[Any]", deleted).rowcount  # a DELETE's result is a cursor's


def unverified_past_deadline(session: Session, now: datetime) -> list[RightsRequest]:
    """Requests nobody verified before their deadline: they expire."""
    query = select(RightsRequest).where(RightsRequest.status == "received", RightsRequest.due_at < now)
    return list(session.scalars(query.order_by(RightsRequest.id)))


def reports_past(session: Session, now: datetime) -> list[RightsRequest]:
    """Access requests whose report has been kept as long as it may be."""
    query = select(RightsRequest).where(
        RightsRequest.report_until.is_not(None), RightsRequest.report_until < now
    )
    return list(session.scalars(query.order_by(RightsRequest.id)))


def forget_places(request: RightsRequest, key: ErasureKey) -> None:
    """Once its erasure is done, the request keeps the places the person named by keyed hash only
    (as the certificate does: ``facetrace erasure check`` still answers for them), and no face id."""
    request.urls = [f"{ALGORITHM}:{key.hash(url)}" for url in request.urls]
    request.matched_face_ids = []


def block_urls(session: Session, request: RightsRequest) -> int:
    """Objection: never collect the request's URLs again."""
    session.add_all(DoNotCollect(request_id=request.id, kind="url", value=url) for url in request.urls)
    return len(request.urls)
