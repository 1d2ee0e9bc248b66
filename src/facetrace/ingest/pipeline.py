"""Ingest: inputs → bytes + provenance → (new bytes only) analysis in workers → catalog → index.

Resumable by construction: an image is committed to the catalog, with its faces,
in one transaction soon after its analysis arrives, and images whose sha256 the
catalog already holds are not analysed again (their new sighting is recorded).
Killing an ingest at any point and running it again therefore neither
duplicates nor loses anything; the index catches up on open (see :mod:`facetrace.gallery.gallery`).

Reading the inputs (for a crawl: fetching them) and analysing them happen with no lock held.
Analysed images are stored in small batches, each under the gallery's write lock for its
commits and index additions only (:meth:`Gallery.writing`), and whatever is analysed is
stored before the next input is read, so a batch never waits on the network: an erasure
started during a crawl of a slow site waits for one batch, not for the crawl.

What the caller's :class:`~facetrace.ingest.collection_policy.CollectionPolicy` leaves out (the
do-not-collect list, erasures committed meanwhile) is never left out silently:
places not read and faces dropped are counted per rule, for the summary and the audit entry. An
image whose every face was dropped is not stored at all (neither its digest nor where it was
seen), so nothing marks it as ingested: a later ingest analyses it again, and collects it if the
template that dropped its faces is gone by then.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from filelock import FileLock
from sqlalchemy.orm import Session, sessionmaker

from facetrace.catalog import repository
from facetrace.catalog.repository import Place
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError, ModelMismatchError
from facetrace.gallery import near_duplicates
from facetrace.gallery.gallery import Gallery
from facetrace.ingest.collection_policy import CollectionPolicy, CollectionRules
from facetrace.ingest.inputs import FetchedImage, InputImage, InputProblem, expand_inputs
from facetrace.ingest.pool import Failure
from facetrace.ingest.worker import analysis_pool
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import Source
from facetrace.vision.analyzer import ImageAnalysis, Timings
from facetrace.vision.factory import build_embedder

INDEX_SAVE_INTERVAL_S = 30.0
#: An analysed image waits at most this long, with at most this many others, to be stored.
BATCH_MAX_SECONDS = 1.0
BATCH_MAX_IMAGES = 64


@dataclass(slots=True)
class IngestStats:
    """Running totals, handed to the progress callback after every image."""

    total: int = 0
    new_images: int = 0
    known_images: int = 0  # bytes already in the catalog: only the sighting is recorded
    faces: int = 0
    images_without_faces: int = 0
    skipped_do_not_collect: int = 0  # places on the do-not-collect list: not even read
    faces_dropped_do_not_collect: int = 0  # faces matching a do-not-collect template: not stored
    #: Places of analysed images whose every face was dropped: the image is not stored.
    withheld_do_not_collect: int = 0
    #: Which rule stopped what: "url" and "domain" count places not read, "template" faces dropped.
    do_not_collect_rules: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Images read before an erasure of them (their place or their bytes) and so not stored.
    erased_meanwhile: int = 0
    #: The index structure this ingest switched to on reaching FACETRACE_INDEX_COMPRESS_AT faces.
    index_rebuilt_as: str | None = None
    timings: Timings = field(default_factory=Timings)
    started: float = field(default_factory=time.perf_counter)

    @property
    def done(self) -> int:
        return (
            self.new_images
            + self.known_images
            + self.withheld_do_not_collect
            + self.erased_meanwhile
            + len(self.failures)
        )

    def do_not_collect_summary(self) -> dict[str, int]:
        """What the do-not-collect list stopped, for the ingest's audit entry."""
        return {
            "places_skipped_by_url": self.do_not_collect_rules.get("url", 0),
            "places_skipped_by_domain": self.do_not_collect_rules.get("domain", 0),
            "faces_dropped_by_template": self.do_not_collect_rules.get("template", 0),
            "images_not_stored": self.withheld_do_not_collect,
        }

    def count_do_not_collect(self, rule: str, n: int = 1) -> None:
        """``n`` more places or faces stopped by ``rule``."""
        if n:
            self.do_not_collect_rules[rule] = self.do_not_collect_rules.get(rule, 0) + n

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@dataclass(frozen=True, slots=True)
class _NewImage:
    sha256: str
    size_bytes: int
    place: Place


