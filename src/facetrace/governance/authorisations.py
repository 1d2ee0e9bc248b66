"""Authorisations for searches (AI Act art. 26(10)): request, decision, and the check at search time.

The deployment's policy (:mod:`facetrace.governance.deployment_policy`) says when one is needed:
* ``none``     — an authorisation reference is optional; if given, it must be usable for the case.
* ``required`` — every search names an authorisation granted for its case.
* ``urgent``   — as ``required``, but a search may run on an authorisation still pending if it
  was requested within the grace period (48 hours by default). If it is then refused, the
  results kept for those searches are deleted and the fact is logged.

An authorisation is bound: only its requester, or (scope ``unit``, the default) a member of the
unit it was requested in, may search on it, for its case, until it expires. To anyone else it
does not exist: they get the answer an unknown reference gets, which names nothing of it.
A supervisor decides requests from their own unit (units compared by id), nobody decides their
own request, and a supervisor of no unit decides nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facetrace.core.errors import AuthorisationError, FacetraceError, NotFoundError, PermissionDeniedError
from facetrace.governance.audit import Actor
from facetrace.governance.deployment_policy import DeploymentPolicy
from facetrace.governance.references import next_reference
from facetrace.store.base import utcnow
from facetrace.store.governance_models import Authorisation, CaseResult, User


def unit_id_of(session: Session, actor: Actor) -> int | None:
    """The id of the unit ``actor`` belongs to now (None: no unit)."""
    return session.scalar(select(User.unit_id).where(User.id == actor.user_id))


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
        unit_id=unit_id_of(session, actor),
        requested_by=actor.name,
        requested_at=now,
        justification=justification,
        status="requested",
    )
    session.add(authorisation)
    session.flush()
    return authorisation


def _named(session: Session, reference: str) -> Authorisation | None:
    return session.scalar(select(Authorisation).where(Authorisation.reference == reference))


def _decider_unit(session: Session, actor: Actor) -> int:
    unit_id = unit_id_of(session, actor)
    if unit_id is None:
        raise PermissionDeniedError(
            f"{actor.name} belongs to no unit: only a unit's supervisor decides that unit's authorisations"
        )
    return unit_id


def decide(
    session: Session, actor: Actor, reference: str, *, grant: bool, note: str | None, valid_days: int
) -> Authorisation:
    """Grant (for ``valid_days``) or refuse a pending request of the supervisor's own unit.

    Another unit's request gets the answer an unknown reference gets.
    """
    unit_id = _decider_unit(session, actor)
    authorisation = _named(session, reference)
    if authorisation is None or authorisation.unit_id != unit_id:
        raise NotFoundError(f"no authorisation {reference!r} of your unit")
    if authorisation.requested_by == actor.name:
        raise PermissionDeniedError(f"{actor.name} may not decide their own request {reference}")
    if authorisation.status != "requested":
        raise AuthorisationError(f"{reference} was already {authorisation.status}")
    if not grant and not (note or "").strip():
        raise FacetraceError("a refusal needs its reason (--note)")
    now = utcnow()
    authorisation.status = "granted" if grant else "refused"
    authorisation.decided_by = actor.name
    authorisation.decided_at = now
    authorisation.expires_at = now + timedelta(days=valid_days) if grant else None
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
    session: Session,
    actor: Actor,
    case_ref: str,
    authority: str,
    reference: str,
    decided_on: datetime,
    *,
    valid_days: int,
) -> Authorisation:
    """An authorisation granted outside Facetrace (a court, a prosecutor), with its reference and date,
    for the recording supervisor's unit; it expires ``valid_days`` after the authority's decision."""
    if not authority.strip() or not reference.strip():
        raise FacetraceError("an external authorisation needs the authority and its reference")
    authorisation = Authorisation(
        reference=next_reference(session, Authorisation.id, "AUTH", utcnow()),
        case_ref=case_ref,
        unit=actor.unit,
        unit_id=_decider_unit(session, actor),
        requested_by=actor.name,
        justification=f"granted by {authority}, reference {reference}",
        status="granted",
        decided_by=authority,
        decided_at=decided_on,
        expires_at=decided_on + timedelta(days=valid_days),
        external_authority=authority,
        external_reference=reference,
    )
    session.add(authorisation)
    session.flush()
    return authorisation


def usable_by(session: Session, authorisation: Authorisation, actor: Actor, policy: DeploymentPolicy) -> bool:
    """Whether ``actor`` may search on ``authorisation`` at all (case, status and expiry aside)."""
    if authorisation.requested_by == actor.name:
        return True
    if policy.authorisation_scope == "requester":
        return False
    unit_id = unit_id_of(session, actor)
    return unit_id is not None and authorisation.unit_id == unit_id


def check_for_search(
    session: Session, actor: Actor, policy: DeploymentPolicy, case_ref: str, reference: str | None
) -> Authorisation | None:
    """The authorisation a search may rely on under the deployment's policy, or a clear refusal.

    A reference that does not exist and one ``actor`` may not use get the same answer.
    """
    if reference is None:
        if policy.authorisation_policy == "none":
            return None
        raise AuthorisationError(
            f"this deployment requires an authorisation for every search (policy "
            f"{policy.authorisation_policy!r}): request one with 'facetrace authorisation request' "
            "and give its reference (--authorisation)"
        )
    authorisation = _named(session, reference)
    if authorisation is None or not usable_by(session, authorisation, actor, policy):
        raise AuthorisationError(f"no authorisation {reference!r} that you may use")
    if authorisation.case_ref != case_ref:
        raise AuthorisationError(
            f"{reference} was given for case {authorisation.case_ref!r}, not {case_ref!r}"
        )
    now = utcnow()
    if authorisation.status == "granted":
        if authorisation.expires_at is None or authorisation.expires_at <= now:
            when = f" on {authorisation.expires_at:%Y-%m-%d}" if authorisation.expires_at else ""
            raise AuthorisationError(f"{reference} expired{when}: request a new one")
        return authorisation
    if authorisation.status == "refused":
        raise AuthorisationError(f"{reference} was refused")
    grace = timedelta(hours=policy.authorisation_grace_hours)
    if policy.authorisation_policy in ("none", "urgent") and now - authorisation.requested_at <= grace:
        return authorisation  # pending, within the grace period: results go if it is refused
    raise AuthorisationError(f"{reference} is still pending a decision")
