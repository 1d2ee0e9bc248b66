"""Authorisations: request, decide, record an external one, list."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import false, select

from facetrace.core.errors import FacetraceError
from facetrace.governance import audit, authorisations
from facetrace.governance.audit import Record
from facetrace.governance.roles import Action, Role
from facetrace.governance.services.base import ServiceBase
from facetrace.store.governance_models import Authorisation as AuthorisationRecord


class Authorisation(BaseModel):
    """An authorisation as its requester, their supervisor, an auditor or a DPO lists it."""

    model_config = ConfigDict(frozen=True)

    reference: str
    case_ref: str
    status: str
    requested_by: str
    requested_at: str
    unit: str | None
    decided_by: str | None
    justification: str | None
    expires_at: str | None = Field(description="A granted one may be searched on until then.")

    @classmethod
    def of(cls, a: AuthorisationRecord) -> Authorisation:
        return cls(
            reference=a.reference,
            case_ref=a.case_ref,
            status=a.status,
            requested_by=a.requested_by,
            requested_at=a.requested_at.isoformat(),
            unit=a.unit,
            decided_by=a.decided_by,
            justification=a.justification,
            expires_at=a.expires_at.isoformat() if a.expires_at else None,
        )


class AuthorisationService(ServiceBase):
    """``gov.authorisations``: request, decide and record authorisations for searches."""

    def request(self, case_ref: str, justification: str) -> str:
        self.allow(Action.REQUEST_AUTHORISATION)
        with self.sessions.begin() as session:
            made = authorisations.request(session, self.actor, case_ref, justification)
            audit.append(
                session,
                self.actor,
                Record(
                    action="authorisation.request",
                    case_ref=case_ref,
                    purpose=justification,
                    authorisation_ref=made.reference,
                ),
            )
            return made.reference

    def decide(self, reference: str, *, grant: bool, note: str | None) -> int:
        """Grant or refuse; returns how many searches' kept results a refusal deleted."""
        self.allow(Action.DECIDE_AUTHORISATION)
        valid_days = self.deployment_policy().authorisation_valid_days
        with self._refusals_recorded("authorisation.decide", reference), self.sessions.begin() as session:
            decided = authorisations.decide(
                session, self.actor, reference, grant=grant, note=note, valid_days=valid_days
            )
            deleted = 0 if grant else authorisations.delete_results(session, decided)
            audit.append(
                session,
                self.actor,
                Record(
                    action="authorisation.decide",
                    outcome=decided.status,
                    case_ref=decided.case_ref,
                    authorisation_ref=reference,
                    purpose=note,
                    details={
                        "requested_by": decided.requested_by,
                        "search_results_deleted": deleted,
                        "expires_at": decided.expires_at.isoformat() if decided.expires_at else None,
                    },
                ),
            )
        return deleted

    def record_external(
        self, case_ref: str, authority: str, external_reference: str, decided_on: datetime
    ) -> str:
        self.allow(Action.DECIDE_AUTHORISATION)
        days = self.deployment_policy().authorisation_valid_days
        with self._refusals_recorded("authorisation.external"), self.sessions.begin() as session:
            made = authorisations.record_external(
                session, self.actor, case_ref, authority, external_reference, decided_on, valid_days=days
            )
            audit.append(
                session,
                self.actor,
                Record(
                    action="authorisation.external",
                    outcome="granted",
                    case_ref=case_ref,
                    authorisation_ref=made.reference,
                    details={
                        "authority": authority,
                        "reference": external_reference,
                        "decided_on": decided_on.date().isoformat(),
                        "expires_at": made.expires_at.isoformat() if made.expires_at else None,
                    },
                ),
            )
            return made.reference

    @contextmanager
    def _refusals_recorded(self, action: str, reference: str | None = None) -> Iterator[None]:
        """A decision refused (no unit, not of this unit, one's own...) leaves an audit entry too,
        with the same message the user saw and nothing more."""
        try:
            yield
        except FacetraceError as exc:
            details = {"error": str(exc)}
            self.record(Record(action=action, outcome="denied", authorisation_ref=reference, details=details))
            raise

    def listing(self, pending_only: bool = False) -> list[Authorisation]:
        """Supervisors see their unit's (none without a unit), investigators their own requests,
        auditors and DPOs all."""
        query = select(AuthorisationRecord).order_by(AuthorisationRecord.requested_at.desc())
        if pending_only:
            query = query.where(AuthorisationRecord.status == "requested")
        roles = self.actor.roles
        with self.sessions() as session:
            if not {Role.AUDITOR, Role.DPO, Role.SUPERVISOR} & roles:
                self.allow(Action.REQUEST_AUTHORISATION)
                query = query.where(AuthorisationRecord.requested_by == self.actor.name)
            elif not {Role.AUDITOR, Role.DPO} & roles:
                unit_id = authorisations.unit_id_of(session, self.actor)
                unit_of = AuthorisationRecord.unit_id == unit_id if unit_id is not None else false()
                query = query.where(unit_of)
            return [Authorisation.of(a) for a in session.scalars(query)]
