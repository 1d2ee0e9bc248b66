"""A polite, targeted crawler: only a registered source's allowed hosts and paths, robots rules kept.

It honours robots.txt (protego) with its Crawl-delay, ``<meta name="robots">`` and the
``X-Robots-Tag`` header (``noindex``, ``noimageindex``, ``noai``, ``noimageai`` keep a page's
images out; ``nofollow`` stops its links), waits between requests to a host, retries 429 and
5xx with backoff, and checks sizes and content types. It never logs in, never follows a link
outside the source, and names itself and its operator in the User-Agent.

It yields what it fetched as :class:`FetchedImage` (or :class:`InputProblem` for a broken
one) for the ingest pipeline, which dedupes, analyses and stores them with their page URL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx
from protego import Protego

from facetrace.catalog.repository import Place
from facetrace.collect.frontier import Frontier, Job, MemoryFrontier
from facetrace.collect.pages import NO_IMAGES, parse_page, robots_directives
from facetrace.collect.sitemaps import SitemapError, looks_like_sitemap, parse_sitemap
from facetrace.collect.sources import within
from facetrace.ingest.inputs import FetchedImage, InputProblem

RETRIES = 3
MAX_RETRY_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class CrawlPlan:
    """What one crawl may do: from the source's registration and the command line."""

    seeds: tuple[str, ...]
    allowed: tuple[str, ...]
    follow_links: bool  # a "website" source follows links; a "urls" source fetches its seeds only
    read_sitemaps: bool  # a "sitemap" source fetches the pages (and images) its sitemaps list
    max_pages: int
    max_depth: int
    rate_per_s: float
    user_agent: str
    max_page_bytes: int
    max_image_bytes: int


@dataclass(slots=True)
class CrawlStats:
    pages: int = 0
    images: int = 0
    refused_by_robots: int = 0
    images_withheld_by_page: int = 0  # noimageai / noimageindex / noindex
    sitemaps: int = 0
    resumed: bool = False  # an interrupted crawl picked up where it stopped
    completed: bool = False  # the frontier ran out (not stopped by the page limit)
    stopped: bool = False  # asked to stop (``should_stop``) before that: the rest stays queued
    images_unchanged: int = 0  # stored before, and the server answered 304: last_seen updated
    images_refetched: int = 0  # stored before, fetched again (changed, or the server cannot say)
    gone: int = 0  # sightings of the source this complete crawl did not find again
    errors: list[tuple[str, str]] = field(default_factory=list)


class _NotFetchedError(Exception):
    """A URL not fetched: outside the source, disallowed, too large, wrong type, or failing."""


