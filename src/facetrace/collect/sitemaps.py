"""What a sitemap lists (sitemaps.org protocol, with Google's image extension).

A ``sitemap`` source starts from a site's own list of pages instead of following links: the
publisher says what is there. An index (``<sitemapindex>``) names further sitemaps; a
``<urlset>`` names pages, and with the image extension the images on each page. Gzipped
sitemaps are unpacked with the same size limit as any page. XML comes from the network, so it
is parsed with ``defusedxml`` (no entity expansion, no external entities).
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from facetrace.collect.pages import absolute_url

XML_TYPES = ("application/xml", "text/xml", "application/gzip", "application/x-gzip")
#: The protocol's limits: URLs (or sitemaps) one file may list, and Google's images per page.
MAX_ENTRIES = 50_000
MAX_IMAGES_PER_PAGE = 1_000
_GZIP_MAGIC = b"\x1f\x8b"


class SitemapError(ValueError):
    """Not a sitemap, or one that is broken or too large."""


@dataclass(slots=True)
class Sitemap:
    sitemaps: list[str] = field(default_factory=list)  # from an index
    pages: list[str] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (page URL, image URL)
    truncated: bool = False  # it listed more than the protocol allows: the rest was left out
    refused_schemes: Counter[str] = field(default_factory=Counter)  # locations not http(s), by scheme


def looks_like_sitemap(content_type: str, body: bytes) -> bool:
    """An XML or gzip answer (servers label sitemaps loosely, so the first bytes count too)."""
    if content_type.split(";")[0].strip().lower() in XML_TYPES:
        return True
    start = body[:200].lstrip()
    return start.startswith((_GZIP_MAGIC, b"<?xml", b"<urlset", b"<sitemapindex"))


def parse_sitemap(url: str, body: bytes, *, limit: int) -> Sitemap:
    """The sitemaps, pages and images the sitemap at ``url`` lists (relative URLs resolved against
    it, though the protocol wants them absolute); raises :class:`SitemapError` if it is none."""
    if body.startswith(_GZIP_MAGIC):
        body = _gunzip(body, limit)
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise SitemapError(f"not a readable sitemap: {exc}") from None
    kind = _local(root)
    sitemap = Sitemap()

    def loc(element: Element) -> str | None:
        for child in element:
            if _local(child) == "loc" and child.text:
                return absolute_url(url, child.text, sitemap.refused_schemes)
        return None

    if kind == "sitemapindex":
        entries = _children(root, "sitemap")
        sitemap.sitemaps = [location for entry in entries[:MAX_ENTRIES] if (location := loc(entry))]
        sitemap.truncated = len(entries) > MAX_ENTRIES
    elif kind == "urlset":
        entries = _children(root, "url")
        sitemap.truncated = len(entries) > MAX_ENTRIES
        for entry in entries[:MAX_ENTRIES]:
            page = loc(entry)
            if not page:
                continue
            sitemap.pages.append(page)
            images = _children(entry, "image")
            sitemap.truncated |= len(images) > MAX_IMAGES_PER_PAGE
            sitemap.images += [
                (page, location) for image in images[:MAX_IMAGES_PER_PAGE] if (location := loc(image))
            ]
    else:
        raise SitemapError(f"not a sitemap: the document is a <{kind}>")
    return sitemap


def _gunzip(body: bytes, limit: int) -> bytes:
    """Unpack at most ``limit`` bytes: a small gzip bomb must not become a huge sitemap."""
    unpacker = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = unpacker.decompress(body, limit + 1)
    except zlib.error as exc:
        raise SitemapError(f"broken gzip: {exc}") from None
    if len(data) > limit:
        raise SitemapError(f"larger than {limit:,} bytes once unpacked")
    return data


def _local(element: Element) -> str:
    """The tag without its namespace: ``{http://www.sitemaps.org/...}url`` → ``url``."""
    return element.tag.rsplit("}", 1)[-1]


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child) == name]
