"""An ingest holds the gallery's write lock only to store a batch, never while it waits on the network.

A crawl of a site that trickles its bytes in therefore does not hold up an erasure, and what the
ingest saves afterwards never brings back what the erasure deleted, nor undoes a reindex. Runs
on SQLite and PostgreSQL (``gov_settings`` in support/catalogs.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from facetrace.catalog.repository import Place
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.gallery.gallery import Gallery
from facetrace.governance import erasure
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.service import Governance
from facetrace.index.faiss_files import open_faiss_index
from facetrace.index.kinds import IndexKind
from facetrace.ingest.inputs import FetchedImage
from facetrace.ingest.pipeline import IngestStats
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import Face, Sighting
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest, ingest_items
from support.photos import encode

#: How long the slow page takes unless the test lets it finish: far longer than any erasure may.
TRICKLE_BYTES = 80
TRICKLE_EVERY_S = 0.5


class TricklingSite:
    """A real HTTP server on 127.0.0.1 whose one page sends a byte every half second (40 s in
    all) until :attr:`finish` is set, then the rest at once; :attr:`asked` is set on the request."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.finish = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.asked.set()
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(TRICKLE_BYTES))
                self.end_headers()
                with suppress(BrokenPipeError, ConnectionResetError):
                    for sent in range(TRICKLE_BYTES):
                        if site.finish.wait(TRICKLE_EVERY_S):
                            self.wfile.write(b"x" * (TRICKLE_BYTES - sent))
                            return
                        self.wfile.write(b"x")
                        self.wfile.flush()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def trickling_site() -> Iterator[TricklingSite]:
    site = TricklingSite()
    threading.Thread(target=site.server.serve_forever, daemon=True).start()
    try:
        yield site
    finally:
        site.finish.set()
        site.server.shutdown()
        site.server.server_close()


def crawl_of(site: TricklingSite, before: bytes, after: bytes) -> Iterator[FetchedImage]:
    """What a crawl of ``site`` yields: an image, then (after its slow page has come in) another."""
    yield FetchedImage(Place(f"{site.url}/before.jpg", f"{site.url}/"), before)
    httpx.get(f"{site.url}/slow.html", timeout=120).raise_for_status()
    yield FetchedImage(Place(f"{site.url}/after.jpg", f"{site.url}/slow.html"), after)


def face_seen_at(gov: Governance, location: Path) -> tuple[int, bytes]:
    with gov.sessions() as session:
        seen_there = select(Sighting.image_id).where(Sighting.location == str(location))
        face = session.execute(select(Face).where(Face.image_id.in_(seen_there))).scalar_one()
        return face.id, face.embedding


def catalog_face_ids(gov: Governance) -> list[int]:
    with gov.sessions() as session:
        return sorted(session.scalars(select(Face.id)))


@pytest.fixture
def erased_later(gov_settings: Settings, tmp_path: Path, astronaut_rgb: np.ndarray) -> Path:
    """A photo already in the gallery (the mirrored astronaut), whose face the tests erase."""
    photo = tmp_path / "press" / "mirrored.jpg"
    photo.parent.mkdir()
    photo.write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95))
    ingest(gov_settings, [str(photo)], source_name="press")
    return photo


class SlowCrawl:
    """An ingest, in another thread, of a crawl waiting on a page that trickles in."""

    def __init__(self, site: TricklingSite) -> None:
        self.site = site
        self.stats: IngestStats | None = None  # once the ingest has ended


@contextmanager
def ingesting_a_slow_site(gov_settings: Settings, astronaut_rgb: np.ndarray) -> Iterator[SlowCrawl]:
    """Start the ingest of a crawl that reads an image, then waits on a page trickling in; yields
    once it waits, and lets the page finish (and the crawl read a second image) on leaving."""
    with trickling_site() as site, ThreadPoolExecutor(1) as background:
        crawl = crawl_of(
            site,
            encode(astronaut_rgb, "JPEG", quality=90),
            encode(astronaut_rgb, "JPEG", quality=70),
        )
        running = background.submit(ingest_items, gov_settings, crawl, source_name="site", workers=1)
        assert site.asked.wait(120), running.exception(0) if running.done() else "the crawl never asked"
        slow = SlowCrawl(site)
        yield slow
        site.finish.set()
        slow.stats = running.result(timeout=120)


