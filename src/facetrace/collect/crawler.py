"""A polite, targeted crawler: only a registered source's allowed hosts and paths, robots rules kept.

It honours robots.txt (protego) with its Crawl-delay, ``<meta name="robots">`` and the
``X-Robots-Tag`` header (``noindex``, ``noimageindex``, ``noai``, ``noimageai`` keep a page's
images out; ``nofollow`` stops its links), waits between requests to a host, retries 429 and
5xx with backoff, and checks sizes and content types. It never logs in, never follows a link
outside the source, and names itself and its operator in the User-Agent.

It follows redirects itself, checking each hop (scheme, host, port, path, robots rules) before it
asks for it; its client (:func:`connection_guard.guarded_client`) checks the address each
connection goes to and cuts every request off at the fetch deadline. robots.txt is read the same
way, never from outside the source, and only its first 500 KiB are parsed (RFC 9309 section 2.5).

It yields what it fetched as :class:`FetchedImage` (or :class:`InputProblem` for a broken
one) for the ingest pipeline, which dedupes, analyses and stores them with their page URL.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx
from protego import Protego

from facetrace.catalog.repository import Place
from facetrace.collect.connection_guard import AddressRefusedError, DeadlineExceededError, fetch_deadline
from facetrace.collect.frontier import Frontier, Job, MemoryFrontier
from facetrace.collect.pages import NO_IMAGES, parse_page, robots_directives
from facetrace.collect.sitemaps import SitemapError, looks_like_sitemap, parse_sitemap
from facetrace.collect.sources import DEFAULT_PORTS, within
from facetrace.ingest.inputs import FetchedImage, InputProblem

RETRIES = 3
MAX_RETRY_WAIT_S = 30.0
MAX_REDIRECTS = 5
#: What of a robots.txt is read and parsed: RFC 9309 asks crawlers to parse at least 500 KiB.
ROBOTS_MAX_BYTES = 500 * 1024
_DISALLOW_ALL = "User-agent: *\nDisallow: /"


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
    fetch_deadline_s: float = 30.0  # the most one request may take, from connecting to its last byte
    allow_private_network: bool = False  # the source may reach private addresses (see connection_guard)


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
    #: URLs on pages and sitemaps not followed nor stored for their scheme (javascript:, data:…).
    urls_refused_by_scheme: Counter[str] = field(default_factory=Counter)


class _NotFetchedError(Exception):
    """A URL not fetched: outside the source, disallowed, too large, wrong type, or failing."""


class _StoppedError(Exception):
    """Asked to stop in the middle of a fetch: the URL stays queued for the next run."""


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
        """``should_stop`` is asked before each URL, while a body is read and before each wait:
        when it says so, the crawl ends there as at the page limit (within one fetch deadline),
        and a crawl on a catalog frontier resumes from that point next time.

        ``client`` should come from :func:`connection_guard.guarded_client`: it is what keeps
        connections off private networks and holds every request to the fetch deadline."""
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
        try:
            yield from self._crawl()
        except _StoppedError:
            self.stats.stopped = True

    def _crawl(self) -> Iterator[FetchedImage | InputProblem]:
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
        self.stats.urls_refused_by_scheme.update(page.refused_schemes)
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
        if sitemap.truncated:
            self.stats.errors.append(
                (
                    job.url,
                    "lists more than the protocol allows (URLs, or images a page): the rest was left out",
                )
            )
        self.stats.urls_refused_by_scheme.update(sitemap.refused_schemes)
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
        origin = _origin(url)
        if origin not in self._robots:
            self._robots[origin] = self._fetch_robots(
                origin, "{0.scheme}://{0.netloc}/robots.txt".format(urlsplit(url))
            )
        return self._robots[origin]

    def _fetch_robots(self, origin: str, url: str) -> Protego | None:
        """Read robots.txt, following redirects within its origin or to another origin the source
        allows (http to https, say), each hop checked before it is asked; rules that cannot be read
        disallow everything. A refused address is the source's problem, not the host's rules, so it
        is reported as such and not remembered."""
        for _hop in range(MAX_REDIRECTS + 1):
            self._wait(origin)
            try:
                hop = self._read(url, {}, ROBOTS_MAX_BYTES, truncate=True)
            except httpx.HTTPError as exc:
                if _caused_by(exc, AddressRefusedError):
                    raise _NotFetchedError(f"refused: {exc}") from None
                response = None
                break
            response = hop
            if not hop.has_redirect_location:
                break
            target = _redirect_target(url, hop)
            if _origin(target) != origin and not within(target, self.plan.allowed, any_path=True):
                self.stats.errors.append((url, f"robots.txt redirected outside the source, to {target}"))
                response = None
                break
            url = target
        if response is not None and response.status_code == 200:
            body = response.content
            if len(body) >= ROBOTS_MAX_BYTES:  # cut off at the cap: parse the whole lines read
                body = body[: body.rfind(b"\n") + 1]
            return Protego.parse(body.decode("utf-8", errors="replace"))
        if response is not None and 400 <= response.status_code < 500:
            return None
        # Unreachable, a server error, or rules that cannot be read: everything disallowed (RFC 9309).
        return Protego.parse(_DISALLOW_ALL)

    def _delay(self, origin: str) -> float:
        robots = self._robots.get(origin)
        crawl_delay = robots.crawl_delay(self.plan.user_agent) if robots else None
        return max(1.0 / self.plan.rate_per_s, float(crawl_delay or 0))

    def _wait(self, origin: str) -> None:
        now = self.clock()
        ready = self._next_request.get(origin, now)
        if ready > now:
            self._pause(ready - now)
        self._next_request[origin] = max(ready, now) + self._delay(origin)

    def _pause(self, seconds: float) -> None:
        """Sleep, in steps of at most a fetch deadline, stopping when asked to (a Crawl-delay or a
        Retry-After must not keep a cancelled crawl waiting)."""
        while seconds > 0:
            if self.should_stop():
                raise _StoppedError
            step = min(seconds, self.plan.fetch_deadline_s)
            self.sleep(step)
            seconds -= step

    def _get(
        self, url: str, *, accept: str, limit: int, conditions: dict[str, str] | None = None
    ) -> httpx.Response:
        """GET within the source and robots rules: a 200, or a 304 when ``conditions`` say unchanged.
        Redirects are followed here, each hop checked before it is requested."""
        headers = {"accept": accept, **(conditions or {})}
        self._check(url, refusal="outside the source's allowed hosts/paths")
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._request(url, headers, limit)
            if not response.has_redirect_location:
                break
            url = _redirect_target(url, response)
            self._check(url, refusal=f"redirected outside the source, to {url}")
        else:
            raise _NotFetchedError("too many redirects")
        if response.status_code == 304 and conditions:
            return response
        if response.status_code != 200:
            raise _NotFetchedError(f"HTTP {response.status_code}")
        return response

    def _check(self, url: str, *, refusal: str) -> None:
        """Refuse a URL outside the source's allowed places, or one its host's robots.txt disallows."""
        if not self._allowed(url):
            raise _NotFetchedError(refusal)
        robots = self._robots_for(url)
        if robots is not None and not robots.can_fetch(url, self.plan.user_agent):
            self.stats.refused_by_robots += 1
            raise _NotFetchedError("disallowed by robots.txt")

    def _request(self, url: str, headers: dict[str, str], limit: int) -> httpx.Response:
        """One GET, retried (with backoff) on 429, 5xx and network errors, but not when the address
        was refused or the request ran past the fetch deadline: trying again would only do the same."""
        origin = _origin(url)
        for attempt in range(RETRIES):
            if self.should_stop():  # asked before each try: a cancel never waits out the retries
                raise _StoppedError
            self._wait(origin)
            try:
                response = self._read(url, headers, limit)
            except httpx.HTTPError as exc:
                if _caused_by(exc, AddressRefusedError):
                    raise _NotFetchedError(f"refused: {exc}") from None
                if _caused_by(exc, DeadlineExceededError):
                    raise _NotFetchedError(
                        f"took longer than the {self.plan.fetch_deadline_s:g} s fetch deadline"
                    ) from None
                if attempt == RETRIES - 1:
                    raise _NotFetchedError(f"{exc.__class__.__name__}: {exc}") from None
                self._pause(min(2.0**attempt, MAX_RETRY_WAIT_S))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == RETRIES - 1:
                    raise _NotFetchedError(f"HTTP {response.status_code}")
                retry_after = response.headers.get("retry-after", "")
                wait = float(retry_after) if retry_after.isdigit() else 2.0**attempt
                self._pause(min(wait, MAX_RETRY_WAIT_S))
                continue
            return response
        raise _NotFetchedError("no answer")

    def _read(
        self, url: str, headers: dict[str, str], limit: int, *, truncate: bool = False
    ) -> httpx.Response:
        """GET (no redirect followed) under the fetch deadline, with a size limit enforced while
        reading (a lying Content-Length cannot get past it). Past the limit the fetch is refused,
        or with ``truncate`` what was read up to it is kept."""
        headers = {"user-agent": self.plan.user_agent, **headers}
        with (
            fetch_deadline(self.plan.fetch_deadline_s),
            self.client.stream("GET", url, headers=headers, follow_redirects=False) as response,
        ):
            declared = response.headers.get("content-length")
            if not truncate and declared and declared.isdigit() and int(declared) > limit:
                raise _NotFetchedError(f"larger than {limit:,} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                if self.should_stop():
                    raise _StoppedError
                body += chunk
                if len(body) > limit:
                    if not truncate:
                        raise _NotFetchedError(f"larger than {limit:,} bytes")
                    del body[limit:]
                    break
        return httpx.Response(
            response.status_code, headers=response.headers, content=bytes(body), request=response.request
        )


def _origin(url: str) -> str:
    """Scheme, host and port (the default one spelled out): one robots.txt and one rate limit each
    (empty for a malformed URL)."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return ""
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _redirect_target(url: str, response: httpx.Response) -> str:
    try:
        return urljoin(url, response.headers["location"])
    except ValueError:
        raise _NotFetchedError(f"redirected to a malformed URL: {response.headers['location']!r}") from None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is behind ``exc`` (httpx raises its own exceptions from httpcore's)."""
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, kind):
            return True
        link = link.__cause__ or link.__context__
    return False
