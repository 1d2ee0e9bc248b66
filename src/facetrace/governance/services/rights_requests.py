"""Data-subject requests and the do-not-collect list."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from facetrace.catalog.models import utcnow
from facetrace.errors import FacetraceError
from facetrace.governance import audit, erasure, rights
from facetrace.governance.audit import Record
from facetrace.governance.erasure import ErasurePlan, ErasureScope
from facetrace.governance.models import DoNotCollect, RightsRequest
from facetrace.governance.roles import Action
from facetrace.governance.services.erasing import ErasureService
from facetrace.vision.analyzer import FaceAnalyzer


class RightsService(ErasureService):
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
        objection with the person's explicit consent (to drop their face from future collection).

        Filed by the DPO for a person, or by the person through the public portal: the reference
        is all that comes back, never what the photo matched.
        """
        self.allow(Action.FILE_RIGHTS_REQUEST)
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

    def rights_request_status(self, reference: str) -> dict[str, str]:
        """What the person who filed a request may know of it: its status and deadline."""
        self.allow(Action.FILE_RIGHTS_REQUEST)
        with self.sessions() as session:
            return _status(rights.by_reference(session, reference))

    def rights_queue(self, include_closed: bool = False) -> list[dict[str, Any]]:
        """The DPO's queue: overdue first."""
        self.allow(Action.HANDLE_RIGHTS)
        now = utcnow()
        with self.sessions() as session:
            return [_described(r, now) for r in rights.queue(session, include_closed)]

    def rights_request(self, reference: str) -> dict[str, Any]:
        """One request as the queue shows it, with its history (for the DPO)."""
        self.allow(Action.HANDLE_RIGHTS)
        with self.sessions() as session:
            return _described(rights.by_reference(session, reference), utcnow())

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
        with self.sessions.begin() as session:
            request = rights.by_reference(session, reference)
            if request.status not in ("verified", "in_progress"):
                raise FacetraceError(f"{reference} is {request.status}: verify it first")
            if request.status == "verified":  # a run cut short stays in progress and can be run again
                rights.move(request, self.actor, "in_progress", f"executing the {request.kind} request")
            kind, urls, faces = request.kind, list(request.urls), list(request.matched_face_ids)
            access = rights.access_report(session, request) if kind == "access" else None
        if access is not None:
            path = self.settings.data_dir / "rights" / f"{reference}-access.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(access, indent=2, ensure_ascii=False))
            produced: dict[str, Any] = {"access_report": str(path), "faces_held": access["faces_held"]}
        else:
            scope = self._erasure_scope(faces, urls)
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

    def rights_request_plan(self, reference: str) -> ErasurePlan | None:
        """The dry run of an erasure or objection request: what executing it would delete now
        (None for an access request, which deletes nothing)."""
        self.allow(Action.HANDLE_RIGHTS)
        with self.sessions() as session:
            request = rights.by_reference(session, reference)
            kind, urls, faces = request.kind, list(request.urls), list(request.matched_face_ids)
        if kind == "access":
            return None
        scope = self._erasure_scope(faces, urls)
        return self._plan(scope) if not scope.is_empty() else ErasurePlan(scope)

    def _erasure_scope(self, face_ids: list[int], urls: list[str]) -> ErasureScope:
        """What a request erases: the faces its photo matched that are still held, and its URLs."""
        return ErasureScope(face_ids=tuple(self._existing_faces(face_ids)), locations=tuple(urls))

    def block_collection(self, *, url_prefix: str | None = None, domain: str | None = None) -> None:
        """Never collect from a URL prefix or a whole domain again (no face data needed)."""
        self.allow(Action.HANDLE_RIGHTS)
        if bool(url_prefix) == bool(domain):
            raise FacetraceError("give either a URL prefix or a domain")
        kind, value = ("url", url_prefix) if url_prefix else ("domain", (domain or "").lower().strip("."))
        with self.sessions.begin() as session:
            session.add(DoNotCollect(kind=kind, value=value))
            audit.append(session, self.actor, Record(action="rights.block", details={kind: value}))


def _status(request: RightsRequest) -> dict[str, str]:
    return {
        "reference": request.reference,
        "kind": request.kind,
        "status": request.status,
        "received_at": request.received_at.isoformat(timespec="seconds"),
        "due_at": request.due_at.isoformat(timespec="seconds"),
    }


def _described(request: RightsRequest, now: datetime) -> dict[str, Any]:
    """A request's status, whether it is overdue, its history and outcome."""
    return {
        **_status(request),
        "overdue": request.status in rights.OPEN and request.due_at < now,
        "history": [
            {"at": e.at.isoformat(timespec="seconds"), "by": e.actor, "status": e.status, "note": e.note}
            for e in request.events
        ],
        "outcome": request.outcome,
    }