def test_an_erasure_during_a_crawl_of_a_trickling_site_does_not_wait_for_it(
    gov_settings: Settings,
    operator: Governance,
    erased_later: Path,
    astronaut_rgb: np.ndarray,
    analyzer: FaceAnalyzer,
) -> None:
    erased_id, erased_bytes = face_seen_at(operator, erased_later)
    with ingesting_a_slow_site(gov_settings, astronaut_rgb) as crawl:
        started = time.monotonic()
        operator.erasure.erase(ErasureScope(face_ids=(erased_id,)), reason="request RR-11")
        took = time.monotonic() - started
    assert took < 5, f"the erasure waited {took:.1f} s for a crawl"
    assert crawl.stats is not None and (crawl.stats.new_images, crawl.stats.faces) == (2, 2)

    # The ingest held the erased face in memory; what it saved afterwards holds it no more.
    held = catalog_face_ids(operator)
    assert erased_id not in held and len(held) == 2
    index = open_faiss_index(gov_settings.index_dir, analyzer.model_id, analyzer.embedder.dim)
    assert sorted(index.ids().tolist()) == held
    assert not [p.name for p in gov_settings.index_dir.iterdir() if erased_bytes in p.read_bytes()]
    gallery = Gallery.open(gov_settings, analyzer.model_id, analyzer.embedder.dim)
    assert sorted(gallery.index.ids().tolist()) == held


@pytest.mark.slow
def test_a_reindex_during_a_crawl_is_kept_by_what_the_crawl_saves(
    gov_settings: Settings,
    operator: Governance,
    erased_later: Path,
    astronaut_rgb: np.ndarray,
    analyzer: FaceAnalyzer,
) -> None:
    with ingesting_a_slow_site(gov_settings, astronaut_rgb) as crawl:
        operator.gallery.reindex(IndexKind.IVF_PQ)  # the crawl's index in memory is still the flat one
    assert crawl.stats is not None and crawl.stats.faces == 2

    reindexed = Gallery.open(gov_settings, analyzer.model_id, analyzer.embedder.dim)
    assert reindexed.index.kind == "ivf-pq"
    assert sorted(reindexed.index.ids().tolist()) == catalog_face_ids(operator)


def test_a_crawl_stores_nothing_more_once_its_source_is_erased_and_blocked(
    gov_settings: Settings, operator: Governance, erased_later: Path, astronaut_rgb: np.ndarray
) -> None:
    blocked = pytest.raises(FacetraceError, match="'site' was blocked during this ingest")
    with blocked, ingesting_a_slow_site(gov_settings, astronaut_rgb):
        operator.erasure.erase(ErasureScope(sources=("site",)), reason="request RR-12")
    with operator.sessions() as session:  # what it had fetched and analysed was not stored
        assert not session.scalars(
            select(Sighting.location).where(Sighting.location.contains("127.0.0.1"))
        ).all()


def test_an_image_read_before_an_erasure_of_its_url_is_not_stored_after_it(
    gov_settings: Settings, operator: Governance, erased_later: Path, astronaut_rgb: np.ndarray
) -> None:
    with ingesting_a_slow_site(gov_settings, astronaut_rgb) as crawl:  # it has read before.jpg
        before = f"{crawl.site.url}/before.jpg"
        operator.erasure.erase(ErasureScope(locations=(before,)), reason="request RR-14")
    assert crawl.stats is not None
    assert (crawl.stats.new_images, crawl.stats.erased_meanwhile) == (1, 1)
    with operator.sessions() as session:
        crawled = session.scalars(select(Sighting.location).where(Sighting.location.contains("127.0.0.1")))
        assert crawled.all() == [f"{crawl.site.url}/after.jpg"]


def test_an_erasure_deletes_what_was_stored_between_its_dry_run_and_its_deletion(
    gov_settings: Settings, operator: Governance, tmp_path: Path, astronaut_rgb: np.ndarray
) -> None:
    photo = tmp_path / "late" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(encode(astronaut_rgb, "JPEG", quality=95))
    dry_run = operator.erasure.plan(ErasureScope(locations=(str(photo),)))
    assert dry_run.counts()["images"] == 0
    ingest(gov_settings, [str(photo)], source_name="late")  # an ingest stores a batch meanwhile

    certificate = erasure.execute(
        gov_settings, operator.sessions, operator.actor, dry_run, reason="request RR-15"
    )
    assert (certificate["counts"]["images"], certificate["counts"]["faces"]) == (1, 1)
    assert catalog_face_ids(operator) == []


def test_an_erasure_certificate_bears_the_time_of_the_deletion_not_of_the_request(
    gov_settings: Settings, operator: Governance, erased_later: Path
) -> None:
    erased_id, _ = face_seen_at(operator, erased_later)
    lock = Gallery.write_lock(gov_settings)
    with ThreadPoolExecutor(1) as background:
        with lock:  # another writer is storing a batch
            erasing = background.submit(
                operator.erasure.erase, ErasureScope(face_ids=(erased_id,)), reason="request RR-13"
            )
            time.sleep(0.5)  # the erasure has been asked for and waits
            released_at = utcnow()
        certificate = erasing.result(timeout=60)
    assert datetime.fromisoformat(certificate["executed_at"]) >= released_at
