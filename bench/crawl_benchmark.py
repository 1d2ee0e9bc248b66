"""Crawl throughput against a local web site, with the ingest pipeline running, next to ingesting the
same photos from disk (the bound: what the crawl adds is fetching, parsing and politeness).

The site is served on 127.0.0.1 by a threaded HTTP server in this process: ``--pages`` pages
of ``--per-page`` dev photos each, chained by links, with a robots.txt. The crawl runs with
the rate limit lifted (``--rate``, requests per second per host) to measure capacity; a real
crawl runs at the source's polite rate (1 request/s by default).

Run: ``.venv/bin/python bench/crawl_benchmark.py`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console
from rich.table import Table

from facetrace.collect.sources import SourceSpec
from facetrace.core.config import Settings
from facetrace.governance.collection_policy import GovernedCollection
from facetrace.governance.service import Governance
from facetrace.ingest.pipeline import ingest

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "faces" / "dev"
RESULTS = ROOT / "bench" / "results"
console = Console(width=120)


def serve(photos: list[Path], pages: int, per_page: int) -> ThreadingHTTPServer:
    routes: dict[str, tuple[str, bytes]] = {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n")
    }
    for number in range(pages):
        chunk = photos[number * per_page : (number + 1) * per_page]
        images = "".join(f'<img src="/img/{p.parent.name}/{p.name}" alt="{p.stem}">' for p in chunk)
        follow = f'<a href="/page/{number + 1}">next</a>' if number + 1 < pages else ""
        html = f"<html><head><title>Page {number}</title></head><body>{images}{follow}</body></html>"
        routes[f"/page/{number}"] = ("text/html", html.encode())
        for photo in chunk:
            routes[f"/img/{photo.parent.name}/{photo.name}"] = ("image/jpeg", photo.read_bytes())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real server would
        # Headers and body go out in separate writes: without this, Nagle's algorithm and delayed
        # ACKs stall every keep-alive response by ~20-40 ms, which would measure this toy server.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            kind, body = routes.get(self.path, ("text/plain", b""))
            self.send_response(200 if self.path in routes else 404)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--per-page", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not DEV.is_dir():
        sys.exit(f"needs the dev faces at {DEV}")
    photos = sorted(DEV.glob("*/*.jpg"))[: args.pages * args.per_page]
    server = serve(photos, args.pages, args.per_page)
    base = f"http://127.0.0.1:{server.server_address[1]}"

    with tempfile.TemporaryDirectory(prefix="facetrace-bench-") as scratch:
        crawl_settings = Settings(data_dir=Path(scratch) / "crawl")
        operator = Governance.open(crawl_settings)
        operator.sources.add(
            SourceSpec(
                "bench-site",
                "website",
                "benchmark site served locally",
                "FR",
                seeds=(f"{base}/page/0",),
                max_depth=args.pages,
                max_pages=args.pages,
                allow_private_network=True,  # the benchmark site is on 127.0.0.1
            )
        )
        started = time.perf_counter()
        crawled, ingested = operator.sources.crawl("bench-site", rate=args.rate, workers=args.workers)
        crawl_s = time.perf_counter() - started

        disk_settings = Settings(data_dir=Path(scratch) / "disk")
        started = time.perf_counter()
        from_disk = ingest(
            disk_settings,
            [str(p) for p in photos],
            policy=GovernedCollection(disk_settings),
            source_name="disk",
            workers=args.workers,
        )
        disk_s = time.perf_counter() - started
    server.shutdown()

    report = {
        "pages": crawled.pages,
        "images_fetched": crawled.images,
        "new_images": ingested.new_images,
        "faces": ingested.faces,
        "fetch_errors": len(crawled.errors),
        "crawl_seconds": round(crawl_s, 2),
        "pages_per_s": round(crawled.pages / crawl_s, 2),
        "images_per_s": round(crawled.images / crawl_s, 2),
        "disk_ingest_seconds": round(disk_s, 2),
        "disk_images_per_s": round(from_disk.new_images / disk_s, 2),
        "rate_limit_per_s": args.rate,
        "workers": args.workers,
    }
    table = Table(title=f"Crawl of a local site: {report['pages']} pages, {report['images_fetched']} images")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in (
        ("crawl + ingest, pages/s", f"{report['pages_per_s']:.1f}"),
        ("crawl + ingest, images/s", f"{report['images_per_s']:.1f}"),
        ("ingest of the same photos from disk, images/s", f"{report['disk_images_per_s']:.1f}"),
        (
            "crawl throughput as a share of the disk bound",
            f"{report['images_per_s'] / report['disk_images_per_s']:.2f}",
        ),
        ("faces found", f"{report['faces']:,}"),
        ("fetch errors", str(report["fetch_errors"])),
    ):
        table.add_row(name, value)
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "crawl.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"wrote {RESULTS / 'crawl.json'}; command: {' '.join([Path(sys.executable).name, *sys.argv])}"
    )


if __name__ == "__main__":
    main()
