"""Authorisations for searches (AI Act art. 26(10)): request, decision, and the check at search time.

Policies (``FACETRACE_AUTHORISATION_POLICY``):
* ``none``     — an authorisation reference is optional; if given, it must exist for the case.
* ``required`` — every search names an authorisation granted for its case.
* ``urgent``   — as ``required``, but a search may run on an authorisation still pending if it
  was requested within the grace period (48 hours by default). If it is then refused, the
  results kept for those searches are deleted and the fact is logged.

A supervisor decides requests from their own unit, and nobody decides their own request.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facetrace.catalog.models import utcnow
from facetrace.config import Settings
from facetrace.errors import AuthorisationError, FacetraceError, PermissionDeniedError
from facetrace.governance.audit import Actor
from facetrace.governance.models import Authorisation, CaseResult
from facetrace.governance.references import next_reference


def request(session: Session, actor: Actor, case_ref: str, justification: str) -> Authorisation:
    if not case_ref.strip() or len(justification.strip()) < 10:
        raise FacetraceError(
            "a request needs the case reference and a justification of at least 10 characters"
        )
    now = utcnow()
    authorisation = Authorisation(
        reference=next_reference(session, Authorisation.id, "AUTH", now),
        case_ref=case_ref,
        unit=actor.unit,
        requested_by=actor.name,
        requested_at=now,
        justification=justification,
        status="requested",
    )
    session.add(authorisation)
    session.flush()
    return authorisation


def by_reference(session: Session, reference: str) -> Authorisation:
    authorisation = session.scalar(select(Authorisation).where(Authorisation.reference == reference))
    if authorisation is None:
        raise AuthorisationError(f"no authorisation {reference!r}")
    return authorisation


def decide(session: Session, actor: Actor, reference: str, *, grant: bool, note: str | None) -> Authorisation:
    """Grant or refuse a pending request; refusing deletes the results of searches that relied on it."""
    authorisation = by_reference(session, reference)
    if authorisation.status != "requested":
        raise AuthorisationError(f"{reference} was already {authorisation.status}")
    if authorisation.requested_by == actor.name:
        raise PermissionDeniedError(f"{actor.name} may not decide their own request {reference}")
    if authorisation.unit != actor.unit:
        raise PermissionDeniedError(f"{reference} belongs to unit {authorisation.unit!r}, not {actor.unit!r}")
    if not grant and not (note or "").strip():
        raise FacetraceError("a refusal needs its reason (--note)")
    authorisation.status = "granted" if grant else "refused"
    authorisation.decided_by = actor.name
    authorisation.decided_at = utcnow()
    authorisation.note = note
    return authorisation


def delete_results(session: Session, authorisation: Authorisation) -> int:
    """Delete the results kept for the searches that ran on ``authorisation``; returns how many."""
    done = session.execute(
        update(CaseResult)
        .where(CaseResult.authorisation_id == authorisation.id, CaseResult.deleted_at.is_(None))
        .values(
            results=None,
            deleted_at=utcnow(),
            deleted_reason=f"authorisation {authorisation.reference} refused",
        )
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def record_external(
    session: Session, actor: Actor, case_ref: str, authority: str, reference: str, decided_on: datetime
) -> Authorisation:
    """An authorisation granted outside Facetrace (a court, a prosecutor), with its reference and date."""
    if not authority.strip() or not reference.strip():
        raise FacetraceError("an external authorisation needs the authority and its reference")
    authorisation = Authorisation(
        reference=next_reference(session, Authorisation.id, "AUTH", utcnow()),
        case_ref=case_ref,
        unit=actor.unit,
        requested_by=actor.name,
        justification=f"granted by {authority}, reference {reference}",
        status="granted",
        decided_by=authority,
        decided_at=decided_on,
        external_authority=authority,
        external_reference=reference,
    )
    session.add(authorisation)
    session.flush()
    return authorisation


def check_for_search(
    session: Session, settings: Settings, case_ref: str, reference: str | None
) -> Authorisation | None:
    """The authorisation a search may rely on under the deployment's policy, or a clear refusal."""
    policy = settings.authorisation_policy
    if reference is None:
        if policy == "none":
            return None
        raise AuthorisationError(
            f"this deployment requires an authorisation for every search (policy {policy!r}): "
            "request one with 'facetrace authorisation request' and give its reference (--authorisation)"
        )
    authorisation = by_reference(session, reference)
    if authorisation.case_ref != case_ref:
        raise AuthorisationError(
            f"{reference} was given for case {authorisation.case_ref!r}, not {case_ref!r}"
        )
    if authorisation.status == "granted":
        return authorisation
    if authorisation.status == "refused":
        raise AuthorisationError(f"{reference} was refused")
    grace = timedelta(hours=settings.authorisation_grace_hours)
    if policy in ("none", "urgent") and utcnow() - authorisation.requested_at <= grace:
        return authorisation  # pending, within the grace period: results go if it is refused
    raise AuthorisationError(f"{reference} is still pending a decision")
