"""What a fetched HTML page offers a crawler: links, images with their alt text, title, robots rules.

Parsed with BeautifulSoup (``html.parser``: no native dependency, forgiving with broken HTML).
Images come from ``<img src/srcset>``, ``<picture><source srcset>``, Open Graph and Twitter
image meta tags, and links to image files; every URL is resolved against the page's base.
Only http(s) URLs are kept: the others (``javascript:``, ``data:``, ``file:``, ``ftp:``…) are
counted by scheme, for the crawl's summary, and dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlparse

from bs4 import BeautifulSoup, Tag

from facetrace.ingest.inputs import WEB_SCHEMES

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
#: Robots directives that keep images (or everything) of a page out of a face gallery.
NO_IMAGES = frozenset({"noindex", "noimageindex", "noai", "noimageai", "none"})


@dataclass(frozen=True, slots=True)
class PageImage:
    url: str
    alt: str | None


@dataclass(slots=True)
class Page:
    url: str
    title: str | None = None
    links: list[str] = field(default_factory=list)
    images: list[PageImage] = field(default_factory=list)
    robots: frozenset[str] = frozenset()
    #: References dropped for their scheme, by scheme (``{"javascript": 2, "mailto": 1}``).
    refused_schemes: Counter[str] = field(default_factory=Counter)

    @property
    def images_allowed(self) -> bool:
        return not (self.robots & NO_IMAGES)

    @property
    def follow_allowed(self) -> bool:
        return not (self.robots & {"nofollow", "none"})


def robots_directives(value: str | None) -> frozenset[str]:
    """``"noindex, NoImageAI"`` → {"noindex", "noimageai"}; a ``bot: rule`` prefix is dropped."""
    if not value:
        return frozenset()
    directives = set()
    for part in value.split(","):
        part = part.strip().lower()
        if ":" in part:  # "googlebot: noindex" names another agent; "unavailable_after: …" is not a rule here
            continue
        if part:
            directives.add(part)
    return frozenset(directives)


def _srcset_urls(value: str | None) -> list[str]:
    return [candidate.strip().split()[0] for candidate in (value or "").split(",") if candidate.strip()]


def absolute_url(base: str, reference: str | None, refused: Counter[str] | None = None) -> str | None:
    """``reference`` resolved against ``base``, without fragment; None for a malformed URL (an
    unbalanced IPv6 bracket, say: a page's bad link is skipped, not fatal) and unless it is
    http(s), the scheme then counted in ``refused``."""
    if not reference:
        return None
    try:
        url = urldefrag(urljoin(base, reference.strip())).url
        scheme = urlparse(url).scheme.lower()
    except ValueError:
        return None
    if scheme in WEB_SCHEMES:
        return url
    if refused is not None:
        refused[scheme] += 1
    return None


def _attribute(tag: Tag | None, name: str) -> str | None:
    """``tag``'s attribute ``name`` as one string (None: no tag, or no such attribute). BeautifulSoup
    splits a few attributes that hold several values, such as ``class``, into lists; none that
    is read here, but a list comes back joined as the page wrote it."""
    value = tag.get(name) if tag is not None else None
    if value is None or isinstance(value, str):
        return value
    return " ".join(value)


def parse_page(url: str, html: str, header_robots: str | None = None) -> Page:
    soup = BeautifulSoup(html, "html.parser")
    base = absolute_url(url, _attribute(soup.find("base", href=True), "href")) or url
    robots = set(robots_directives(header_robots))
    for meta in soup.find_all("meta", attrs={"name": True, "content": True}):
        if (_attribute(meta, "name") or "").lower() in ("robots", "facetrace"):
            robots |= robots_directives(_attribute(meta, "content"))
    page = Page(
        url=url, title=soup.title.get_text(strip=True) if soup.title else None, robots=frozenset(robots)
    )

    seen: set[str] = set()

    def add_image(reference: str | None, alt: str | None) -> None:
        absolute = absolute_url(base, reference, page.refused_schemes)
        if absolute and absolute not in seen:
            seen.add(absolute)
            page.images.append(PageImage(absolute, alt or None))

    for img in soup.find_all("img"):
        add_image(_attribute(img, "src"), _attribute(img, "alt"))
        for candidate in _srcset_urls(_attribute(img, "srcset")):
            add_image(candidate, _attribute(img, "alt"))
    for source in soup.select("picture source[srcset]"):
        picture = source.find_parent("picture")
        alt = _attribute(picture.find("img") if picture else None, "alt")
        for candidate in _srcset_urls(_attribute(source, "srcset")):
            add_image(candidate, alt)
    for meta in soup.find_all("meta", attrs={"content": True}):
        key = (_attribute(meta, "property") or _attribute(meta, "name") or "").lower()
        if key in ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"):
            add_image(_attribute(meta, "content"), None)
    for anchor in soup.find_all("a", href=True):
        absolute = absolute_url(base, _attribute(anchor, "href"), page.refused_schemes)
        if absolute is None:
            continue
        if urlparse(absolute).path.lower().endswith(IMAGE_EXTENSIONS):
            add_image(absolute, anchor.get_text(strip=True) or None)
        elif absolute not in page.links:
            page.links.append(absolute)
    return page
