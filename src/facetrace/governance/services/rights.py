"""Data-subject requests and the do-not-collect list."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from facetrace.core.errors import FacetraceError, NoFaceError, NotFoundError
from facetrace.governance import access_reports, audit, erasure, rights
from facetrace.governance.audit import Record
from facetrace.governance.erasure import ErasurePlan, ErasureScope
from facetrace.governance.keyed_hashes import ErasureKey
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase
from facetrace.governance.services.erasure import ErasureService
from facetrace.store.base import utcnow
from facetrace.store.governance_models import DoNotCollect
from facetrace.store.governance_models import RightsRequest as RightsRequestRecord
from facetrace.vision.analyzer import FaceAnalyzer


@dataclass(frozen=True, slots=True)
class FiledRequest:
    """What the person who filed a request gets: its reference, and the secret code to follow it."""

    reference: str
    code: str


class RequestStatus(BaseModel):
    """What the person who filed a request may know of it: its status and dates."""

    model_config = ConfigDict(frozen=True)

    reference: str
    kind: str
    status: str
    received_at: str
    due_at: str

    @classmethod
    def of(cls, request: RightsRequestRecord) -> RequestStatus:
        return cls(
            reference=request.reference,
            kind=request.kind,
            status=request.status,
            received_at=request.received_at.isoformat(timespec="seconds"),
            due_at=request.due_at.isoformat(timespec="seconds"),
        )


class FiledStatus(RequestStatus):
    """A request's status as the portal tells it, and whether an access report awaits download."""

    report: bool


class Event(BaseModel):
    """One step of a request's history."""

    model_config = ConfigDict(frozen=True)

    at: str
    by: str
    status: str
    note: str | None


class RightsRequest(RequestStatus):
    """A request as the DPO's queue shows it: whether it is overdue, its history and outcome."""

    overdue: bool
    history: list[Event]
    outcome: str | None
    photo_matches: int = Field(description="Gallery faces the person's photo matched when it was filed.")
    report_until: str | None = Field(description="An access report is downloadable until then.")

    @classmethod
    def described(cls, request: RightsRequestRecord, now: datetime) -> RightsRequest:
        return cls(
            **RequestStatus.of(request).model_dump(),
            overdue=request.status in rights.OPEN and request.due_at < now,
            history=[
                Event(at=e.at.isoformat(timespec="seconds"), by=e.actor, status=e.status, note=e.note)
                for e in request.events
            ],
            outcome=request.outcome,
            photo_matches=len(request.matched_face_ids),  # for the DPO alone
            report_until=request.report_until.isoformat(timespec="seconds") if request.report_until else None,
        )


class Executed(BaseModel):
    """What executing a request produced: an access report, or an erasure's certificate and counts
    (and, for an objection, the blocks on collection). Only what it produced is set."""

    model_config = ConfigDict(frozen=True)

    access_report: str | None = None  # the report's file
    faces_held: int | None = None
    certificate: str | None = None
    counts: dict[str, int] | str | None = None  # what was deleted, or "nothing held any more"
    do_not_collect_entries: int | None = None
    templates_activated: int | None = None

    def as_json(self) -> dict[str, Any]:
        """As the request's outcome and its audit entry record it: what was not produced is left out."""
        return self.model_dump(exclude_none=True)


