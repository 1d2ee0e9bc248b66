"""Sitemaps: what they list, and what a broken or hostile one gets (a clear error, nothing else)."""

from __future__ import annotations

import gzip

import pytest

from facetrace.collect.sitemaps import SitemapError, looks_like_sitemap, parse_sitemap

# Never opens a catalog (sitemap parsing): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog

BASE = "https://news.example/sitemaps/main.xml"


def test_an_index_lists_further_sitemaps_resolved_against_its_url() -> None:
    body = b"""<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>https://news.example/a.xml</loc><lastmod>2026-01-01</lastmod></sitemap>
      <sitemap><loc> b.xml.gz </loc></sitemap><sitemap><lastmod>2026-01-01</lastmod></sitemap>
    </sitemapindex>"""
    sitemap = parse_sitemap(BASE, body, limit=10_000)
    assert sitemap.sitemaps == ["https://news.example/a.xml", "https://news.example/sitemaps/b.xml.gz"]
    assert sitemap.pages == [] and sitemap.images == []


def test_a_gzipped_urlset_lists_pages_and_the_images_on_them() -> None:
    body = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
      <url><loc>https://news.example/p1</loc>
        <image:image><image:loc>https://cdn.example/1.jpg</image:loc></image:image>
        <image:image><image:loc>https://cdn.example/2.jpg</image:loc></image:image></url>
      <url><loc>https://news.example/p2</loc></url>
      <url><loc>javascript:alert(1)</loc></url>
    </urlset>"""
    packed = gzip.compress(body)
    assert looks_like_sitemap("application/octet-stream", packed)
    sitemap = parse_sitemap(BASE, packed, limit=10_000)
    assert sitemap.pages == ["https://news.example/p1", "https://news.example/p2"]
    assert sitemap.images == [
        ("https://news.example/p1", "https://cdn.example/1.jpg"),
        ("https://news.example/p1", "https://cdn.example/2.jpg"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>hello</body></html>", "the document is a <html>"),
        (b"<urlset><url><loc>https://x.example/", "not a readable sitemap"),
        (gzip.compress(b"<urlset>" + b" " * 50_000 + b"</urlset>"), "larger than 10,000 bytes once unpacked"),
        (b"\x1f\x8bnot really gzip", "broken gzip"),
        (  # entity expansion ("billion laughs") is refused, not expanded
            b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><urlset><url><loc>&b;</loc></url></urlset>',
            "not a readable sitemap",
        ),
    ],
)
def test_a_broken_or_hostile_sitemap_is_refused_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(SitemapError, match=message):
        parse_sitemap(BASE, body, limit=10_000)
