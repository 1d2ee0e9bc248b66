"""Searches with a purpose, an authorisation check, quotas and a record; calibration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from facetrace.catalog.scope import EVERYWHERE, SearchScope
from facetrace.core.errors import (
    AuditWriteError,
    AuthorisationError,
    FacetraceError,
    NotFoundError,
    PurposeError,
    QuotaError,
)
from facetrace.evaluation.calibration import calibrate_folder
from facetrace.gallery import calibration
from facetrace.gallery.gallery import Gallery
from facetrace.gallery.results import ProbeFace
from facetrace.gallery.search import SearchOutcome, faces_largest_first, search_photo
from facetrace.governance import audit, authorisations, deployment_policy, quotas, reports
from facetrace.governance.audit import Record
from facetrace.governance.deployment_policy import DeploymentPolicy
from facetrace.governance.roles import Action
from facetrace.governance.searches import Purpose, search_record
from facetrace.governance.services.base import ServiceBase
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import FaceCrop, Source
from facetrace.store.governance_models import CaseResult
from facetrace.vision.analyzer import FaceAnalyzer


class SearchService(ServiceBase):
    """``gov.searches``: searches with a purpose, their records, calibration."""

    def search(
        self,
        analyzer: FaceAnalyzer,
        probe: bytes,
        purpose: Purpose,
        *,
        k: int,
        face: int = 1,
        min_score: float | None = None,
        scope: SearchScope = EVERYWHERE,
    ) -> SearchOutcome:
        """Search for ``purpose`` within ``scope``; every attempt, refused or not, leaves an audit
        entry, which names the scope of a narrowed search.

        The entry of a search that ran (and the results kept for the case) is committed
        after the gallery was searched and before anything is returned: if it cannot be
        written, there are no results.
        """
        authorisation_id, policy = self._admit_search(purpose, probe)
        gallery = Gallery.for_search(self.settings, analyzer.model_id, analyzer.embedder.dim, self.sessions)
        try:
            outcome = search_photo(
                deployment_policy.applied(self.settings, policy),
                analyzer,
                probe,
                k=k,
                face=face,
                min_score=min_score,
                gallery=gallery,
                scope=scope,
            )
        except FacetraceError as exc:  # no face, not an image, too large...: an attempt all the same
            self.record(search_record(purpose, probe, "failed", details={"error": str(exc)}))
            raise
        face_ids = [face_id for hit in outcome.hits for face_id in hit.face_ids]
        entry = search_record(
            purpose,
            probe,
            "done",
            result_count=len(face_ids),
            result_face_ids=face_ids,
            details={
                "k": k,
                "face": face,
                "min_score": min_score,
                "gallery_size": outcome.gallery_size,
                **scope.audit_details(),
            },
        )
        kept = [
            {"face_id": h.face.id, "score": round(h.score, 4), "false_matches": h.expected_false_matches}
            for hit in outcome.hits
            for h in (hit, *hit.copies)
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

    def scope_choices(self) -> dict[str, list[str]]:
        """The sources and jurisdictions a search may be narrowed to (blocked sources show nothing,
        so they are not offered)."""
        self.allow(Action.SEARCH)
        with self.sessions() as session:
            sources = list(
                session.scalars(select(Source).where(Source.blocked_at.is_(None)).order_by(Source.name))
            )
        return {
            "sources": [source.name for source in sources],
            "jurisdictions": sorted(
                {source.jurisdiction.upper() for source in sources if source.jurisdiction}
            ),
        }

    def probe_faces(self, analyzer: FaceAnalyzer, probe: bytes) -> list[ProbeFace]:
        """The faces in a probe photo, largest first, so the user can pick one before searching.

        Nothing is compared with the gallery and nothing is kept, so nothing is recorded.
        """
        self.allow(Action.SEARCH)
        return ProbeFace.all_of(faces_largest_first(analyzer, probe))

    def face_crop(self, face_id: int) -> bytes:
        """The JPEG of a gallery face, for the user one of whose searches returned that face.

        Not a way to browse the gallery: a face id no live case result of the acting user names
        is answered as if it did not exist. Results withdrawn with a refused authorisation take
        their crops with them, and an erased face has none. Showing the crop of a lead is part
        of the search already recorded, so it adds no audit entry.
        """
        self.allow(Action.SEARCH)
        with self.sessions() as session:
            kept = session.scalars(
                select(CaseResult.results)
                .where(CaseResult.user_name == self.actor.name, CaseResult.deleted_at.is_(None))
                .order_by(CaseResult.id.desc())  # a crop is asked for right after its search
            )
            returned = any(face_id == result["face_id"] for results in kept for result in results or ())
            crop = select(FaceCrop.jpeg).where(FaceCrop.face_id == face_id)
            jpeg = session.scalar(crop) if returned else None
        if jpeg is None:
            raise NotFoundError(f"no crop of face {face_id} among the results of your searches")
        return jpeg

    def mine(self, limit: int = 100) -> list[dict[str, Any]]:
        """The acting user's own searches with their purposes, newest first (never a probe)."""
        self.allow(Action.SEARCH)
        with self.sessions() as session:
            return reports.recent(session, actions=(Action.SEARCH.value,), user=self.actor.name, limit=limit)

    def test(
        self,
        analyzer: FaceAnalyzer,
        probe: bytes,
        *,
        k: int,
        face: int = 1,
        min_score: float | None = None,
        scope: SearchScope = EVERYWHERE,
    ) -> SearchOutcome:
        """Try the search on the demo gallery only, never the real one; recorded as a test.

        So that nobody "tries it out" on colleagues' photos against the production gallery.
        """
        self.allow(Action.SEARCH)
        demo = deployment_policy.applied(self.settings.demo(), self.deployment_policy())
        gallery = Gallery.open(demo, analyzer.model_id, analyzer.embedder.dim)
        if len(gallery.index) == 0:
            raise FacetraceError(
                "the demo gallery is empty: an admin fills it with 'facetrace ingest PATH -s NAME --demo'"
            )
        outcome = search_photo(
            demo, analyzer, probe, k=k, face=face, min_score=min_score, gallery=gallery, scope=scope
        )
        self.record(
            Record(
                action="search.test",
                probe_sha256=outcome.probe_sha256,
                result_count=len(outcome.hits),
                details={
                    "gallery": "demo",
                    "gallery_size": outcome.gallery_size,
                    **scope.audit_details(),
                },
            )
        )
        return outcome

    def _admit_search(self, purpose: Purpose, probe: bytes) -> tuple[int | None, DeploymentPolicy]:
        """Role, purpose, quota and authorisation checks under the deployment's policy; each refusal
        is recorded. Returns the id of the authorisation the search relies on, if any, and the policy."""
        self.allow(Action.SEARCH)

        def refuse(error: type[FacetraceError], message: str, reason: str) -> NoReturn:
            self.record(search_record(purpose, probe, "refused", details={reason: message}))
            raise error(message + ". The refusal was recorded.")

        policy = self.deployment_policy()
        missing = purpose.problems(policy.offence_categories)
        if missing:
            refuse(PurposeError, "a search needs " + "; ".join(missing), "missing")
        with self.sessions() as session:
            used = quotas.usage(session, self.actor, utcnow())
            try:
                authorisation = authorisations.check_for_search(
                    session, self.actor, policy, purpose.case_ref or "", purpose.authorisation_ref
                )
            except AuthorisationError as exc:
                refuse(AuthorisationError, str(exc), "authorisation")
        refusal = quotas.over_quota(policy, used)
        if refusal:
            refuse(QuotaError, refusal, "quota")
        if quotas.is_burst(policy, used):
            limit = policy.burst_searches_per_hour
            self.record(
                Record(
                    action="alarm.burst",
                    outcome="flagged",
                    case_ref=purpose.case_ref,
                    details={"searches_last_hour": used.last_hour + 1, "limit": limit},
                )
            )
        return (authorisation.id if authorisation else None), policy

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
            result = calibrate_folder(
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