class RightsService(ServiceBase):
    """``gov.rights``: data-subject requests, from filing to execution; erasures go through ``erasure``."""

    def __init__(self, erasure: ErasureService) -> None:
        super().__init__(erasure.settings, erasure.sessions, erasure.actor)
        self.erasure = erasure

    def file(
        self,
        kind: str,
        *,
        urls: list[str],
        photo: bytes | None = None,
        analyzer: FaceAnalyzer | None = None,
        contact: str | None = None,
        consent_to_keep_template: bool = False,
    ) -> FiledRequest:
        """Record a request; a photo is matched in memory, and its template kept only for an
        objection with the person's explicit consent (to drop their face from future collection,
        once the request is verified and executed).

        Filed by the DPO for a person, or by the person through the public portal: the reference
        and its code are all that come back, never what the photo matched. Whether it matched
        anything decides nothing: a photo is refused only for what it is (not an image, no face,
        several faces), and the same search runs for every photo accepted.
        """
        self.allow(Action.FILE_RIGHTS_REQUEST)
        if kind not in rights.KINDS:
            raise FacetraceError(f"a request is one of {', '.join(rights.KINDS)}, not {kind!r}")
        matched: list[int] = []
        template = None
        if photo is not None:
            if analyzer is None:
                raise FacetraceError("matching a photo needs the face analyzer")
            try:
                matched, template = self.erasure.match_person(analyzer, photo, one_face=True)
            except NoFaceError as exc:
                raise NoFaceError(f"{exc}: send a photo that shows your face") from None
        keep_template = template if kind == "objection" and consent_to_keep_template else None
        with self.sessions.begin() as session:
            request, code = rights.file(
                session,
                self.actor,
                kind,
                urls=urls,
                with_photo=photo is not None,
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
            return FiledRequest(request.reference, code)

    def status(self, reference: str, code: str) -> FiledStatus:
        """What the person who filed a request may know of it, given its reference and code: its
        status and dates, and whether an access report is there to download."""
        self.allow(Action.FILE_RIGHTS_REQUEST)
        with self.sessions() as session:
            request = rights.by_reference_and_code(session, reference, code)
            status = RequestStatus.of(request).model_dump()
            return FiledStatus(**status, report=request.report_until is not None)

    def access_report(self, reference: str, code: str | None = None) -> bytes:
        """An access request's report (JSON): for the DPO by its reference; for the person who filed
        it, through the portal, with its code too. Every download is recorded."""
        if code is None:
            self.allow(Action.HANDLE_RIGHTS)
        else:
            self.allow(Action.FILE_RIGHTS_REQUEST)
        with self.sessions() as session:
            request = (
                rights.by_reference(session, reference)
                if code is None
                else rights.by_reference_and_code(session, reference, code)
            )
            reference, available = request.reference, request.report_until is not None
        report = access_reports.read(self.settings, reference) if available else None
        if report is None:
            raise NotFoundError(f"{reference} has no access report (none was made, or it was deleted)")
        self.record(Record(action="rights.report.download", case_ref=reference))
        return report

    def housekeeping(self) -> dict[str, int]:
        """Expire the requests left unverified past their deadline (their templates are deleted) and
        delete the access reports kept FACETRACE_RIGHTS_REPORT_DAYS; each is recorded. Runs when the
        DPO opens the queue and with every retention run."""
        self.allow(Action.HANDLE_RIGHTS)
        now = utcnow()
        done = {"requests_expired": 0, "templates_deleted": 0, "reports_deleted": 0}
        with self.sessions.begin() as session:
            for request in rights.unverified_past_deadline(session, now):
                rights.move(request, self.actor, "expired", "not verified by its deadline")
                templates = rights.delete_templates(session, request)
                done["requests_expired"] += 1
                done["templates_deleted"] += templates
                audit.append(
                    session,
                    self.actor,
                    Record(
                        action="rights.expire",
                        case_ref=request.reference,
                        details={"templates_deleted": templates},
                    ),
                )
            for request in rights.reports_past(session, now):
                deleted = access_reports.delete(self.settings, request.reference)
                request.report_until = None
                done["reports_deleted"] += 1
                audit.append(
                    session,
                    self.actor,
                    Record(
                        action="rights.report.delete",
                        case_ref=request.reference,
                        details={"file_deleted": deleted, "kept_days": self.settings.rights_report_days},
                    ),
                )
        if done["templates_deleted"]:
            erasure.scrub_sqlite(self.sessions)
        return done

    def queue(self, include_closed: bool = False) -> list[RightsRequest]:
        """The DPO's queue: overdue first (expired requests and old reports are dealt with first)."""
        self.allow(Action.HANDLE_RIGHTS)
        self.housekeeping()
        now = utcnow()
        with self.sessions() as session:
            return [RightsRequest.described(r, now) for r in rights.queue(session, include_closed)]

    def get(self, reference: str) -> RightsRequest:
        """One request as the queue shows it, with its history (for the DPO)."""
        self.allow(Action.HANDLE_RIGHTS)
        with self.sessions() as session:
            return RightsRequest.described(rights.by_reference(session, reference), utcnow())

    def move(self, reference: str, status: str, note: str | None) -> None:
        """Mark a request verified (identity and scope checked) or refused (with the reason)."""
        self.allow(Action.HANDLE_RIGHTS)
        if status not in ("verified", "refused"):
            raise FacetraceError("a request can be marked verified or refused here; executing it closes it")
        if status == "refused" and not (note or "").strip():
            raise FacetraceError("a refusal needs its reason (--note)")
        with self.sessions.begin() as session:
            request = rights.by_reference(session, reference)
            rights.move(request, self.actor, status, note)
            templates = rights.delete_templates(session, request) if status == "refused" else 0
            audit.append(
                session,
                self.actor,
                Record(
                    action=f"rights.{status}",
                    case_ref=reference,
                    purpose=note,
                    details={"templates_deleted": templates} if templates else None,
                ),
            )
        if templates:
            erasure.scrub_sqlite(self.sessions)

    def execute(self, reference: str) -> Executed:
        """Answer a verified request: an access report, or erasure (and, for an objection, blocks on
        future collection). Returns what was produced; the request is closed."""
        self.allow(Action.HANDLE_RIGHTS)
        with self.sessions.begin() as session:
            request = rights.by_reference(session, reference)
            if request.status not in ("verified", "in_progress"):
                raise FacetraceError(f"{reference} is {request.status}: verify it first")
            if request.status == "verified":  # a run cut short stays in progress and can be run again
                rights.move(request, self.actor, "in_progress", f"executing the {request.kind} request")
            kind, urls, faces = request.kind, list(request.urls), list(request.matched_face_ids)
            access = rights.access_report(session, request) if kind == "access" else None
        if access is not None:
            path = access_reports.write(self.settings, reference, access)
            produced = Executed(access_report=str(path), faces_held=access.faces_held)
        else:
            scope = self._erasure_scope(faces, urls)
            produced = Executed(counts="nothing held any more")
            if not scope.is_empty():
                certificate = erasure.execute(
                    self.settings,
                    self.sessions,
                    self.actor,
                    self.erasure.unchecked_plan(scope),
                    reason=f"rights request {reference}",
                )
                produced = Executed(certificate=certificate["certificate"], counts=certificate["counts"])
        with self.sessions.begin() as session:
            request = rights.by_reference(session, reference)
            if kind == "objection":
                produced = produced.model_copy(
                    update={
                        "do_not_collect_entries": rights.block_urls(session, request),
                        "templates_activated": rights.activate_templates(session, request),
                    }
                )
            if kind != "access":
                rights.forget_places(request, ErasureKey.of(self.settings))
            if access is not None:
                request.report_until = utcnow() + timedelta(days=self.settings.rights_report_days)
            outcome = produced.as_json()
            rights.move(request, self.actor, "done", json.dumps(outcome))
            audit.append(
                session, self.actor, Record(action="rights.execute", case_ref=reference, details=outcome)
            )
        if kind != "access":
            erasure.scrub_sqlite(self.sessions)  # the places the request named, in the write-ahead log
        return produced

    def plan(self, reference: str) -> ErasurePlan | None:
        """The dry run of an erasure or objection request: what executing it would delete now
        (None for an access request, which deletes nothing)."""
        self.allow(Action.HANDLE_RIGHTS)
        with self.sessions() as session:
            request = rights.by_reference(session, reference)
            kind, urls, faces = request.kind, list(request.urls), list(request.matched_face_ids)
        if kind == "access":
            return None
        scope = self._erasure_scope(faces, urls)
        return self.erasure.unchecked_plan(scope) if not scope.is_empty() else ErasurePlan(scope)

    def _erasure_scope(self, face_ids: list[int], urls: list[str]) -> ErasureScope:
        """What a request erases: the faces its photo matched that are still held, and its URLs."""
        return ErasureScope(face_ids=tuple(self.erasure.existing_faces(face_ids)), locations=tuple(urls))

    def block_collection(self, *, url_prefix: str | None = None, domain: str | None = None) -> None:
        """Never collect from a URL prefix or a whole domain again (no face data needed)."""
        self.allow(Action.HANDLE_RIGHTS)
        if bool(url_prefix) == bool(domain):
            raise FacetraceError("give either a URL prefix or a domain")
        kind, value = ("url", url_prefix) if url_prefix else ("domain", (domain or "").lower().strip("."))
        with self.sessions.begin() as session:
            session.add(DoNotCollect(kind=kind, value=value))
            audit.append(session, self.actor, Record(action="rights.block", details={kind: value}))
