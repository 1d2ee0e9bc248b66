"""Registered sources: what may be collected, under which legal basis, from where, how fast.

There is no "crawl the web" mode (AI Act art. 5(1)(e) bans untargeted scraping to build
face databases): a source names its seeds and the hosts or host/path prefixes a crawl
may stay within, and social networks are refused outright, whatever their terms say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlparse, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facetrace.collect.connection_guard import private_host
from facetrace.core.errors import FacetraceError
from facetrace.store.catalog_models import Sighting, Source

KINDS = ("local", "urls", "website", "sitemap")
DEFAULT_PORTS = {"http": 80, "https": 443}
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
    #: May reach loopback, private and link-local addresses (an intranet site); admin-only, audited.
    allow_private_network: bool = False


@dataclass(frozen=True, slots=True)
class AllowedPlace:
    """One allowed entry: ``HOST``, ``HOST:PORT``, ``HOST/PATH`` or ``http(s)://HOST[:PORT][/PATH]``.
    Without a scheme both http and https are allowed; without a port, the scheme's default one."""

    schemes: tuple[str, ...]
    host: str
    port: int | None
    path: str

    def admits(self, scheme: str, host: str, port: int, path: str) -> bool:
        return (
            scheme in self.schemes
            and host == self.host
            and port == (self.port or DEFAULT_PORTS[scheme])
            and path.startswith(self.path)
        )


def allowed_place(entry: str) -> AllowedPlace | None:
    """The place an allowed entry names, or None when it is malformed."""
    scheme, separator, rest = entry.strip().partition("://")
    if not separator:
        scheme, rest = "", entry.strip()
    if scheme and scheme.lower() not in DEFAULT_PORTS:
        return None
    try:
        parts = urlsplit("//" + rest)
        host, port = _normal_host(parts.hostname), parts.port
    except ValueError:  # an unbalanced IPv6 bracket, a port out of range
        return None
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        return None
    schemes = (scheme.lower(),) if scheme else tuple(DEFAULT_PORTS)
    return AllowedPlace(schemes, host, port, parts.path or "/")


def _normal_host(host: str | None) -> str:
    return (host or "").lower().rstrip(".")


def _host(value: str) -> str:
    """The host of a URL or of an allowed entry, lower-case; empty when it has none or is malformed."""
    try:
        return _normal_host(urlparse(value if "://" in value else f"https://{value}").hostname)
    except ValueError:  # an unbalanced IPv6 bracket, say
        return ""


def _default_allowed(seed: str) -> str:
    """What a seed allows when no entry is given: its host, with its port when not the default one."""
    parts = urlsplit(seed)
    host = _normal_host(parts.hostname)
    named = f"[{host}]" if ":" in host else host
    if parts.port is None or parts.port == DEFAULT_PORTS.get(parts.scheme.lower()):
        return named
    return f"{named}:{parts.port}"


def _is_social_network(host: str) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in SOCIAL_NETWORKS)


def _seed_problem(seed: str) -> str | None:
    try:
        parts = urlsplit(seed)
        if parts.scheme.lower() in DEFAULT_PORTS and _normal_host(parts.hostname) and parts.port != 0:
            return None
    except ValueError:  # an unbalanced IPv6 bracket, a port out of range
        pass
    return f"seed {seed!r} is not an http(s) URL"


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
    seed_problems = [problem for seed in spec.seeds if (problem := _seed_problem(seed))]
    problems += seed_problems
    problems += [
        f"allowed entry {entry!r} is not HOST, HOST:PORT, HOST/PATH or http(s)://HOST[:PORT][/PATH]"
        for entry in spec.allowed
        if allowed_place(entry) is None
    ]
    allowed = spec.allowed or (
        () if seed_problems else tuple(sorted({_default_allowed(seed) for seed in spec.seeds}))
    )
    for place in (*spec.seeds, *spec.allowed):
        if _is_social_network(_host(place)):
            problems.append(f"{place!r} is a social network: Facetrace never collects from one")
        if not spec.allow_private_network and (kind := private_host(_host(place))):
            problems.append(
                f"{place!r} is {kind}: a source reaches a private network only when an admin registers "
                'it with --allow-private-network (API: "allow_private_network": true)'
            )
    for seed in spec.seeds:
        if allowed and not seed_problems and not within(seed, allowed):
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


def within(url: str, allowed: tuple[str, ...] | list[str], *, any_path: bool = False) -> bool:
    """Whether ``url`` lies within one of the allowed entries: same scheme (http or https), host and
    port (default ports implied), and under its path unless ``any_path`` (robots.txt lies at the root
    of an origin whose pages the source may fetch only under a path). A malformed URL lies within none."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), _normal_host(parts.hostname)
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return False
    if scheme not in DEFAULT_PORTS or not host or port is None:
        return False
    path = parts.path or "/"
    return any(
        place is not None and place.admits(scheme, host, port, place.path if any_path else path)
        for place in map(allowed_place, allowed)
    )


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
        "allow_private_network": source.allow_private_network,
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
