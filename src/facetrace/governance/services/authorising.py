"""Authorisations: request, decide, record an external one, list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from facetrace.governance import audit, authorisations
from facetrace.governance.audit import Record
from facetrace.governance.models import Authorisation
from facetrace.governance.roles import Action, Role
from facetrace.governance.services.base import ServiceBase


class AuthorisationService(ServiceBase):
    def request_authorisation(self, case_ref: str, justification: str) -> str:
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

    def decide_authorisation(self, reference: str, *, grant: bool, note: str | None) -> int:
        """Grant or refuse; returns how many searches' kept results a refusal deleted."""
        self.allow(Action.DECIDE_AUTHORISATION)
        with self.sessions.begin() as session:
            decided = authorisations.decide(session, self.actor, reference, grant=grant, note=note)
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
                    details={"requested_by": decided.requested_by, "search_results_deleted": deleted},
                ),
            )
        return deleted

    def record_external_authorisation(
        self, case_ref: str, authority: str, external_reference: str, decided_on: datetime
    ) -> str:
        self.allow(Action.DECIDE_AUTHORISATION)
        with self.sessions.begin() as session:
            made = authorisations.record_external(
                session, self.actor, case_ref, authority, external_reference, decided_on
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
                    },
                ),
            )
            return made.reference

    def authorisations(self, pending_only: bool = False) -> list[dict[str, Any]]:
        """Supervisors see their unit's, investigators their own requests, auditors and DPOs all."""
        query = select(Authorisation).order_by(Authorisation.requested_at.desc())
        if pending_only:
            query = query.where(Authorisation.status == "requested")
        roles = self.actor.roles
        if not {Role.AUDITOR, Role.DPO, Role.SUPERVISOR} & roles:
            self.allow(Action.REQUEST_AUTHORISATION)
            query = query.where(Authorisation.requested_by == self.actor.name)
        elif not {Role.AUDITOR, Role.DPO} & roles:
            query = query.where(Authorisation.unit == self.actor.unit)
        with self.sessions() as session:
            return [
                {
                    "reference": a.reference,
                    "case_ref": a.case_ref,
                    "status": a.status,
                    "requested_by": a.requested_by,
                    "requested_at": a.requested_at.isoformat(),
                    "unit": a.unit,
                    "decided_by": a.decided_by,
                    "justification": a.justification,
                }
                for a in session.scalars(query)
            ]
