"""The crawl frontier: what is left to fetch. In memory for a one-off run, or in the catalog so a
crawl that is killed resumes where it stopped.

A page is marked done in the same transaction that queues its images and links, so a resumed
crawl never fetches a finished page again. An image is marked fetched once its bytes went to
the ingest pipeline; on resume, a fetched image whose bytes never reached the catalog (the
crawl died while it was being analysed) is queued again, so nothing is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Select, delete, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from facetrace.catalog import repository
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import CrawlItem, Sighting, Source


@dataclass(frozen=True, slots=True)
class Job:
    url: str
    depth: int
    page_url: str | None = None  # set for an image: the page it was on
    page_title: str | None = None
    alt: str | None = None

    @property
    def is_image(self) -> bool:
        return self.page_url is not None


class Frontier(Protocol):
    def start(self, seeds: Iterable[str]) -> bool:
        """Queue the seeds, or resume an unfinished crawl; True when resuming."""

    def next(self) -> Job | None: ...
    def add(self, jobs: list[Job], finished: Job) -> None:
        """Queue ``jobs`` (URLs already known are skipped) and mark the page ``finished`` done."""

    def fetched(self, job: Job) -> None: ...
    def validators(self, url: str) -> dict[str, str] | None:
        """Conditional-request headers for the source's image already stored from ``url``
        (empty when the server sent no ETag or Last-Modified); None when none is stored."""

    def seen_again(self, url: str) -> None:
        """The server says the source's image at ``url`` did not change: update its last_seen."""

    def finish(self) -> int:
        """The crawl went through; returns how many images it found gone from the source."""


class MemoryFrontier:
    def __init__(self) -> None:
        self._queue: deque[Job] = deque()
        self._known: set[str] = set()

    def start(self, seeds: Iterable[str]) -> bool:
        self.add([Job(url, 0) for url in seeds], finished=None)
        return False

    def next(self) -> Job | None:
        return self._queue.popleft() if self._queue else None

    def add(self, jobs: list[Job], finished: Job | None) -> None:
        for job in jobs:
            if job.url not in self._known:
                self._known.add(job.url)
                self._queue.append(job)

    def fetched(self, job: Job) -> None:
        pass

    def validators(self, url: str) -> dict[str, str] | None:
        return None

    def seen_again(self, url: str) -> None:
        pass

    def finish(self) -> int:
        return 0


class CatalogFrontier:
    """The frontier as rows of ``crawl_items`` for one source."""

    def __init__(self, sessions: sessionmaker[Session], source_id: int) -> None:
        self.sessions = sessions
        self.source_id = source_id

    def _items(self) -> Select[CrawlItem]:
        return select(CrawlItem).where(CrawlItem.source_id == self.source_id)

    def start(self, seeds: Iterable[str]) -> bool:
        with self.sessions.begin() as session:
            stored = exists().where(Sighting.source_id == self.source_id, Sighting.location == CrawlItem.url)
            session.execute(  # fetched but never stored: the crawl died while it was analysed
                update(CrawlItem)
                .where(CrawlItem.source_id == self.source_id, CrawlItem.status == "fetched", ~stored)
                .values(status="pending")
            )
            pending = session.scalar(self._items().where(CrawlItem.status == "pending").limit(1))
            if pending is not None:
                return True
            session.execute(delete(CrawlItem).where(CrawlItem.source_id == self.source_id))
            session.execute(
                update(Source).where(Source.id == self.source_id).values(crawl_started_at=utcnow())
            )
            session.add_all(
                CrawlItem(source_id=self.source_id, url=url, depth=0) for url in dict.fromkeys(seeds)
            )
        return False

    def next(self) -> Job | None:
        with self.sessions() as session:
            item = session.scalar(
                self._items().where(CrawlItem.status == "pending").order_by(CrawlItem.id).limit(1)
            )
            if item is None:
                return None
            return Job(item.url, item.depth, item.page_url, item.page_title, item.alt)

    def add(self, jobs: list[Job], finished: Job) -> None:
        with self.sessions.begin() as session:
            urls = [job.url for job in jobs]
            known = (
                set(
                    session.scalars(
                        select(CrawlItem.url).where(
                            CrawlItem.source_id == self.source_id, CrawlItem.url.in_(urls)
                        )
                    )
                )
                if urls
                else set()
            )
            for job in jobs:
                if job.url not in known:
                    known.add(job.url)
                    session.add(
                        CrawlItem(
                            source_id=self.source_id,
                            url=job.url,
                            depth=job.depth,
                            page_url=job.page_url,
                            page_title=job.page_title,
                            alt=job.alt,
                        )
                    )
            self._mark(session, finished, "done")

    def fetched(self, job: Job) -> None:
        with self.sessions.begin() as session:
            self._mark(session, job, "fetched" if job.is_image else "done")

    def _mark(self, session: Session, job: Job, status: str) -> None:
        session.execute(
            update(CrawlItem)
            .where(CrawlItem.source_id == self.source_id, CrawlItem.url == job.url)
            .values(status=status)
        )

    def _current_sighting(self, session: Session, url: str) -> Sighting | None:
        """The sighting of what the source's ``url`` showed last (older ones are marked gone)."""
        return session.scalar(
            select(Sighting)
            .where(Sighting.source_id == self.source_id, Sighting.location == url)
            .order_by(Sighting.gone_at.is_not(None), Sighting.last_seen.desc())
            .limit(1)
        )

    def validators(self, url: str) -> dict[str, str] | None:
        with self.sessions() as session:
            sighting = self._current_sighting(session, url)
            if sighting is None:
                return None
            headers = {}
            if sighting.http_etag:
                headers["if-none-match"] = sighting.http_etag
            if sighting.http_last_modified:
                headers["if-modified-since"] = sighting.http_last_modified
            return headers

    def seen_again(self, url: str) -> None:
        with self.sessions.begin() as session:
            sighting = self._current_sighting(session, url)
            if sighting is not None:
                repository.mark_seen(sighting, utcnow())

    def finish(self) -> int:
        """The crawl went through: what it did not see again is gone; the next crawl starts from the seeds."""
        with self.sessions.begin() as session:
            started = session.scalar(select(Source.crawl_started_at).where(Source.id == self.source_id))
            gone: int | None = 0
            if started:
                session.execute(
                    update(Sighting)
                    .where(
                        Sighting.source_id == self.source_id,
                        Sighting.gone_at.is_(None),
                        Sighting.last_seen < started,
                    )
                    .values(gone_at=utcnow())
                )
                # Also counts what was replaced by other bytes at the same URL during the crawl.
                gone = session.scalar(
                    select(func.count(Sighting.id)).where(
                        Sighting.source_id == self.source_id, Sighting.gone_at >= started
                    )
                )
            session.execute(delete(CrawlItem).where(CrawlItem.source_id == self.source_id))
            session.execute(update(Source).where(Source.id == self.source_id).values(crawl_started_at=None))
        return int(gone or 0)
