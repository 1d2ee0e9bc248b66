"""What a search shows, declared once: the API's response model, the CLI's ``--json``, the web page's
results and the places an access report lists are these models.

:meth:`SearchResponse.of` turns a :class:`~facetrace.gallery.search.SearchOutcome` (gallery objects)
into them, and :meth:`Sighting.of` one sighting. Numbers are rounded here, once, for every reader.

One field differs with the reader: the API and the web page give each face a ``crop_url`` (they serve
its picture); the CLI, which serves none, says whether one is kept (``has_crop``, in the same place).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

if TYPE_CHECKING:
    from facetrace.gallery.gallery import Hit
    from facetrace.gallery.search import SearchOutcome
    from facetrace.store import catalog_models
    from facetrace.vision.types import AnalyzedFace

#: Where the picture of a face is served, from its id (None: a reader that serves none).
CropLink = Callable[[int], str]

CROP_DESCRIPTION = (
    "Where to get the face's picture (JPEG; only for users whose search returned it); null when none is kept."
)
#: The serialisation context of :meth:`SearchResponse.with_has_crop`.
_HAS_CROP = {"crop": "has_crop"}

#: Excluded from what is serialised (and from the API's schema) unless asked for by name, see
#: :class:`_FaceLead`. The default only serves FastAPI, which validates what a route returned again.
HasCrop = Annotated[bool, Field(default=False, exclude=True)]
CropUrl = Annotated[str | None, Field(description=CROP_DESCRIPTION)]


class Scope(BaseModel):
    """What the search was narrowed to (empty lists: the whole gallery). Results show only
    the sightings in scope."""

    sources: list[str]
    jurisdictions: list[str]


class ProbeFace(BaseModel):
    face: int
    box: list[float]
    det_score: float
    quality: float

    @classmethod
    def all_of(cls, faces: list[AnalyzedFace]) -> list[ProbeFace]:
        """The faces of a probe, numbered from 1 in the order given (largest first)."""
        return [
            cls(
                face=number,
                box=[round(v, 1) for v in f.detection.box],
                det_score=round(f.detection.score, 3),
                quality=round(f.quality, 3),
            )
            for number, f in enumerate(faces, start=1)
        ]


class Probe(BaseModel):
    sha256: str = Field(description="The probe's digest: the probe itself is never stored.")
    face_used: int
    faces: list[ProbeFace]


class Sighting(BaseModel):
    """Where and when an image was seen, and under which source."""

    location: str = Field(description="Where the image was found: its URL or path.")
    page_url: str | None
    page_title: str | None
    alt_text: str | None
    http_last_modified: str | None
    source: str
    legal_basis: str | None
    jurisdiction: str | None
    first_seen: str
    last_seen: str
    gone_at: str | None

    @classmethod
    def of(cls, sighting: catalog_models.Sighting) -> Sighting:
        source = sighting.source
        return cls(
            location=sighting.location,
            page_url=sighting.page_url,
            page_title=sighting.page_title,
            alt_text=sighting.alt_text,
            http_last_modified=sighting.http_last_modified,
            source=source.name,
            legal_basis=source.legal_basis,
            jurisdiction=source.jurisdiction,
            first_seen=sighting.first_seen.isoformat(),
            last_seen=sighting.last_seen.isoformat(),
            gone_at=sighting.gone_at.isoformat() if sighting.gone_at else None,
        )

    @classmethod
    def all_of(cls, image: catalog_models.Image) -> list[Sighting]:
        return [cls.of(sighting) for sighting in image.sightings]


class ResultImage(BaseModel):
    sha256: str
    width: int
    height: int
    first_seen: str
    last_seen: str


class CopyImage(BaseModel):
    """The copy's image: its digest and size."""

    sha256: str
    width: int
    height: int


class _FaceLead(BaseModel):
    """A face the search returned (a result, or a copy of one): its ``crop_url`` is serialised in
    place, or ``has_crop`` instead when the context asks for it (:meth:`SearchResponse.with_has_crop`)."""

    # No return annotation on purpose: pydantic would take it for the shape serialised, and the
    # API's schema would lose the model's fields.
    @model_serializer(mode="wrap")
    def _crop_field(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo):  # type: ignore[no-untyped-def]
        data: dict[str, Any] = handler(self)
        if info.context != _HAS_CROP:
            return data
        return {
            ("has_crop" if key == "crop_url" else key): (self.has_crop if key == "crop_url" else value)
            for key, value in data.items()
        }

    if TYPE_CHECKING:  # declared by each subclass, in its place among the fields
        has_crop: bool


