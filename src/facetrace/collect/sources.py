"""Registered sources: what may be collected, under which legal basis, from where, how fast.

There is no "crawl the web" mode (AI Act art. 5(1)(e) bans untargeted scraping to build
face databases): a source names its seeds and the hosts or host/path prefixes a crawl
may stay within, and social networks are refused outright, whatever their terms say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facetrace.catalog.models import Sighting, Source
from facetrace.errors import FacetraceError

KINDS = ("local", "urls", "website", "sitemap")
CRAWLED = ("urls", "website", "sitemap")
#: Never a source, seed or allowed host: scraping these is what built Clearview's database.
SOCIAL_NETWORKS = frozenset(
    {
        "facebook.com",
        "fb.com",
        "instagram.com",
        "threads.net",
        "twitter.com",
        "x.com",
        "tiktok.com",
        "linkedin.com",
        "vk.com",
        "ok.ru",
        "snapchat.com",
        "pinterest.com",
        "reddit.com",
        "tumblr.com",
        "flickr.com",
        "youtube.com",
        "weibo.com",
        "bsky.app",
        "mastodon.social",
    }
)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    kind: str
    legal_basis: str
    jurisdiction: str
    purpose: str | None = None
    seeds: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    retention_days: int | None = None
    max_pages: int | None = None
    max_depth: int | None = None
    rate_per_s: float | None = None


def _host(value: str) -> str:
    """The host of a URL or of a bare HOST[/PATH], lower-case; empty when it has none or is malformed."""
    try:
        return (urlparse(value if "://" in value else f"https://{value}").hostname or "").lower()
    except ValueError:  # an unbalanced IPv6 bracket, say
        return ""


def _is_social_network(host: str) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in SOCIAL_NETWORKS)


def validate(spec: SourceSpec) -> SourceSpec:
    """The spec as it will be stored (allowed hosts default to the seeds' hosts), or a clear refusal."""
    problems = []
    if spec.kind not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}")
    if len(spec.jurisdiction) != 2 or not spec.jurisdiction.isalpha():
        problems.append("jurisdiction must be a two-letter country code")
    if len(spec.legal_basis.strip()) < 5:
        problems.append("a legal basis is required (--legal-basis)")
    if spec.kind in CRAWLED and not spec.seeds:
        problems.append(f"a {spec.kind} source needs at least one --seed URL")
    for seed in spec.seeds:
        if not _host(seed) or urlparse(seed).scheme not in ("http", "https"):
            problems.append(f"seed {seed!r} is not an http(s) URL")
    allowed = spec.allowed or tuple(sorted({_host(seed) for seed in spec.seeds if _host(seed)}))
    for place in (*spec.seeds, *spec.allowed):
        if _is_social_network(_host(place)):
            problems.append(f"{place!r} is a social network: Facetrace never collects from one")
    for seed in spec.seeds:
        if allowed and not within(seed, allowed):
            problems.append(f"seed {seed!r} is outside the allowed hosts/paths")
    for limit, value in (
        ("max pages", spec.max_pages),
        ("max depth", spec.max_depth),
        ("rate", spec.rate_per_s),
    ):
        if value is not None and value <= 0:
            problems.append(f"{limit} must be positive")
    if problems:
        raise FacetraceError(f"source {spec.name!r} refused: " + "; ".join(problems))
    return replace(spec, jurisdiction=spec.jurisdiction.upper(), allowed=allowed)


def within(url: str, allowed: tuple[str, ...] | list[str]) -> bool:
    """Whether ``url`` lies within one of the allowed ``HOST`` or ``HOST/PATH`` prefixes (a malformed
    URL lies within none)."""
    try:
        parsed = urlparse(url)
        host, path = (parsed.hostname or "").lower(), parsed.path or "/"
    except ValueError:
        return False
    for place in allowed:
        allowed_host, _, allowed_path = place.lower().partition("/")
        if host == allowed_host and path.startswith("/" + allowed_path):
            return True
    return False


def register(session: Session, spec: SourceSpec) -> Source:
    spec = validate(spec)
    if session.scalar(select(Source).where(Source.name == spec.name)) is not None:
        raise FacetraceError(f"a source named {spec.name!r} already exists")
    fields = asdict(spec)  # the spec's fields are the source's columns
    source = Source(**fields | {"seeds": list(spec.seeds), "allowed": list(spec.allowed)}, status="active")
    session.add(source)
    session.flush()
    return source


def named(session: Session, name: str) -> Source:
    source = session.scalar(select(Source).where(Source.name == name))
    if source is None:
        raise FacetraceError(f"no source named {name!r}")
    return source


def check_collectable(source: Source, kinds: tuple[str, ...], how: str) -> None:
    """Refuse to collect from ``source`` unless it is of one of ``kinds``, active and not blocked."""
    if source.kind not in kinds:
        raise FacetraceError(
            f"source {source.name!r} is a {source.kind} source: only {', '.join(kinds)} sources are {how}"
        )
    if source.status != "active" or source.blocked_at is not None:
        raise FacetraceError(f"source {source.name!r} is {'blocked' if source.blocked_at else source.status}")


def describe(session: Session, source: Source) -> dict[str, Any]:
    sightings = session.scalar(select(func.count(Sighting.id)).where(Sighting.source_id == source.id)) or 0
    return {
        "name": source.name,
        "kind": source.kind,
        "status": "blocked" if source.blocked_at else source.status,
        "jurisdiction": source.jurisdiction,
        "legal_basis": source.legal_basis,
        "purpose": source.purpose,
        "seeds": list(source.seeds or []),
        "allowed": list(source.allowed or []),
        "retention_days": source.retention_days,
        "max_pages": source.max_pages,
        "max_depth": source.max_depth,
        "rate_per_s": source.rate_per_s,
        "sightings": int(sightings),
        "created_at": source.created_at.isoformat(timespec="seconds"),
        "blocked": source.blocked_reason,
    }


def remove(session: Session, source: Source) -> None:
    """Unregister a source that holds nothing; one that does is erased first (by a DPO)."""
    if session.scalar(select(func.count(Sighting.id)).where(Sighting.source_id == source.id)):
        raise FacetraceError(
            f"source {source.name!r} still holds images: a DPO erases them first "
            f"('facetrace erase --source {source.name} --execute --reason ...')"
        )
    session.delete(source)
