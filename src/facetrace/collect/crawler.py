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
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx
from protego import Protego

from facetrace.collect.pages import NO_IMAGES, Page, PageImage, parse_page, robots_directives
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
    ) -> None:
        self.plan = plan
        self.client = client
        self.sleep = sleep
        self.clock = clock
        self.stats = CrawlStats()
        self._robots: dict[str, Protego | None] = {}
        self._next_request: dict[str, float] = {}
        self._seen_images: set[str] = set()

    def run(self) -> Iterator[FetchedImage | InputProblem]:
        frontier = deque((seed, 0) for seed in self.plan.seeds)
        visited: set[str] = set()
        while frontier and self.stats.pages < self.plan.max_pages:
            url, depth = frontier.popleft()
            if url in visited:
                continue
            visited.add(url)
            try:
                response = self._get(url, accept="text/html", limit=self.plan.max_page_bytes)
            except _NotFetchedError as refused:
                self.stats.errors.append((url, str(refused)))
                continue
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("image/"):  # a "urls" source may list images directly
                yield from self._image_from(url, None, response, alt=None)
                continue
            if not content_type.startswith(("text/html", "application/xhtml")):
                self.stats.errors.append((url, f"not a page ({content_type or 'no content type'})"))
                continue
            self.stats.pages += 1
            page = parse_page(str(response.url), response.text, response.headers.get("x-robots-tag"))
            if page.images_allowed:
                for image in page.images:
                    yield from self._fetch_image(image, page)
            else:
                self.stats.images_withheld_by_page += len(page.images)
            if self.plan.follow_links and page.follow_allowed and depth < self.plan.max_depth:
                frontier.extend((link, depth + 1) for link in page.links if link not in visited)

    def _fetch_image(self, image: PageImage, page: Page) -> Iterator[FetchedImage | InputProblem]:
        if image.url in self._seen_images:
            return
        self._seen_images.add(image.url)
        try:
            response = self._get(image.url, accept="image/*", limit=self.plan.max_image_bytes)
        except _NotFetchedError as refused:
            self.stats.errors.append((image.url, str(refused)))
            return
        yield from self._image_from(image.url, page, response, alt=image.alt)

    def _image_from(
        self, url: str, page: Page | None, response: httpx.Response, *, alt: str | None
    ) -> Iterator[FetchedImage | InputProblem]:
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("image/"):
            self.stats.errors.append((url, f"not an image ({content_type or 'no content type'})"))
            return
        if robots_directives(response.headers.get("x-robots-tag")) & NO_IMAGES:
            self.stats.images_withheld_by_page += 1
            return
        self.stats.images += 1
        yield FetchedImage(
            location=str(response.url),
            page_url=page.url if page else None,
            data=response.content,
            page_title=page.title if page else None,
            alt_text=alt,
            http_last_modified=response.headers.get("last-modified"),
        )

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

    def _get(self, url: str, *, accept: str, limit: int) -> httpx.Response:
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
                response = self._read(url, accept, limit)
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
            if response.status_code != 200:
                raise _NotFetchedError(f"HTTP {response.status_code}")
            if not self._allowed(str(response.url)):
                raise _NotFetchedError(f"redirected outside the source, to {response.url}")
            return response
        raise _NotFetchedError("no answer")

    def _read(self, url: str, accept: str, limit: int) -> httpx.Response:
        """GET with a size limit enforced while reading (a lying Content-Length cannot get past it)."""
        headers = {"user-agent": self.plan.user_agent, "accept": accept}
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
