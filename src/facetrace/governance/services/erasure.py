"""Erasure, purges and retention: dry runs and physical deletion."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from facetrace.core.errors import FacetraceError, NoFaceError, NotFoundError
from facetrace.gallery.gallery import Gallery
from facetrace.gallery.search import search_photo
from facetrace.governance import deployment_policy, erasure
from facetrace.governance.audit import Record
from facetrace.governance.erasure import ErasurePlan, ErasureScope
from facetrace.governance.keyed_hashes import ErasureKey
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase
from facetrace.store.catalog_models import Face
from facetrace.vision.analyzer import FaceAnalyzer

#: The certificate's lists of keyed places, and what finding a place in each means.
CHECKED_LISTS = (("locations", "erased"), ("face_removed_at", "face removed"))


class ErasureService(ServiceBase):
    """``gov.erasure``: dry runs, physical deletion and its certificates."""

    def faces_of_person(self, analyzer: FaceAnalyzer, photo: bytes) -> list[int]:
        """Gallery faces matching the largest face of ``photo`` above the strict subject threshold.

        The photo is analysed in memory and dropped; only the matching face ids come back.
        """
        self.allow(Action.ERASE)
        return self.match_person(analyzer, photo)[0]

    def match_person(
        self, analyzer: FaceAnalyzer, photo: bytes, *, one_face: bool = False
    ) -> tuple[list[int], bytes]:
        """(matching face ids, the photo's template as bytes); the photo itself is not kept. No role
        check: for the callers that made theirs (:meth:`faces_of_person`, a rights request).

        ``one_face``: refuse a photo that shows more than one face (whose would it be?)."""
        gallery = Gallery.for_search(self.settings, analyzer.model_id, analyzer.embedder.dim, self.sessions)
        settings = deployment_policy.applied(self.settings, self.deployment_policy())
        outcome = search_photo(settings, analyzer, photo, k=1000, gallery=gallery, merge_copies=False)
        if one_face and len(outcome.probe_faces) > 1:
            raise NoFaceError(
                f"the photo shows {len(outcome.probe_faces)} faces: send one that shows only yours"
            )
        matches = sorted(h.face.id for h in outcome.hits if h.score >= self.settings.subject_match_threshold)
        return matches, outcome.probe_faces[0].embedding.astype("float32").tobytes()

    def plan(self, scope: ErasureScope) -> ErasurePlan:
        """The dry run: what an erasure of ``scope`` would delete (recorded, as it reveals data)."""
        self.allow(Action.ERASE)
        result = self.unchecked_plan(scope)
        self.record(
            Record(action="data.erase.dry_run", result_count=len(result.face_ids), details=result.counts())
        )
        return result

    def erase(self, scope: ErasureScope, reason: str) -> dict[str, Any]:
        """Delete everything ``scope`` selects, physically; returns the deletion certificate."""
        self.allow(Action.ERASE)
        if len(reason.strip()) < 5:
            raise FacetraceError("an erasure needs its reason (--reason), e.g. the request reference")
        return erasure.execute(
            self.settings, self.sessions, self.actor, self.unchecked_plan(scope), reason=reason
        )

    def certificate(self, reference: str) -> dict[str, Any]:
        """A deletion certificate written by an earlier erasure, by its reference."""
        self.allow(Action.ERASE)
        return self._certificate(reference)

    def check(self, reference: str, place: str) -> str | None:
        """Whether the certificate ``reference`` covers ``place`` (a URL or file path, exactly as
        collected): "erased" (the images seen there were deleted), "face removed" (a face was
        deleted from the image seen there) or None. Recorded without the place."""
        self.allow(Action.ERASE)
        erased = self._certificate(reference).get("erased")
        if erased is None:
            raise FacetraceError(f"{reference} predates keyed hashes: it cannot be checked by URL")
        key = ErasureKey.of(self.settings)
        if erased["key_id"] != key.id:
            raise FacetraceError(
                f"{reference} was made with another erasure key (id {erased['key_id']}); this deployment's "
                f"key is {key.id}: restore the key it was made with (FACETRACE_ERASURE_HMAC_KEY_FILE)"
            )
        digest = key.hash(place)
        answer = next(
            (name for kind, name in CHECKED_LISTS if digest in erased[kind]),
            None,
        )
        self.record(
            Record(action="data.erase.check", case_ref=reference, details={"covered": answer or "no"})
        )
        return answer

    def _certificate(self, reference: str) -> dict[str, Any]:
        if not re.fullmatch(r"ERASURE-[0-9-]+", reference):
            raise NotFoundError(f"no certificate {reference!r}")
        path = erasure.certificate_path(self.settings, reference)
        if not path.is_file():
            raise NotFoundError(f"no certificate {reference!r}")
        document: dict[str, Any] = json.loads(path.read_text())  # as written, whatever its version
        return document

    def unchecked_plan(self, scope: ErasureScope) -> ErasurePlan:
        """What erasing ``scope`` deletes, with no role check or record (the caller makes both)."""
        with self.sessions() as session:
            return erasure.plan(session, scope)

    def existing_faces(self, face_ids: list[int]) -> list[int]:
        """The faces of a request still in the gallery (some may have been erased since)."""
        with self.sessions() as session:
            return sorted(session.scalars(select(Face.id).where(Face.id.in_(face_ids)))) if face_ids else []