def ingest(settings: Settings, arguments: Sequence[str], **options: Any) -> IngestStats:
    """Ingest every image named by ``arguments`` (files, folders, list files, file:// URLs) into the
    gallery; ``options`` are those of :func:`ingest_items` (``source_name`` is required).

    This is the library below governance: it checks no role, records no audit entry and creates a
    source it does not know (for tests and benchmarks that build a gallery). Every interface goes
    through ``gov.sources.ingest_files`` instead, which refuses a source nobody registered."""
    items = list(expand_inputs(arguments, max_bytes=settings.max_image_bytes))
    return ingest_items(settings, items, total=len(items), **options)


def ingest_items(
    settings: Settings,
    items: Iterable[InputImage | InputProblem | FetchedImage],
    *,
    total: int = 0,
    policy: CollectionPolicy,
    source_name: str,
    jurisdiction: str | None = None,
    legal_basis: str | None = None,
    retention_days: int | None = None,
    workers: int | None = None,
    on_progress: Callable[[IngestStats], None] | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> IngestStats:
    """Ingest files or fetched bytes as they come (a crawl yields them lazily; ``total`` 0: unknown).

    ``sessions``: the caller's catalog engine (a crawl's frontier is kept there), so that one
    ingest does not open a second one."""
    embedder = build_embedder(settings)
    stats = IngestStats(total=total)
    report = on_progress or (lambda _stats: None)
    lock = Gallery.write_lock(settings)
    with lock:  # the index file is read while no other writer replaces it
        gallery = Gallery.open(settings, embedder.model_id, embedder.dim, sessions)
    with gallery.sessions() as session:
        source = repository.get_or_create_source(
            session,
            source_name,
            jurisdiction=jurisdiction,
            legal_basis=legal_basis,
            retention_days=retention_days,
        )
        rules = policy.rules_for(session, source, embedder.model_id, embedder.dim)
        session.commit()
    run = _IngestRun(gallery, lock, source, stats, report, rules, settings.near_duplicate_max_distance)
    try:
        pool = analysis_pool(
            settings,
            workers,
            thumbnails=True,
            engine=settings.ingest_engine,
            ray_address=settings.ray_address,
        )
        with pool:
            for job, result in pool.map(run.new_images(items)):
                run.collect(job, result)
        run.flush()
    finally:  # the index file gets whatever was committed, also when the ingest failed
        with gallery.writing(lock):
            gallery.save()
    with gallery.writing(lock):
        if gallery.compress_if_large(settings.index_compress_at):
            stats.index_rebuilt_as = gallery.index.kind
            gallery.save()
    return stats


class _IngestRun:
    """The state of one ingest: which bytes are in flight, the analysed images waiting to be
    stored, and when the index was last saved."""

    def __init__(
        self,
        gallery: Gallery,
        lock: FileLock,
        source: Source,
        stats: IngestStats,
        report: Callable[[IngestStats], None],
        rules: CollectionRules,
        max_distance: int,
    ) -> None:
        self.rules = rules
        self.max_distance = max_distance
        self.gallery = gallery
        self.lock = lock
        self.source = source
        self.stats = stats
        self.report = report
        self.in_flight: dict[str, list[Place]] = {}  # sha256 → further places with the same bytes
        self.last_save = time.monotonic()
        self.batch: list[tuple[_NewImage, ImageAnalysis | Failure]] = []
        self.batch_started = 0.0

    def new_images(
        self, items: Iterable[InputImage | InputProblem | FetchedImage]
    ) -> Iterator[tuple[_NewImage, bytes]]:
        """Read each input; yield only bytes never analysed before, record sightings of the rest."""
        for item in items:
            if isinstance(item, InputProblem):
                self._fail(item.location, item.message)
                continue
            rule = self.rules.blocks_place(item.location, item.page_url)
            if rule is not None:
                self.stats.skipped_do_not_collect += 1
                self.stats.count_do_not_collect(rule)
                self.report(self.stats)
                continue
            if isinstance(item, FetchedImage):
                data = item.data
            else:
                try:
                    data = item.read()  # O_NOFOLLOW within its folder, fstat, capped
                except OSError as exc:
                    self._fail(item.location, f"cannot read: {exc.strerror or exc}")
                    continue
            sha256 = hashlib.sha256(data).hexdigest()
            place = item.place if isinstance(item, FetchedImage) else Place(item.location, item.page_url)
            if sha256 in self.in_flight:
                self.in_flight[sha256].append(place)
            elif not self._record_known(sha256, [place]):
                self.in_flight[sha256] = []
                yield _NewImage(sha256, len(data), place), data
                self.flush()  # what is analysed is stored before the next input is awaited

    def collect(self, job: _NewImage, result: ImageAnalysis | Failure) -> None:
        """Queue one analysed image for the next batch; store the batch once it is full or old."""
        if not self.batch:
            self.batch_started = time.monotonic()
        self.batch.append((job, result))
        if len(self.batch) >= BATCH_MAX_IMAGES or time.monotonic() - self.batch_started >= BATCH_MAX_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Store the analysed images waiting, holding the write lock only for that."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        with self.gallery.writing(self.lock):
            with self.gallery.sessions() as session:
                self._refuse_if_blocked(session)
                self.rules.catch_up(session)
            for job, result in batch:
                self.store(job, result)
            if time.monotonic() - self.last_save > INDEX_SAVE_INTERVAL_S:
                self.gallery.save()
                self.last_save = time.monotonic()

    def _refuse_if_blocked(self, session: Session) -> None:
        """Stop storing once an erasure blocked the source (it is purged with the sightings it
        had then): what this ingest read since must not outlive it."""
        source = session.get(Source, self.source.id)
        if source is None or source.blocked_at is not None:
            raise FacetraceError(
                f"source {self.source.name!r} was blocked during this ingest: "
                "nothing more is collected from it"
            )

    def store(self, job: _NewImage, result: ImageAnalysis | Failure) -> None:
        """Commit one analysed image with its faces, then put the faces in the index (under the
        write lock: see :meth:`flush`)."""
        later_places = self.in_flight.pop(job.sha256, [])
        seen_at = [url for place in (job.place, *later_places) for url in (place.location, place.page_url)]
        if self.rules.covers(job.sha256, *seen_at):
            self.stats.erased_meanwhile += 1 + len(later_places)
            self.report(self.stats)
            return
        if isinstance(result, Failure):
            self._fail(job.place.location, result.message)
            for place in later_places:
                self._fail(place.location, result.message)
            return
        if result.model_id != self.gallery.model_id:
            raise ModelMismatchError(
                f"a worker embedded with {result.model_id}, the gallery holds {self.gallery.model_id}"
            )
        kept = [f for f in result.faces if not self.rules.blocks_face(f.embedding)]
        dropped = len(result.faces) - len(kept)
        self.stats.faces_dropped_do_not_collect += dropped
        self.stats.count_do_not_collect("template", dropped)
        if dropped and not kept:  # stored with no face, it would be skipped by its digest for good
            self.stats.withheld_do_not_collect += 1 + len(later_places)
            self.report(self.stats)
            return
        result = replace(result, faces=kept)
        with self.gallery.sessions() as session:
            faces = repository.add_analyzed_image(
                session,
                sha256=job.sha256,
                size_bytes=job.size_bytes,
                analysis=result,
                model_id=result.model_id,
                source=session.merge(self.source, load=False),
                place=job.place,
            )
            near_duplicates.link(session, self.gallery, faces, self.max_distance)
            session.commit()
        self.gallery.add(faces)
        self.stats.new_images += 1
        self.stats.faces += len(faces)
        self.stats.images_without_faces += not faces
        self.stats.timings.add(result.timings)
        if later_places:
            self._record_known(job.sha256, later_places)
        self.report(self.stats)

    def _record_known(self, sha256: str, places: list[Place]) -> bool:
        """Record sightings if the catalog already holds these bytes; False if it does not.

        Under the write lock (a moment, nothing else), so that no erasure deletes the image
        between reading it and recording where it was seen again."""
        with self.lock, self.gallery.sessions() as session:
            self._refuse_if_blocked(session)
            image = repository.image_by_sha256(session, sha256)
            if image is None:
                return False
            now = utcnow()
            source = session.merge(self.source, load=False)
            for place in places:
                repository.record_sighting(session, image, source, place, now)
            session.commit()
        self.stats.known_images += len(places)
        self.report(self.stats)
        return True

    def _fail(self, location: str, message: str) -> None:
        self.stats.failures.append((location, message))
        self.report(self.stats)