def _crop_url(face: catalog_models.Face, crop_link: CropLink | None) -> str | None:
    return crop_link(face.id) if crop_link and face.has_crop else None


class NearDuplicate(_FaceLead):
    """The same face in a resized or re-encoded copy of the photo, seen elsewhere."""

    face_id: int
    has_crop: HasCrop
    crop_url: CropUrl
    score: float
    image: CopyImage
    sightings: list[Sighting]

    @classmethod
    def of(cls, copy: Hit, crop_link: CropLink | None = None) -> NearDuplicate:
        face, image = copy.face, copy.face.image
        return cls(
            face_id=face.id,
            has_crop=face.has_crop,
            crop_url=_crop_url(face, crop_link),
            score=round(copy.score, 4),
            image=CopyImage(sha256=image.sha256, width=image.width, height=image.height),
            sightings=Sighting.all_of(image),
        )


class SearchResult(_FaceLead):
    rank: int
    score: float
    expected_false_matches: float | None = Field(
        description="How many different people a gallery this size holds at this score (by the "
        "calibration; null when the model was never calibrated)."
    )
    face_id: int
    has_crop: HasCrop
    crop_url: CropUrl
    box: list[float]
    det_score: float
    quality: float
    image: ResultImage
    sightings: list[Sighting]
    near_duplicates: list[NearDuplicate] = Field(
        description="Copies of this photo (resized or re-encoded) with the places each was seen."
    )

    @classmethod
    def of(cls, hit: Hit, crop_link: CropLink | None = None) -> SearchResult:
        face, image = hit.face, hit.face.image
        efm = hit.expected_false_matches
        return cls(
            rank=hit.rank,
            score=round(hit.score, 4),
            expected_false_matches=None if efm is None else float(f"{efm:.3g}"),
            face_id=face.id,
            has_crop=face.has_crop,
            crop_url=_crop_url(face, crop_link),
            box=[round(v, 1) for v in face.box],
            det_score=round(face.det_score, 3),
            quality=round(face.quality, 3),
            image=ResultImage(
                sha256=image.sha256,
                width=image.width,
                height=image.height,
                first_seen=image.first_seen.isoformat(),
                last_seen=image.last_seen.isoformat(),
            ),
            sightings=Sighting.all_of(image),
            near_duplicates=[NearDuplicate.of(copy, crop_link) for copy in hit.copies],
        )


class SearchResponse(BaseModel):
    """A search's results and what it searched."""

    model: str
    gallery_size: int
    probe: Probe
    calibrated: bool
    hidden_as_too_weak: int
    scope: Scope
    results: list[SearchResult] = Field(description="Leads to check, not identifications; best first.")
    timings_ms: dict[str, float]

    @classmethod
    def of(cls, outcome: SearchOutcome, crop_link: CropLink | None = None) -> SearchResponse:
        """The results of ``outcome``; ``crop_link`` names where each face's picture is served."""
        return cls(
            model=outcome.model_id,
            gallery_size=outcome.gallery_size,
            probe=Probe(
                sha256=outcome.probe_sha256,
                face_used=outcome.face_used,
                faces=ProbeFace.all_of(outcome.probe_faces),
            ),
            calibrated=outcome.calibrated,
            hidden_as_too_weak=outcome.hidden,
            scope=Scope(sources=list(outcome.scope.sources), jurisdictions=list(outcome.scope.jurisdictions)),
            results=[SearchResult.of(hit, crop_link) for hit in outcome.hits],
            timings_ms=outcome.timings_ms,
        )

    def with_has_crop(self) -> dict[str, Any]:
        """As JSON data, each face saying whether a picture of it is kept (``has_crop``) where the
        API links it (``crop_url``): for a reader that serves no pictures, such as the CLI."""
        return self.model_dump(mode="json", context=_HAS_CROP)
