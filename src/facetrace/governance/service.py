"""The accountability layer's entry point: one acting user, every action checked and recorded.

The CLI (and the API later) opens a :class:`Governance` for whoever acts and calls
its methods; each checks the role in :mod:`facetrace.governance.policy`, does the
work, and appends to the audit log. No interface re-implements a rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from facetrace.catalog.db import open_catalog
from facetrace.catalog.models import Face, utcnow
from facetrace.config import Settings
from facetrace.errors import (
    AuditWriteError,
    AuthorisationError,
    FacetraceError,
    PermissionDeniedError,
    PurposeError,
    QuotaError,
)
from facetrace.evaluation import calibration
from facetrace.gallery import Gallery
from facetrace.governance import (
    accounts,
    audit,
    authorisations,
    erasure,
    quotas,
    report_files,
    reports,
    rights,
)
from facetrace.governance.audit import Actor, ChainReport, Record
from facetrace.governance.erasure import ErasurePlan, ErasureScope
from facetrace.governance.models import Authorisation, CaseResult, DoNotCollect, User
from facetrace.governance.policy import authorize, record
from facetrace.governance.roles import Action, Role
from facetrace.governance.searches import Purpose, search_record
from facetrace.search import SearchOutcome, search_photo
from facetrace.vision.analyzer import FaceAnalyzer


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: int
    user: str
    name: str
    expires_at: str
    token: str  # shown once


class Governance:
    """What ``actor`` may do with the catalog at ``settings``, with an audit entry per action."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], actor: Actor) -> None:
        self.settings = settings
        self.sessions = sessions
        self.actor = actor

    @classmethod
    def open(cls, settings: Settings, token: str | None = None) -> Governance:
        """Act as the token's user, or as the bootstrap operator where the deployment allows it."""
        sessions = open_catalog(settings.catalog_url)
        with sessions.begin() as session:
            actor = accounts.identify(session, token, allow_bootstrap=settings.allow_bootstrap)
        return cls(settings, sessions, actor)

    def allow(self, action: Action) -> None:
        authorize(self.sessions, self.actor, action)

    def record(self, entry: Record) -> None:
        record(self.sessions, self.actor, entry)

    @contextmanager
    def action(self, action: Action, **details: Any) -> Iterator[dict[str, Any]]:
        """Check, run the body, then record it with ``details`` (the body may add to them).

        A body that fails or is interrupted is recorded too: what it did before stays done.
        """
        self.allow(action)
        try:
            yield details
        except BaseException as exc:
            details["error"] = f"{exc.__class__.__name__}: {exc}".rstrip(": ")
            self.record(Record(action=action.value, outcome="failed", details=details))
            raise
        self.record(Record(action=action.value, details=details))

    def search(
        self,
        analyzer: FaceAnalyzer,
        probe: bytes,
        purpose: Purpose,
        *,
        k: int,
        face: int = 1,
        min_score: float | None = None,
    ) -> SearchOutcome:
        """Search for ``purpose``; every attempt, refused or not, leaves an audit entry.

        The entry of a search that ran (and the results kept for the case) is committed
        after the gallery was searched and before anything is returned: if it cannot be
        written, there are no results.
        """
        authorisation_id = self._admit_search(purpose, probe)
        gallery = Gallery.open(self.settings, analyzer.model_id, analyzer.embedder.dim)
        try:
            outcome = search_photo(
                self.settings, analyzer, probe, k=k, face=face, min_score=min_score, gallery=gallery
            )
        except FacetraceError as exc:  # no face, not an image, too large...: an attempt all the same
            self.record(search_record(purpose, probe, "failed", details={"error": str(exc)}))
            raise
        face_ids = [hit.face.id for hit in outcome.hits]
        entry = search_record(
            purpose,
            probe,
            "done",
            result_count=len(face_ids),
            result_face_ids=face_ids,
            details={"k": k, "face": face, "min_score": min_score, "gallery_size": outcome.gallery_size},
        )
        kept = [
            {"face_id": h.face.id, "score": round(h.score, 4), "false_matches": h.expected_false_matches}
            for h in outcome.hits
        ]
        try:
            with self.sessions.begin() as session:
                logged = audit.append(session, self.actor, entry)
                session.add(
                    CaseResult(
                        audit_seq=logged.id,
                        user_name=self.actor.name,
                        case_ref=purpose.case_ref or "",
                        authorisation_id=authorisation_id,
                        results=kept,
                    )
                )
        except SQLAlchemyError as exc:
            raise AuditWriteError(
                "the search could not be recorded in the audit log, so it returns nothing "
                f"({exc.__class__.__name__})"
            ) from exc
        return outcome

    def _admit_search(self, purpose: Purpose, probe: bytes) -> int | None:
        """Role, purpose, quota and authorisation checks; each refusal is recorded. Returns the
        id of the authorisation the search relies on, if any."""
        self.allow(Action.SEARCH)

        def refuse(error: type[FacetraceError], message: str, reason: str) -> NoReturn:
            self.record(search_record(purpose, probe, "refused", details={reason: message}))
            raise error(message + ". The refusal was recorded.")

        missing = purpose.problems(self.settings)
        if missing:
            refuse(PurposeError, "a search needs " + "; ".join(missing), "missing")
        with self.sessions() as session:
            used = quotas.usage(session, self.actor, utcnow())
            try:
                authorisation = authorisations.check_for_search(
                    session, self.settings, purpose.case_ref or "", purpose.authorisation_ref
                )
            except AuthorisationError as exc:
                refuse(AuthorisationError, str(exc), "authorisation")
        refusal = quotas.over_quota(self.settings, used)
        if refusal:
            refuse(QuotaError, refusal, "quota")
        if quotas.is_burst(self.settings, used):
            limit = self.settings.burst_searches_per_hour
            self.record(
                Record(
                    action="alarm.burst",
                    outcome="flagged",
                    case_ref=purpose.case_ref,
                    details={"searches_last_hour": used.last_hour + 1, "limit": limit},
                )
            )
        return authorisation.id if authorisation else None

    # Authorisations.

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

    def calibrate(
        self,
        folder: Path,
        *,
        workers: int | None = None,
        on_start: Callable[[int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Measure impostor scores on a labelled folder and store them with the model."""
        with self.action(Action.CONFIGURE, command="calibrate", dataset=folder.name) as details:
            result = calibration.calibrate_folder(
                self.settings, folder, workers=workers, on_start=on_start, on_progress=on_progress
            )
            with self.sessions.begin() as session:
                calibration.store(session, result)
            curve = result.curve
            details.update(
                model=result.model_id,
                images=result.images_with_face,
                impostor_pairs=curve.pairs,
                score_at_far={str(far): curve.score_at_far(far) for far in (1e-3, 1e-4, 1e-5, 1e-6)},
            )
        return details

    # Erasure and purges.

    def faces_of_person(self, analyzer: FaceAnalyzer, photo: bytes) -> list[int]:
        """Gallery faces matching the largest face of ``photo`` above the strict subject threshold.

        The photo is analysed in memory and dropped; only the matching face ids come back.
        """
        self.allow(Action.ERASE)
        return self._match_person(analyzer, photo)[0]

    def _match_person(self, analyzer: FaceAnalyzer, photo: bytes) -> tuple[list[int], bytes]:
        """(matching face ids, the photo's template as bytes); the photo itself is not kept."""
        gallery = Gallery.open(self.settings, analyzer.model_id, analyzer.embedder.dim)
        outcome = search_photo(self.settings, analyzer, photo, k=1000, gallery=gallery)
        matches = sorted(h.face.id for h in outcome.hits if h.score >= self.settings.subject_match_threshold)
        return matches, outcome.probe_faces[0].embedding.astype("float32").tobytes()

    def erasure_plan(self, scope: ErasureScope) -> ErasurePlan:
        """The dry run: what an erasure of ``scope`` would delete (recorded, as it reveals data)."""
        self.allow(Action.ERASE)
        with self.sessions() as session:
            result = erasure.plan(session, scope)
        self.record(
            Record(action="data.erase.dry_run", result_count=len(result.face_ids), details=result.counts())
        )
        return result

    def erase(self, scope: ErasureScope, reason: str) -> dict[str, Any]:
        """Delete everything ``scope`` selects, physically; returns the deletion certificate."""
        self.allow(Action.ERASE)
        if len(reason.strip()) < 5:
            raise FacetraceError("an erasure needs its reason (--reason), e.g. the request reference")
        return erasure.execute(self.settings, self.sessions, self.actor, self._plan(scope), reason=reason)

    # Users and tokens.

    def add_user(self, name: str, roles: list[str], unit: str | None, password: str | None) -> None:
        self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            user = accounts.create_user(session, name, roles, unit=unit, password=password)
            audit.append(
                session,
                self.actor,
                Record(
                    action="users.create",
                    details={"user": name, "roles": user.role_names, "unit": unit},
                ),
            )

    def users(self) -> list[dict[str, Any]]:
        self.allow(Action.MANAGE_USERS)
        with self.sessions() as session:
            return [
                {
                    "name": u.name,
                    "roles": u.role_names,
                    "unit": u.unit.name if u.unit else None,
                    "bootstrap": u.is_bootstrap,
                    "disabled": u.disabled,
                }
                for u in session.scalars(select(User).order_by(User.name))
            ]

    def issue_token(self, user_name: str, name: str, days: int) -> IssuedToken:
        """A token for ``user_name``: one's own for anybody, another user's for an admin only."""
        if user_name != self.actor.name:
            self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            user = accounts.user_named(session, user_name)
            token, plain = accounts.issue_token(session, user, name, days)
            expires = token.expires_at.isoformat()
            audit.append(
                session,
                self.actor,
                Record(
                    action="tokens.create",
                    details={"user": user_name, "token_id": token.id, "name": name, "expires_at": expires},
                ),
            )
            return IssuedToken(token.id, user_name, name, expires, plain)

    def revoke_token(self, token_id: int) -> None:
        with self.sessions.begin() as session:
            owner = accounts.token_owner(session, token_id)
        if owner != self.actor.name:
            self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            accounts.revoke_token(session, token_id)
            audit.append(
                session,
                self.actor,
                Record(action="tokens.revoke", details={"token_id": token_id, "user": owner}),
            )

    # The audit log.

    def _reader_unit(self, action: Action) -> str | None:
        """Supervisors read their own unit's entries and figures; auditors and DPOs read all of them."""
        self.allow(action)
        if {Role.AUDITOR, Role.DPO} & self.actor.roles:
            return None
        if self.actor.unit is None:
            raise PermissionDeniedError(f"{self.actor.name} is a supervisor of no unit")
        return self.actor.unit

    def verify_audit(self) -> ChainReport:
        """Check the whole chain (any reader may: it reveals no entry, only whether it holds)."""
        self.allow(Action.READ_AUDIT)
        with self.sessions() as session:
            report = audit.verify(session)
        self.record(
            Record(
                action="audit.verify",
                details={"ok": report.ok, "entries": report.entries, "first_broken": report.first_broken},
            )
        )
        return report

    def export_audit(self, first: int = 1, last: int | None = None) -> dict[str, Any]:
        unit = self._reader_unit(Action.READ_AUDIT)
        with self.sessions() as session:
            document = audit.export(session, first, last, unit=unit)
        self.record(
            Record(
                action="audit.export",
                details={
                    "first": first,
                    "last": document["last"],
                    "unit": unit,
                    "entries": len(document["entries"]),
                    "head": document["head"],
                },
            )
        )
        return document

    # Reports.

    def usage_report(self, year: int) -> list[dict[str, Any]]:
        unit = self._reader_unit(Action.VIEW_REPORTS)
        with self.sessions() as session:
            rows = reports.usage(session, year, unit)
        self.record(Record(action="reports.usage", details={"year": year, "unit": unit}))
        return rows

    def annual_report(self, year: int, folder: Path) -> list[Path]:
        """Write the annual usage report (JSON, CSV, plot, HTML) to ``folder``."""
        unit = self._reader_unit(Action.VIEW_REPORTS)
        with self.sessions() as session:
            report = reports.annual(session, self.settings, year, unit)
        written = report_files.write_annual(report, folder)
        self.record(
            Record(action="reports.annual", details={"year": year, "unit": unit, "folder": str(folder)})
        )
        return written

    def records_of_processing(self) -> dict[str, Any]:
        self.allow(Action.VIEW_RECORDS)
        with self.sessions() as session:
            records = reports.records_of_processing(session, self.settings)
        self.record(Record(action="records.view"))
        return records

    # Data-subject requests.

    def file_rights_request(
        self,
        kind: str,
        *,
        urls: list[str],
        photo: bytes | None = None,
        analyzer: FaceAnalyzer | None = None,
        contact: str | None = None,
        consent_to_keep_template: bool = False,
    ) -> str:
        """Record a request; a photo is matched in memory, and its template kept only for an
        objection with the person's explicit consent (to drop their face from future collection)."""
        self.allow(Action.HANDLE_RIGHTS)
        matched: list[int] = []
        template = None
        if photo is not None:
            if analyzer is None:
                raise FacetraceError("matching a photo needs the face analyzer")
            matched, template = self._match_person(analyzer, photo)
        keep_template = template if kind == "objection" and consent_to_keep_template else None
        with self.sessions.begin() as session:
            request = rights.file(
                session,
                self.actor,
                kind,
                urls=urls,
                matched_face_ids=matched,
                contact=contact,
                deadline_days=self.settings.rights_deadline_days,
            )
            if keep_template is not None:
                rights.keep_template(session, request, keep_template, analyzer.model_id if analyzer else None)
            audit.append(
                session,
                self.actor,
                Record(
                    action="rights.file",
                    case_ref=request.reference,
                    result_count=len(matched),
                    details={
                        "kind": kind,
                        "urls": len(urls),
                        "photo": photo is not None,
                        "template_kept_with_consent": keep_template is not None,
                    },
                ),
            )
            return request.reference

    def rights_queue(self, include_closed: bool = False) -> list[dict[str, Any]]:
        """The DPO's queue: overdue first."""
        self.allow(Action.HANDLE_RIGHTS)
        now = utcnow()
        with self.sessions() as session:
            return [
                {
                    "reference": r.reference,
                    "kind": r.kind,
                    "status": r.status,
                    "received_at": r.received_at.isoformat(timespec="seconds"),
                    "due_at": r.due_at.isoformat(timespec="seconds"),
                    "overdue": r.status in rights.OPEN and r.due_at < now,
                    "history": [
                        {
                            "at": e.at.isoformat(timespec="seconds"),
                            "by": e.actor,
                            "status": e.status,
                            "note": e.note,
                        }
                        for e in r.events
                    ],
                    "outcome": r.outcome,
                }
                for r in rights.queue(session, include_closed)
            ]

    def move_rights_request(self, reference: str, status: str, note: str | None) -> None:
        """Mark a request verified (identity and scope checked) or refused (with the reason)."""
        self.allow(Action.HANDLE_RIGHTS)
        if status not in ("verified", "refused"):
            raise FacetraceError("a request can be marked verified or refused here; executing it closes it")
        if status == "refused" and not (note or "").strip():
            raise FacetraceError("a refusal needs its reason (--note)")
        with self.sessions.begin() as session:
            rights.move(rights.by_reference(session, reference), self.actor, status, note)
            audit.append(
                session, self.actor, Record(action=f"rights.{status}", case_ref=reference, purpose=note)
            )

    def execute_rights_request(self, reference: str) -> dict[str, Any]:
        """Answer a verified request: an access report, or erasure (and, for an objection, blocks on
        future collection). Returns what was produced; the request is closed."""
        self.allow(Action.HANDLE_RIGHTS)
        with self.sessions() as session:
            request = rights.by_reference(session, reference)
            if request.status != "verified":
                raise FacetraceError(f"{reference} is {request.status}: verify it first")
            kind, urls, faces = request.kind, list(request.urls), list(request.matched_face_ids)
            access = rights.access_report(session, request) if kind == "access" else None
        if access is not None:
            path = self.settings.data_dir / "rights" / f"{reference}-access.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(access, indent=2, ensure_ascii=False))
            produced: dict[str, Any] = {"access_report": str(path), "faces_held": access["faces_held"]}
        else:
            scope = ErasureScope(face_ids=tuple(self._existing_faces(faces)), locations=tuple(urls))
            produced = {"counts": "nothing held any more"}
            if not scope.is_empty():
                certificate = erasure.execute(
                    self.settings,
                    self.sessions,
                    self.actor,
                    self._plan(scope),
                    reason=f"rights request {reference}",
                )
                produced = {"certificate": certificate["certificate"], "counts": certificate["counts"]}
        with self.sessions.begin() as session:
            request = rights.by_reference(session, reference)
            if kind == "objection":
                produced["do_not_collect_entries"] = rights.block_urls(session, request)
            rights.move(request, self.actor, "done", json.dumps(produced))
            audit.append(
                session, self.actor, Record(action="rights.execute", case_ref=reference, details=produced)
            )
        return produced

    def _existing_faces(self, face_ids: list[int]) -> list[int]:
        """The faces of a request still in the gallery (some may have been erased since)."""
        with self.sessions() as session:
            return sorted(session.scalars(select(Face.id).where(Face.id.in_(face_ids)))) if face_ids else []

    def _plan(self, scope: ErasureScope) -> ErasurePlan:
        with self.sessions() as session:
            return erasure.plan(session, scope)

    def block_collection(self, *, url_prefix: str | None = None, domain: str | None = None) -> None:
        """Never collect from a URL prefix or a whole domain again (no face data needed)."""
        self.allow(Action.HANDLE_RIGHTS)
        if bool(url_prefix) == bool(domain):
            raise FacetraceError("give either a URL prefix or a domain")
        kind, value = ("url", url_prefix) if url_prefix else ("domain", (domain or "").lower().strip("."))
        with self.sessions.begin() as session:
            session.add(DoNotCollect(kind=kind, value=value))
            audit.append(session, self.actor, Record(action="rights.block", details={kind: value}))