class Crawler:
    def __init__(
        self,
        plan: CrawlPlan,
        client: httpx.Client,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        frontier: Frontier | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """``should_stop`` is asked before each URL: when it says so, the crawl ends there as at the
        page limit, and a crawl on a catalog frontier resumes from that point next time."""
        self.plan = plan
        self.frontier: Frontier = frontier or MemoryFrontier()
        self.client = client
        self.sleep = sleep
        self.clock = clock
        self.should_stop = should_stop
        self.stats = CrawlStats()
        self._robots: dict[str, Protego | None] = {}
        self._next_request: dict[str, float] = {}

    def run(self) -> Iterator[FetchedImage | InputProblem]:
        self.stats.resumed = self.frontier.start(self.plan.seeds)
        while True:
            if self.should_stop():
                self.stats.stopped = True
                return
            job = self.frontier.next()
            if job is None:
                self.stats.completed = True
                self.stats.gone = self.frontier.finish()
                return
            if not job.is_image and self.stats.pages >= self.plan.max_pages:
                return  # the page limit: what is left stays queued for the next run
            if job.is_image:
                yield from self._fetch_image(job)
                self.frontier.fetched(job)
                continue
            try:
                response = self._get(job.url, accept=self._page_types, limit=self.plan.max_page_bytes)
            except _NotFetchedError as refused:
                self.stats.errors.append((job.url, str(refused)))
                self.frontier.fetched(job)
                continue
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("image/"):  # a "urls" source may list images directly
                yield from self._image_from(job.url, None, response, alt=None)
                self.frontier.fetched(job)
                continue
            if self.plan.read_sitemaps and looks_like_sitemap(content_type, response.content):
                self.frontier.add(self._jobs_in_sitemap(job, response), finished=job)
                continue
            if not content_type.startswith(("text/html", "application/xhtml")):
                self.stats.errors.append((job.url, f"not a page ({content_type or 'no content type'})"))
                self.frontier.fetched(job)
                continue
            self.stats.pages += 1
            self.frontier.add(self._jobs_on(job, response), finished=job)

    def _jobs_on(self, job: Job, response: httpx.Response) -> list[Job]:
        """The page's images (unless its robots rules withhold them), then its links to follow."""
        page = parse_page(str(response.url), response.text, response.headers.get("x-robots-tag"))
        jobs = []
        if page.images_allowed:
            jobs += [Job(image.url, job.depth, page.url, page.title, image.alt) for image in page.images]
        else:
            self.stats.images_withheld_by_page += len(page.images)
        if self.plan.follow_links and page.follow_allowed and job.depth < self.plan.max_depth:
            jobs += [Job(link, job.depth + 1) for link in page.links]
        return jobs

    def _jobs_in_sitemap(self, job: Job, response: httpx.Response) -> list[Job]:
        """What a sitemap lists: further sitemaps, pages, and images with the page they are on."""
        try:
            sitemap = parse_sitemap(str(response.url), response.content, limit=self.plan.max_page_bytes)
        except SitemapError as broken:
            self.stats.errors.append((job.url, str(broken)))
            return []
        self.stats.sitemaps += 1
        if job.depth >= self.plan.max_depth:
            return []
        depth = job.depth + 1
        return [
            *(Job(url, depth) for url in sitemap.sitemaps + sitemap.pages),
            *(Job(image, depth, page_url=page) for page, image in sitemap.images),
        ]

    def _fetch_image(self, job: Job) -> Iterator[FetchedImage | InputProblem]:
        """Fetch an image; one stored from an earlier crawl is asked for only if it changed since."""
        validators = self.frontier.validators(job.url)
        try:
            response = self._get(
                job.url, accept="image/*", limit=self.plan.max_image_bytes, conditions=validators or {}
            )
        except _NotFetchedError as refused:
            self.stats.errors.append((job.url, str(refused)))
            return
        if response.status_code == 304:
            self.frontier.seen_again(job.url)
            self.stats.images_unchanged += 1
            return
        self.stats.images_refetched += validators is not None
        yield from self._image_from(job.url, job, response, alt=job.alt)

    def _image_from(
        self, url: str, job: Job | None, response: httpx.Response, *, alt: str | None
    ) -> Iterator[FetchedImage | InputProblem]:
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("image/"):
            self.stats.errors.append((url, f"not an image ({content_type or 'no content type'})"))
            return
        if robots_directives(response.headers.get("x-robots-tag")) & NO_IMAGES:
            self.stats.images_withheld_by_page += 1
            return
        self.stats.images += 1
        place = Place(
            location=str(response.url),
            page_url=job.page_url if job else None,
            page_title=job.page_title if job else None,
            alt_text=alt,
            http_last_modified=response.headers.get("last-modified"),
            http_etag=response.headers.get("etag"),
        )
        yield FetchedImage(place, response.content)

    @property
    def _page_types(self) -> str:
        return "text/html, application/xml;q=0.9" if self.plan.read_sitemaps else "text/html"

    # Politeness.

    def _allowed(self, url: str) -> bool:
        return within(url, self.plan.allowed)

    def _robots_for(self, url: str) -> Protego | None:
        """The host's robots.txt (None: none published, so everything is allowed)."""
        parsed = urlparse(url)
        origin = f"{parsed.scheme}://{parsed.netloc}"
        if origin not in self._robots:
            self._wait(origin)
            try:
                response = self.client.get(
                    f"{origin}/robots.txt", headers={"user-agent": self.plan.user_agent}
                )
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                self._robots[origin] = Protego.parse(response.text)
            elif response is not None and 400 <= response.status_code < 500:
                self._robots[origin] = None
            else:  # unreachable or a server error: assume everything is disallowed (RFC 9309)
                self._robots[origin] = Protego.parse("User-agent: *\nDisallow: /")
        return self._robots[origin]

    def _delay(self, origin: str) -> float:
        robots = self._robots.get(origin)
        crawl_delay = robots.crawl_delay(self.plan.user_agent) if robots else None
        return max(1.0 / self.plan.rate_per_s, float(crawl_delay or 0))

    def _wait(self, origin: str) -> None:
        now = self.clock()
        ready = self._next_request.get(origin, now)
        if ready > now:
            self.sleep(ready - now)
        self._next_request[origin] = max(ready, now) + self._delay(origin)

    def _get(
        self, url: str, *, accept: str, limit: int, conditions: dict[str, str] | None = None
    ) -> httpx.Response:
        """GET within the source and robots rules: a 200, or a 304 when ``conditions`` say unchanged."""
        if not self._allowed(url):
            raise _NotFetchedError("outside the source's allowed hosts/paths")
        robots = self._robots_for(url)
        if robots is not None and not robots.can_fetch(url, self.plan.user_agent):
            self.stats.refused_by_robots += 1
            raise _NotFetchedError("disallowed by robots.txt")
        origin = "{0.scheme}://{0.netloc}".format(urlparse(url))
        for attempt in range(RETRIES):
            self._wait(origin)
            try:
                response = self._read(url, {"accept": accept, **(conditions or {})}, limit)
            except httpx.TooManyRedirects:
                raise _NotFetchedError("too many redirects") from None
            except httpx.HTTPError as exc:
                if attempt == RETRIES - 1:
                    raise _NotFetchedError(f"{exc.__class__.__name__}: {exc}") from None
                self.sleep(min(2.0**attempt, MAX_RETRY_WAIT_S))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == RETRIES - 1:
                    raise _NotFetchedError(f"HTTP {response.status_code}")
                retry_after = response.headers.get("retry-after", "")
                wait = float(retry_after) if retry_after.isdigit() else 2.0**attempt
                self.sleep(min(wait, MAX_RETRY_WAIT_S))
                continue
            if response.status_code == 304 and conditions:
                return response
            if response.status_code != 200:
                raise _NotFetchedError(f"HTTP {response.status_code}")
            if not self._allowed(str(response.url)):
                raise _NotFetchedError(f"redirected outside the source, to {response.url}")
            return response
        raise _NotFetchedError("no answer")

    def _read(self, url: str, headers: dict[str, str], limit: int) -> httpx.Response:
        """GET with a size limit enforced while reading (a lying Content-Length cannot get past it)."""
        headers = {"user-agent": self.plan.user_agent, **headers}
        with self.client.stream("GET", url, headers=headers) as response:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise _NotFetchedError(f"larger than {limit:,} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise _NotFetchedError(f"larger than {limit:,} bytes")
        return httpx.Response(
            response.status_code, headers=response.headers, content=bytes(body), request=response.request
        )
