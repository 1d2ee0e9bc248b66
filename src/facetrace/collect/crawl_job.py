"""One crawl of a registered source, streamed into the ingest pipeline as images arrive."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from facetrace.collect.connection_guard import guarded_client
from facetrace.collect.crawler import Crawler, CrawlPlan, CrawlStats
from facetrace.collect.frontier import CatalogFrontier
from facetrace.collect.sources import CRAWLED, check_collectable
from facetrace.core.config import Settings
from facetrace.ingest.collection_policy import CollectionPolicy
from facetrace.ingest.pipeline import IngestStats, ingest_items
from facetrace.store.catalog_models import Source


def plan_for(settings: Settings, source: Source, *, max_pages: int | None, rate: float | None) -> CrawlPlan:
    """The limits of this crawl: the command line's, else the source's, else the settings'."""
    check_collectable(source, CRAWLED, "crawled")
    return CrawlPlan(
        seeds=tuple(source.seeds or ()),
        allowed=tuple(source.allowed or ()),
        follow_links=source.kind == "website",
        read_sitemaps=source.kind == "sitemap",
        max_pages=max_pages or source.max_pages or settings.crawl_max_pages,
        max_depth=source.max_depth or settings.crawl_max_depth,
        rate_per_s=rate or source.rate_per_s or settings.crawl_rate_per_s,
        user_agent=settings.crawl_user_agent,
        max_page_bytes=settings.crawl_max_page_bytes,
        max_image_bytes=settings.max_image_bytes,
        fetch_deadline_s=settings.crawl_fetch_deadline_s,
        allow_private_network=source.allow_private_network,
    )


def crawl(
    settings: Settings,
    plan: CrawlPlan,
    source: Source,
    sessions: sessionmaker[Session],
    *,
    policy: CollectionPolicy,
    workers: int | None = None,
    on_progress: Callable[[CrawlStats, IngestStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[CrawlStats, IngestStats]:
    """Crawl ``source`` into the gallery; its frontier lives in the catalog, so a killed crawl resumes.

    ``on_progress`` gets the crawl's and the ingest's running totals after every image.
    ``should_stop`` is asked before each URL: a crawl told to stop ends as a killed one would,
    minus the images in flight (those are ingested first), and resumes from its frontier.
    """
    frontier = CatalogFrontier(sessions, source.id)
    client = guarded_client(
        allow_private_network=plan.allow_private_network,
        timeout=min(settings.crawl_timeout_s, plan.fetch_deadline_s),
    )
    with client:
        crawler = Crawler(plan, client, frontier=frontier, should_stop=should_stop)
        report = on_progress or (lambda _crawled, _ingested: None)
        stats = ingest_items(
            settings,
            crawler.run(),
            policy=policy,
            source_name=source.name,
            workers=workers,
            on_progress=lambda ingested: report(crawler.stats, ingested),
            sessions=sessions,
        )
    return crawler.stats, stats
